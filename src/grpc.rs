//! gRPC message framing: counts the length-prefixed messages of a request or response body.
//!
//! A gRPC body is a sequence of messages, each preceded by a 5-byte prefix: a compressed flag
//! and the message length as a big-endian `u32`. [`GrpcFrames`] reads those prefixes as the body
//! streams past, whatever the chunk boundaries, without copying or keeping the payloads.
//!
//! A gRPC-Web response (binary form) ends with one more frame, flagged `0x80`, that carries the
//! trailers as HTTP/1 header lines: that frame is kept (it is small) rather than counted.

use std::io::IoSlice;

use bytes::Buf;

/// Length of the prefix before every gRPC message.
pub(crate) const PREFIX_LEN: usize = 5;

/// An incremental reader of gRPC message prefixes.
#[derive(Debug, Default, Clone)]
pub(crate) struct GrpcFrames {
    messages: u64,
    payload_bytes: u64,
    /// The bytes of a prefix split across chunks.
    prefix: [u8; PREFIX_LEN],
    prefix_len: usize,
    /// Payload bytes still to skip before the next prefix.
    remaining: u64,
    /// Part of a chunk could not be looked at (a `Buf` of too many slices); counts are unknown.
    lost: bool,
    /// Set for a gRPC-Web response, whose trailers come in a frame of the body.
    web: Option<Box<WebTrailers>>,
}

/// The trailer frame of a gRPC-Web response, as it is read.
#[derive(Debug, Default, Clone)]
struct WebTrailers {
    block: Vec<u8>,
    /// The payload being skipped is the trailer frame's.
    reading: bool,
    /// The trailer frame was read whole.
    complete: bool,
}

/// A trailer block larger than this is not kept: its status is then unknown.
const MAX_WEB_TRAILERS: usize = 16 * 1024;
/// The flag of a gRPC-Web frame that carries trailers rather than a message.
const WEB_TRAILERS_FLAG: u8 = 0x80;

impl GrpcFrames {
    /// The frames of a gRPC-Web response body (binary form): the frame of trailers is kept, and
    /// is not counted as a message.
    pub(crate) fn web() -> Self {
        Self {
            web: Some(Box::default()),
            ..Self::default()
        }
    }

    /// The trailer block of a gRPC-Web response once its frame was read whole (header lines,
    /// `name:value\r\n`).
    pub(crate) fn web_trailers(&self) -> Option<&[u8]> {
        let web = self.web.as_deref()?;
        (web.complete && !self.lost).then_some(&web.block[..])
    }

    /// Messages whose prefix has been read; a message counts as soon as its prefix is complete.
    pub(crate) fn messages(&self) -> Option<u64> {
        (!self.lost).then_some(self.messages)
    }

    /// Payload bytes announced by the prefixes read so far.
    #[cfg(test)]
    fn payload_bytes(&self) -> u64 {
        self.payload_bytes
    }

    /// Reads the next chunk of the body.
    pub(crate) fn push(&mut self, mut chunk: &[u8]) {
        while !chunk.is_empty() {
            if self.remaining > 0 {
                let skip =
                    usize::try_from(self.remaining).map_or(chunk.len(), |r| r.min(chunk.len()));
                self.remaining -= skip as u64;
                if let Some(web) = self.web.as_deref_mut().filter(|web| web.reading) {
                    web.read(&chunk[..skip], self.remaining == 0);
                }
                chunk = &chunk[skip..];
                continue;
            }
            let take = (PREFIX_LEN - self.prefix_len).min(chunk.len());
            self.prefix[self.prefix_len..self.prefix_len + take].copy_from_slice(&chunk[..take]);
            self.prefix_len += take;
            chunk = &chunk[take..];
            if self.prefix_len == PREFIX_LEN {
                let [flag, a, b, c, d] = self.prefix;
                let len = u64::from(u32::from_be_bytes([a, b, c, d]));
                self.remaining = len;
                self.prefix_len = 0;
                if let Some(web) = self.web.as_deref_mut()
                    && flag & WEB_TRAILERS_FLAG != 0
                {
                    web.start(len);
                    continue;
                }
                self.messages += 1;
                self.payload_bytes += len;
            }
        }
    }

    /// Reads a data frame without consuming it.
    pub(crate) fn push_buf<D: Buf>(&mut self, data: &D) {
        let mut slices = [IoSlice::new(&[]); 16];
        let n = data.chunks_vectored(&mut slices);
        let mut seen = 0;
        for slice in &slices[..n] {
            self.push(slice);
            seen += slice.len();
        }
        let unseen = (data.remaining() - seen) as u64;
        // Bytes inside a payload need not be seen; a prefix among them would be missed.
        if unseen > 0 {
            // Trailers of which a part went unseen are not read.
            if let Some(web) = self.web.as_deref_mut().filter(|web| web.reading) {
                web.reading = false;
            }
            if self.remaining >= unseen {
                self.remaining -= unseen;
            } else {
                self.lost = true;
            }
        }
    }
}

impl WebTrailers {
    fn start(&mut self, len: u64) {
        self.block.clear();
        self.complete = len == 0;
        self.reading = len > 0;
    }

    fn read(&mut self, bytes: &[u8], end: bool) {
        if self.block.len() + bytes.len() <= MAX_WEB_TRAILERS {
            self.block.extend_from_slice(bytes);
        } else {
            self.block.clear();
            self.reading = false;
            return;
        }
        if end {
            self.reading = false;
            self.complete = true;
        }
    }
}

/// The header lines of a gRPC-Web trailer block, as a header map; lines that are no header are
/// left out.
pub(crate) fn web_trailer_map(block: &[u8]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for line in block.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (line[..colon].trim_ascii(), line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name),
            http::HeaderValue::from_bytes(value),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// A `grpc-message` value as text: the protocol percent-encodes it.
pub(crate) fn decode_message(value: &[u8]) -> String {
    let hex = |i: usize| value.get(i).and_then(|&b| char::from(b).to_digit(16));
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'%'
            && let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(value[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The whole messages at the start of a captured body, as `(compressed, payload)`; a message cut
/// by the capture cap is left out.
#[cfg_attr(not(feature = "grpc-reflect"), allow(dead_code))]
pub(crate) fn whole_messages(mut bytes: &[u8]) -> impl Iterator<Item = (bool, &[u8])> {
    std::iter::from_fn(move || {
        let [flag, a, b, c, d] = *bytes.first_chunk::<PREFIX_LEN>()?;
        let len = u32::from_be_bytes([a, b, c, d]) as usize;
        let payload = bytes.get(PREFIX_LEN..PREFIX_LEN.checked_add(len)?)?;
        bytes = &bytes[PREFIX_LEN + len..];
        Some((flag != 0, payload))
    })
}

/// Captured request messages decoded to JSON.
#[cfg(feature = "grpc-reflect")]
#[derive(Debug)]
pub(crate) struct DecodedRequest {
    /// One object for a unary request, an array for a client stream.
    pub(crate) json: String,
    /// Every captured byte belonged to a decoded message.
    pub(crate) complete: bool,
}

/// Decodes the whole, uncompressed messages of a captured request body as the input type of the
/// method named by `route` (`package.Service/Method`). `None` when anything stands in the way: the
/// method is unknown, a message is compressed or malformed, or no whole message was captured.
#[cfg(feature = "grpc-reflect")]
pub(crate) fn decode_request(
    pool: &prost_reflect::DescriptorPool,
    route: &str,
    captured: &[u8],
) -> Option<DecodedRequest> {
    let (service, method) = route.rsplit_once('/')?;
    let method = pool
        .get_service_by_name(service)?
        .methods()
        .find(|m| m.name() == method)?;
    let input = method.input();
    let mut messages = Vec::new();
    let mut used = 0;
    for (compressed, payload) in whole_messages(captured) {
        if compressed {
            return None;
        }
        let message = prost_reflect::DynamicMessage::decode(input.clone(), payload).ok()?;
        messages.push(serde_json::to_value(&message).ok()?);
        used += PREFIX_LEN + payload.len();
    }
    let json = if method.is_client_streaming() {
        serde_json::Value::Array(messages)
    } else {
        messages.into_iter().next()?
    };
    Some(DecodedRequest {
        json: json.to_string(),
        complete: used == captured.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(flag: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![flag];
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn body() -> Vec<u8> {
        [
            message(0, b"hello"),
            message(0, b""),
            message(1, &[0xff; 300]),
            message(0, b"x"),
        ]
        .concat()
    }

    #[test]
    fn several_messages_in_one_chunk() {
        let mut frames = GrpcFrames::default();
        frames.push(&body());
        assert_eq!(frames.messages(), Some(4));
        assert_eq!(frames.payload_bytes(), 306);
    }

    #[test]
    fn every_split_point_gives_the_same_count() {
        let body = body();
        for split in 0..=body.len() {
            let mut frames = GrpcFrames::default();
            frames.push(&body[..split]);
            frames.push(&body[split..]);
            assert_eq!(frames.messages(), Some(4), "split at {split}");
        }
        let mut frames = GrpcFrames::default();
        for byte in &body {
            frames.push(std::slice::from_ref(byte));
        }
        assert_eq!(frames.messages(), Some(4));
        assert_eq!(frames.payload_bytes(), 306);
    }

    #[test]
    fn prefix_split_across_chunks_counts_when_complete() {
        let mut frames = GrpcFrames::default();
        frames.push(&[0, 0, 0]);
        assert_eq!(frames.messages(), Some(0));
        frames.push(&[0, 2, b'o']);
        assert_eq!(frames.messages(), Some(1));
        frames.push(b"k");
        assert_eq!(frames.payload_bytes(), 2);
    }

    #[test]
    fn zero_length_messages_count() {
        let mut frames = GrpcFrames::default();
        frames.push(&[message(0, b""), message(0, b""), message(0, b"")].concat());
        assert_eq!(frames.messages(), Some(3));
        assert_eq!(frames.payload_bytes(), 0);
    }

    #[test]
    fn compressed_messages_are_framed_the_same() {
        let mut frames = GrpcFrames::default();
        frames.push(&[message(1, b"gzipped?"), message(0, b"plain")].concat());
        assert_eq!(frames.messages(), Some(2));
        let whole: Vec<_> = whole_messages(&[message(1, b"z"), message(0, b"p")].concat())
            .map(|(compressed, payload)| (compressed, payload.to_vec()))
            .collect();
        assert_eq!(whole, [(true, b"z".to_vec()), (false, b"p".to_vec())]);
    }

    #[test]
    fn non_contiguous_bufs_are_read_whole() {
        let body = body();
        let (a, b) = body.split_at(7);
        let chain = Buf::chain(a, b);
        let mut frames = GrpcFrames::default();
        frames.push_buf(&chain);
        assert_eq!(frames.messages(), Some(4));
        assert_eq!(chain.remaining(), body.len(), "the frame is not consumed");
    }

    #[test]
    fn web_trailers_are_kept_not_counted_at_every_split_point() {
        let block = b"grpc-status:5\r\nGrpc-Message: no%20such%20order\r\n";
        let body = [message(0, b"reply"), message(0x80, block)].concat();
        for split in 0..=body.len() {
            let mut frames = GrpcFrames::web();
            frames.push(&body[..split]);
            frames.push(&body[split..]);
            assert_eq!(frames.messages(), Some(1), "split at {split}");
            assert_eq!(frames.web_trailers(), Some(&block[..]), "split at {split}");
        }
        let trailers = web_trailer_map(block);
        assert_eq!(trailers["grpc-status"], "5");
        assert_eq!(trailers["grpc-message"], "no%20such%20order");

        // Native gRPC has no such frame; a cut trailer frame is no trailers.
        let mut native = GrpcFrames::default();
        native.push(&body);
        assert_eq!((native.messages(), native.web_trailers()), (Some(2), None));
        let mut cut = GrpcFrames::web();
        cut.push(&body[..body.len() - 1]);
        assert_eq!(cut.web_trailers(), None);
    }

    #[test]
    fn grpc_messages_are_percent_decoded() {
        assert_eq!(
            decode_message(b"widget%207%20not%20found"),
            "widget 7 not found"
        );
        assert_eq!(decode_message(b"caf%C3%A9 100%"), "café 100%");
        assert_eq!(decode_message(b"%zz%4"), "%zz%4");
        assert_eq!(decode_message(b"%FF"), "\u{fffd}");
    }

    #[test]
    fn whole_messages_leave_out_a_cut_message() {
        let body = body();
        let cut = &body[..body.len() - 1];
        assert_eq!(whole_messages(cut).count(), 3);
        assert_eq!(whole_messages(&body[..3]).count(), 0);
        assert_eq!(whole_messages(&body).count(), 4);
    }
}
