//! Compiles `proto/demo.proto` with protox (no `protoc`) and writes the tonic code and the
//! descriptor set into `proto/generated/`.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = proto.join("generated");
    let fds = protox::compile([proto.join("demo.proto")], [&proto])?;
    std::fs::write(out.join("demo.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .out_dir(&out)
        .emit_rerun_if_changed(false)
        .compile_fds(fds)?;
    println!("wrote {}", out.display());
    Ok(())
}
