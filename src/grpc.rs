//! gRPC message framing: counts the length-prefixed messages of a request or response body.
//!
//! A gRPC body is a sequence of messages, each preceded by a 5-byte prefix: a compressed flag
//! and the message length as a big-endian `u32`. [`GrpcFrames`] reads those prefixes as the body
//! streams past, whatever the chunk boundaries, without copying or keeping the payloads.
//!
//! A gRPC-Web response (binary form) ends with one more frame, flagged `0x80`, that carries the
//! trailers as HTTP/1 header lines: that frame is kept (it is small) rather than counted.
//!
//! gRPC-Web's text form sends the same frames in base64 (whitespace in it skipped, as RFC 4648
//! allows for line breaks). The response is decoded as it streams
//! ([`GrpcFrames::web_text`]): only its frames tell where its trailer frame starts, which no end
//! of it cut at a guess can (a message's payload may hold bytes shaped like one). A request's
//! messages are counted the same way as it streams ([`GrpcFrames::web_text_request`]); its body
//! is captured as sent and decoded by the writer ([`decode_web_text_body`]).

use std::io::IoSlice;

use bytes::Buf;

/// Length of the prefix before every gRPC message.
pub(crate) const PREFIX_LEN: usize = 5;

/// Which gRPC a request speaks, by its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// `application/grpc`, `application/grpc+proto`, `application/grpc;…`.
    Native,
    /// `application/grpc-web`, `application/grpc-web+proto`, …: framed as gRPC, with the
    /// trailers in a last frame of the response body.
    Web,
    /// `application/grpc-web-text`, `application/grpc-web-text+proto`, …: gRPC-Web's frames in
    /// base64, both ways.
    WebText,
}

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
    /// Set for a gRPC-Web response, whose trailers come in a frame of the body, and for a text
    /// request (base64).
    web: Option<Box<WebTrailers>>,
}

/// Base64 decoded as it streams past: groups of 4 characters, any of which may end in padding.
#[derive(Debug, Default, Clone)]
struct Base64Stream {
    /// The characters of a group split across chunks.
    group: [u8; 4],
    group_len: usize,
    /// A character out of the alphabet or misplaced padding was seen: nothing after it is read.
    invalid: bool,
}

/// The trailer frame of a gRPC-Web response, as it is read.
#[derive(Debug, Default, Clone)]
struct WebTrailers {
    block: Vec<u8>,
    /// The payload being skipped is the trailer frame's.
    reading: bool,
    /// The trailer frame was read whole.
    complete: bool,
    /// A trailer frame has begun: it ends the reply for its client, and no later one is read.
    started: bool,
    /// Set for gRPC-Web's text form: the body is base64, decoded as it streams.
    text: Option<Base64Stream>,
    /// A request's body: no frame of it carries trailers, every one is a message (as the
    /// frames of a native or binary request, read by [`GrpcFrames::default`], are).
    request: bool,
    /// The trailer block was longer than [`MAX_WEB_TRAILERS`]: only its whole lines within it
    /// are kept.
    cut: bool,
}

/// Of a longer trailer block, only the whole lines within this many bytes are kept: servers
/// write `grpc-status` and `grpc-message` first, before a long `grpc-status-details-bin`.
/// (Found by a probe: a block past it was dropped whole, and a call that had failed with its
/// status read as one whose stream had ended without trailers.)
const MAX_WEB_TRAILERS: usize = 16 * 1024;
/// The flag of a gRPC-Web frame that carries trailers rather than a message.
const WEB_TRAILERS_FLAG: u8 = 0x80;

impl Protocol {
    /// The content type that names this protocol.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Self::Native => "application/grpc",
            Self::Web => "application/grpc-web",
            Self::WebText => "application/grpc-web-text",
        }
    }
}

/// The messages of a whole request body (gRPC-Web's text form decoded), counted from their
/// prefixes; `None` when its bytes do not end where a message does.
pub(crate) fn count_messages(body: &[u8]) -> Option<u64> {
    let mut frames = GrpcFrames::default();
    frames.push(body);
    (frames.prefix_len == 0 && frames.remaining == 0).then_some(frames.messages)
}

impl GrpcFrames {
    /// The frames of a gRPC-Web response body (binary form): the frame of trailers is kept, and
    /// is not counted as a message.
    pub(crate) fn web() -> Self {
        Self {
            web: Some(Box::default()),
            ..Self::default()
        }
    }

    /// The frames of a gRPC-Web text response body: [`web`](Self::web)'s, from base64.
    pub(crate) fn web_text() -> Self {
        Self {
            web: Some(Box::new(WebTrailers {
                text: Some(Base64Stream::default()),
                ..WebTrailers::default()
            })),
            ..Self::default()
        }
    }

    /// The form of a gRPC-Web response these frames are read as; `None` for native gRPC's
    /// and a request's.
    pub(crate) fn web_form(&self) -> Option<Protocol> {
        let web = self.web.as_deref().filter(|web| !web.request)?;
        Some(if web.text.is_some() {
            Protocol::WebText
        } else {
            Protocol::Web
        })
    }

    /// The frames of a gRPC-Web text request body: base64 decoded as it streams, every frame
    /// counted as a message.
    pub(crate) fn web_text_request() -> Self {
        Self {
            web: Some(Box::new(WebTrailers {
                text: Some(Base64Stream::default()),
                request: true,
                ..WebTrailers::default()
            })),
            ..Self::default()
        }
    }

    /// The trailer block of a gRPC-Web response once its frame was read whole (header lines,
    /// `name:value\r\n`).
    pub(crate) fn web_trailers(&self) -> Option<&[u8]> {
        let web = self.web.as_deref()?;
        (web.complete && self.is_read()).then_some(&web.block[..])
    }

    /// Messages whose prefix has been read; a message counts as soon as its prefix is complete.
    pub(crate) fn messages(&self) -> Option<u64> {
        self.is_read().then_some(self.messages)
    }

    /// [`messages`](Self::messages) of a body not read (or sent) to its end: a text body may
    /// stop inside a group, which its end would have completed.
    pub(crate) fn messages_so_far(&self) -> Option<u64> {
        let invalid = self.text().is_some_and(|text| text.invalid);
        (!self.lost && !invalid).then_some(self.messages)
    }

    /// Whether every byte so far was read: none unseen, and a text body base64 to its last
    /// whole group (once the body has ended, a group left over is no base64).
    fn is_read(&self) -> bool {
        !self.lost
            && self
                .text()
                .is_none_or(|text| !text.invalid && text.group_len == 0)
    }

    fn text(&self) -> Option<&Base64Stream> {
        self.web.as_deref()?.text.as_ref()
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
                    && !web.request
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
        if self.text().is_some() {
            let seen = for_each_slice(data, |slice| self.push_text(slice));
            // Base64 cannot be skipped: what follows is read from the wrong place.
            if seen < data.remaining() {
                self.lost = true;
            }
            return;
        }
        let seen = for_each_slice(data, |slice| self.push(slice));
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

    /// Reads the next chunk of a text body: decoded a batch at a time, read as [`push`](Self::push)
    /// reads bytes, whitespace skipped. Nothing is read past what is no base64.
    fn push_text(&mut self, chunk: &[u8]) {
        let Some(mut text) = self.web.as_deref_mut().and_then(|web| web.text.take()) else {
            return;
        };
        let mut rest = if text.invalid { &[][..] } else { chunk };
        let mut out = [0; 3 * 256];
        let mut len = 0;
        loop {
            // Whole groups of four base64 characters, read from the chunk where they lie: the
            // bulk of a reply. A group with padding or a byte out of the alphabet, or one split
            // across chunks, is read a character at a time below.
            if text.group_len == 0 {
                loop {
                    // A payload's bytes are only counted down, never looked at: the whole
                    // groups inside what is left of one are checked to be base64 and passed
                    // over, undecoded. Trailers are read.
                    // What was decoded is read first (the batch below starts `out` afresh).
                    self.push(&out[..len]);
                    let reading_trailers = self.web.as_deref().is_some_and(|web| web.reading);
                    if !reading_trailers {
                        let skip = usize::try_from(self.remaining / 3)
                            .unwrap_or(usize::MAX)
                            .min(rest.len() / 4);
                        let skip = base64_run(&rest[..skip * 4]) / 4;
                        self.remaining -= skip as u64 * 3;
                        rest = &rest[skip * 4..];
                    }
                    // Then a prefix (three groups hold the end of a payload and the next
                    // prefix), or trailers, decoded.
                    let most = if reading_trailers { out.len() / 3 } else { 3 };
                    let take = (rest.len() / 4).min(most);
                    let mut done = 0;
                    for (group, decoded) in rest[..take * 4]
                        .chunks_exact(4)
                        .zip(out[..take * 3].chunks_exact_mut(3))
                    {
                        let [a, b, c, d] = [0, 1, 2, 3].map(|i| SEXTETS[usize::from(group[i])]);
                        if (a | b | c | d) & 0xC0 != 0 {
                            break;
                        }
                        let n = u32::from(a) << 18
                            | u32::from(b) << 12
                            | u32::from(c) << 6
                            | u32::from(d);
                        decoded.copy_from_slice(&n.to_be_bytes()[1..]);
                        done += 1;
                    }
                    len = done * 3;
                    rest = &rest[done * 4..];
                    if done < take || take == 0 {
                        break;
                    }
                }
            }
            let Some((&c, after)) = rest.split_first() else {
                break;
            };
            rest = after;
            // A run of whitespace at once: one return to the bulk above per run, not per byte.
            if is_base64_space(c) {
                rest = &rest[rest.iter().take_while(|&&c| is_base64_space(c)).count()..];
                continue;
            }
            text.group[text.group_len] = c;
            text.group_len += 1;
            if text.group_len < 4 {
                continue;
            }
            text.group_len = 0;
            let Some((bytes, n)) = decode_group(text.group) else {
                text.invalid = true;
                break;
            };
            out[len..len + 3].copy_from_slice(&bytes);
            len += n;
            if len > out.len() - 3 {
                self.push(&out[..len]);
                len = 0;
            }
        }
        self.push(&out[..len]);
        if let Some(web) = self.web.as_deref_mut() {
            web.text = Some(text);
        }
    }
}

/// How many of the first bytes of `bytes` are characters of base64's alphabet (no padding), in
/// blocks of 64: each block is checked by a fold without an early exit, which the compiler reads
/// many bytes at a time, and the first block that holds another byte ends the run where that
/// byte is (a line break of wrapped text: the run goes up to it, not one block short).
fn base64_run(bytes: &[u8]) -> usize {
    let alphabet = |b: u8| b.is_ascii_alphanumeric() | (b == b'+') | (b == b'/');
    let mut run = 0;
    for block in bytes.chunks(64) {
        let all = block.iter().fold(true, |all, &b| all & alphabet(b));
        if !all {
            return run + block.iter().take_while(|&&b| alphabet(b)).count();
        }
        run += block.len();
    }
    run
}

/// Whether `c` is whitespace that base64 text may hold anywhere and that is skipped (CR, LF,
/// space, tab): RFC 4648 lets a decoder ignore line breaks, and proxies and clients that wrap or
/// space the text send them. Nothing else out of the alphabet is.
fn is_base64_space(c: u8) -> bool {
    matches!(c, b'\r' | b'\n' | b' ' | b'\t')
}

/// The value of each character of base64's alphabet (`A`–`Z`, `a`–`z`, `0`–`9`, `+`, `/`), and
/// `0xFF` for every other byte, padding included.
const SEXTETS: [u8; 256] = {
    let mut table = [0xFF; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < alphabet.len() {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

impl WebTrailers {
    fn start(&mut self, len: u64) {
        if self.started {
            return;
        }
        self.started = true;
        self.complete = len == 0;
        self.reading = len > 0;
    }

    fn read(&mut self, bytes: &[u8], end: bool) {
        let room = MAX_WEB_TRAILERS - self.block.len();
        if bytes.len() <= room {
            self.block.extend_from_slice(bytes);
        } else {
            self.block.extend_from_slice(&bytes[..room]);
            self.cut = true;
        }
        if end {
            if self.cut {
                // A line cut at the bound is no line.
                let whole = memchr::memrchr(b'\n', &self.block).map_or(0, |i| i + 1);
                self.block.truncate(whole);
            }
            self.reading = false;
            self.complete = true;
        }
    }
}

/// Gives `push` the slices of `data` that `chunks_vectored` shows (at most 16), without
/// consuming it; returns how many bytes they hold.
#[inline]
fn for_each_slice<D: Buf>(data: &D, mut push: impl FnMut(&[u8])) -> usize {
    let mut slices = [IoSlice::new(&[]); 16];
    let n = data.chunks_vectored(&mut slices);
    let mut seen = 0;
    for slice in &slices[..n] {
        push(slice);
        seen += slice.len();
    }
    seen
}

/// gRPC-Web's text form decoded: base64 of the standard alphabet in groups of 4 characters, any
/// of which may end in padding (`=`, `==`), as chunks encoded one by one and concatenated do,
/// whitespace skipped ([`is_base64_space`]). `None` for anything else: a character out of the
/// alphabet, misplaced padding, characters left over past the last whole group. Linear; 3 bytes
/// out at most for 4 in. The writer decodes a request with [`decode_web_text_body`].
#[cfg(test)]
fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    let (out, left_over) = decode_whole_groups(text)?;
    (left_over == 0).then_some(out)
}

/// The whole groups of base64 `text` decoded, whitespace skipped, and how many characters of a
/// group are left over at its end; `None` when it is no base64.
fn decode_whole_groups(text: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut group = [0; 4];
    let mut len = 0;
    for &c in text {
        if is_base64_space(c) {
            continue;
        }
        group[len] = c;
        len += 1;
        if len == 4 {
            let (bytes, n) = decode_group(group)?;
            out.extend_from_slice(&bytes[..n]);
            len = 0;
        }
    }
    Some((out, len))
}

/// One group of base64: 3 bytes, of which the first `n` are its own (3 less its padding), and
/// `n`. `None` for a character out of the alphabet or misplaced padding.
fn decode_group(group: [u8; 4]) -> Option<([u8; 3], usize)> {
    fn sextet(c: u8) -> Option<u32> {
        let value = SEXTETS[usize::from(c)];
        (value < 64).then_some(u32::from(value))
    }
    let pad = match group {
        [.., b'=', b'='] => 2,
        [.., b'='] => 1,
        _ => 0,
    };
    let mut n = 0;
    for &c in &group[..4 - pad] {
        n = n << 6 | sextet(c)?;
    }
    n <<= 6 * pad;
    let [_, a, b, c] = n.to_be_bytes();
    Some(([a, b, c], 3 - pad))
}

/// A captured gRPC-Web text request body, decoded: the whole groups of a capture cut by the cap.
/// `None` when it is no base64. Its messages were counted as it streamed
/// ([`GrpcFrames::web_text_request`]), past the cap too.
pub(crate) fn decode_web_text_body(body: &CapturedBody) -> Option<CapturedBody> {
    let (bytes, left_over) = decode_whole_groups(&body.bytes)?;
    if left_over > 0 && !body.truncated {
        return None;
    }
    Some(CapturedBody {
        bytes: bytes.into(),
        total: body.total,
        truncated: body.truncated,
        grpc_messages: body.grpc_messages,
    })
}

/// Whether `content_type` names gRPC-Web's text form, parameters and case aside.
pub(crate) fn is_web_text(content_type: &str) -> bool {
    if !may_be_grpc(content_type) {
        return false;
    }
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let base = essence.split('+').next().unwrap_or_default();
    base.eq_ignore_ascii_case("application/grpc-web-text")
}

/// Whether a content type may be one of gRPC's, told by its first 16 bytes before any parsing:
/// the writer asks for every row, and most are no gRPC (the parsing cost about 400 instructions).
fn may_be_grpc(content_type: &str) -> bool {
    content_type
        .trim_start()
        .as_bytes()
        .get(..16)
        .is_some_and(|head| head.eq_ignore_ascii_case(b"application/grpc"))
}

/// The status and the decoded message of headers or trailers that carry a `grpc-status`: the
/// code, or for a value that is none, the error that names it ([`parse_status`]). Two different
/// values are none either: clients take the first or the last.
pub(crate) fn status_of(
    headers: &http::HeaderMap,
) -> Option<(Result<i32, String>, Option<String>)> {
    let mut values = headers.get_all("grpc-status").iter();
    let first = values.next()?;
    let code = match values.find(|value| *value != first) {
        Some(other) => Err(format!(
            "grpc: conflicting grpc-status {} and {}",
            quoted(first.as_bytes()),
            quoted(other.as_bytes())
        )),
        None => parse_status(first.as_bytes()),
    };
    let message = headers
        .get("grpc-message")
        .map(|v| decode_message(v.as_bytes()));
    Some((code, message))
}

/// A `grpc-status` value read as the protocol defines it, `1*DIGIT` (leading zeros allowed),
/// that fits an `i32`; anything else (a sign, a space, a value too large) is no status, whatever
/// the transport: the error names it, quoted and cut to 32 characters.
pub(crate) fn parse_status(value: &[u8]) -> Result<i32, String> {
    let code = (!value.is_empty() && value.iter().all(u8::is_ascii_digit))
        .then(|| std::str::from_utf8(value).ok()?.parse().ok())
        .flatten();
    code.ok_or_else(|| format!("grpc: invalid grpc-status {}", quoted(value)))
}

/// A `grpc-status` value as an error shows it: quoted, cut to 32 characters.
fn quoted(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let shown: String = text.chars().take(32).collect();
    let cut = if shown.len() < text.len() { "…" } else { "" };
    format!("{shown:?}{cut}")
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

/// The whole messages at the start of a captured body, as `(flag, payload)`: the flag is 1 for a
/// compressed message, 0 for one that is not, anything else a protocol error. A message cut by
/// the capture cap is left out.
pub(crate) fn whole_messages(mut bytes: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let [flag, a, b, c, d] = *bytes.first_chunk::<PREFIX_LEN>()?;
        let len = u32::from_be_bytes([a, b, c, d]) as usize;
        let payload = bytes.get(PREFIX_LEN..PREFIX_LEN.checked_add(len)?)?;
        bytes = &bytes[PREFIX_LEN + len..];
        Some((flag, payload))
    })
}

/// How the messages of a gRPC request flagged compressed were compressed: its `grpc-encoding`.
/// Without `grpc-reflect` it is never kept.
#[cfg_attr(not(feature = "grpc-reflect"), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MessageEncoding<'a> {
    /// Not known: the layer keeps a request's `grpc-encoding` only for the decoding with
    /// descriptors. A message flagged compressed is not decoded.
    NotKept,
    /// None named, or `identity`: no message may be flagged compressed.
    Identity,
    /// `gzip` or `deflate`: inflated, up to a bound.
    Inflate(Coding),
    /// Any other (`zstd`, `snappy`, ...), as sent: never decoded.
    Unsupported(&'a [u8]),
}

#[cfg_attr(not(feature = "grpc-reflect"), allow(dead_code))]
impl<'a> MessageEncoding<'a> {
    /// Reads a `grpc-encoding` value; `None` when the request had none.
    pub(crate) fn parse(header: Option<&'a [u8]>) -> Self {
        let name = header.unwrap_or_default().trim_ascii();
        if name.is_empty() || name.eq_ignore_ascii_case(b"identity") {
            Self::Identity
        } else if name.eq_ignore_ascii_case(b"gzip") {
            Self::Inflate(Coding::Gzip)
        } else if name.eq_ignore_ascii_case(b"deflate") {
            Self::Inflate(Coding::Deflate)
        } else {
            Self::Unsupported(name)
        }
    }
}

use crate::body::CapturedBody;
use crate::sanitize::encoding::{self, Coding};

/// Captured request messages decoded to JSON.
#[derive(Debug)]
pub(crate) struct DecodedRequest {
    /// One object for a unary request, an array for a client stream; `None` when the first
    /// message could not be read (`stopped` says why).
    pub(crate) json: Option<String>,
    /// Every captured byte belonged to a decoded message.
    pub(crate) complete: bool,
    /// Why decoding stopped before the end of the captured messages, when a compressed message
    /// could not be read: `message 2 is zstd-compressed, not decoded`.
    pub(crate) stopped: Option<String>,
}

/// Decodes the whole messages of a captured request body as the input type of the method named
/// by `route` (`package.Service/Method`), inflating those compressed with `gzip` or `deflate` to
/// `max_inflated` bytes in all.
///
/// `None` when the method is unknown, a message is no valid message of its type, or no whole
/// message was captured. A compressed message that cannot be read (another encoding, corrupt
/// data, past `max_inflated`, flagged without an encoding) stops the decoding: the messages
/// before it are kept, and `stopped` says what is wrong with it.
#[cfg(feature = "grpc-reflect")]
pub(crate) fn decode_request(
    pool: &prost_reflect::DescriptorPool,
    route: &str,
    captured: &[u8],
    encoding: MessageEncoding<'_>,
    max_inflated: usize,
) -> Option<DecodedRequest> {
    let method = find_method(pool, route)?;
    let input = method.input();
    let mut messages = Vec::new();
    let (used, stopped) = read_messages(captured, encoding, max_inflated, |bytes| {
        let message = prost_reflect::DynamicMessage::decode(input.clone(), bytes).ok()?;
        // Under the names the .proto declares, which the redactor's rules are written for: a
        // field's JSON name (`json_name = "p"`) would carry a `password` past them.
        let options = prost_reflect::SerializeOptions::new().use_proto_field_name(true);
        let value = message.serialize_with_options(serde_json::value::Serializer, &options);
        messages.push(value.ok()?);
        Some(Ok(()))
    })?;
    let json = if messages.is_empty() && stopped.is_some() {
        None
    } else if method.is_client_streaming() || messages.len() > 1 {
        // A method that takes one message and was sent more: every message is stored, as a
        // stream's are, rather than the one the service read (tonic reads the first).
        Some(serde_json::Value::Array(messages).to_string())
    } else {
        Some(messages.into_iter().next()?.to_string())
    };
    Some(DecodedRequest {
        json,
        complete: used == captured.len(),
        stopped,
    })
}

/// Whether `route` has the shape of a method's name, `package.Service/Method`: identifiers
/// (letters, digits, `_`, not starting with a digit), the service's joined by dots.
pub(crate) fn is_method_name(route: &str) -> bool {
    fn identifier(word: &str) -> bool {
        let mut bytes = word.bytes();
        bytes
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic() || first == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
    }
    route
        .split_once('/')
        .is_some_and(|(service, method)| service.split('.').all(identifier) && identifier(method))
}

/// Whether the method named by `route` (`package.Service/Method`) takes a client stream; `None`
/// when the descriptors do not know it.
#[cfg(feature = "grpc-reflect")]
pub(crate) fn is_client_streaming(
    pool: &prost_reflect::DescriptorPool,
    route: &str,
) -> Option<bool> {
    find_method(pool, route).map(|method| method.is_client_streaming())
}

/// The method named by `route`: `package.Service/Method`, or the path `/package.Service/Method`
/// (the route of an axum router's gRPC path).
#[cfg(feature = "grpc-reflect")]
fn find_method(
    pool: &prost_reflect::DescriptorPool,
    route: &str,
) -> Option<prost_reflect::MethodDescriptor> {
    let route = route.strip_prefix('/').unwrap_or(route);
    let (service, method) = route.rsplit_once('/')?;
    pool.get_service_by_name(service)?
        .methods()
        .find(|m| m.name() == method)
}

/// Hands each whole message of `captured` to `read`, inflated when compressed (to
/// `max_inflated` bytes in all), until one cannot be read: `read` returns `None` to give up on
/// the whole body, `Some(Err(why))` to stop at that message. Returns the captured bytes of the
/// messages read and why the reading stopped early.
fn read_messages(
    captured: &[u8],
    encoding: MessageEncoding<'_>,
    max_inflated: usize,
    mut read: impl FnMut(&[u8]) -> Option<Result<(), &'static str>>,
) -> Option<(usize, Option<String>)> {
    let mut used = 0;
    let mut inflated_left = max_inflated;
    for (i, (flag, payload)) in whole_messages(captured).enumerate() {
        let inflated;
        let bytes = match (flag, encoding) {
            (0, _) => payload,
            (1, MessageEncoding::Inflate(coding)) => {
                match inflate(coding, payload, inflated_left, max_inflated) {
                    Ok(bytes) => {
                        inflated_left -= bytes.len();
                        inflated = bytes;
                        &inflated[..]
                    }
                    Err(problem) => {
                        return Some((used, Some(format!("message {} {problem}", i + 1))));
                    }
                }
            }
            (flag, encoding) => {
                let why = format!("message {} {}", i + 1, unread(flag, encoding));
                return Some((used, Some(why)));
            }
        };
        if let Err(problem) = read(bytes)? {
            return Some((used, Some(format!("message {} {problem}", i + 1))));
        }
        used += PREFIX_LEN + payload.len();
    }
    Some((used, None))
}

/// Whether `content_type` names gRPC's JSON codec: `application/grpc+json` or
/// `application/grpc-web+json`, parameters and case aside.
pub(crate) fn is_json_codec(content_type: &str) -> bool {
    if !may_be_grpc(content_type) {
        return false;
    }
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/grpc+json")
        || essence.eq_ignore_ascii_case("application/grpc-web+json")
}

/// The whole messages of a captured JSON-codec request body, each checked to be a JSON
/// document, as one JSON text: the message itself when it is the whole body, else an array of
/// them (a client stream, or a call cut after its first message; `cut`: the capture is only a
/// prefix of the body; `client_stream`: the method is known to take a stream, whose one message
/// is an array of one). Compressed messages
/// are inflated as in [`decode_request`]; one that cannot be read, or is no JSON, stops the
/// reading there and `stopped` says why. The messages are copied as sent, to be sanitized as a
/// JSON body.
pub(crate) fn json_request(
    captured: &[u8],
    cut: bool,
    client_stream: bool,
    encoding: MessageEncoding<'_>,
    max_inflated: usize,
) -> DecodedRequest {
    let mut messages: Vec<Vec<u8>> = Vec::new();
    let read = read_messages(captured, encoding, max_inflated, |bytes| {
        if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err() {
            return Some(Err("is not valid JSON"));
        }
        messages.push(bytes.to_vec());
        Some(Ok(()))
    });
    // The closure never gives up on the whole body.
    let (used, stopped) = read.unwrap_or((0, None));
    let complete = used == captured.len();
    let json = match &messages[..] {
        [] => None,
        [only] if complete && !cut && !client_stream => {
            Some(String::from_utf8_lossy(only).into_owned())
        }
        messages => {
            let mut array = vec![b'['];
            for (i, message) in messages.iter().enumerate() {
                if i > 0 {
                    array.push(b',');
                }
                array.extend_from_slice(message);
            }
            array.push(b']');
            Some(String::from_utf8_lossy(&array).into_owned())
        }
    };
    DecodedRequest {
        json,
        complete,
        stopped,
    }
}

/// One compressed message inflated, to at most `left` bytes; else what is wrong with it.
fn inflate(coding: Coding, payload: &[u8], left: usize, limit: usize) -> Result<Vec<u8>, String> {
    let name = match coding {
        Coding::Gzip => "gzip",
        Coding::Deflate => "deflate",
    };
    match encoding::decode(&[coding], payload, left) {
        Some(decoded) if decoded.complete => Ok(decoded.bytes),
        Some(decoded) if decoded.over_limit => Err(format!("inflates past the {limit}-byte limit")),
        _ => Err(format!("is not valid {name}")),
    }
}

/// Why a message flagged `flag` is not decoded (any flag but 0, and 1 with a decodable encoding).
fn unread(flag: u8, encoding: MessageEncoding<'_>) -> String {
    match (flag, encoding) {
        (1, MessageEncoding::Unsupported(name)) => {
            // The client's own word: quoted only when it looks like an encoding's name.
            let token = name.len() <= 32
                && name
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            match std::str::from_utf8(name) {
                Ok(name) if token => format!("is {name}-compressed, not decoded"),
                _ => "is compressed with an unknown grpc-encoding, not decoded".to_owned(),
            }
        }
        (1, MessageEncoding::NotKept) => "is compressed, not decoded".to_owned(),
        (1, _) => "is flagged compressed without a grpc-encoding".to_owned(),
        (flag, _) => format!("has an invalid compressed flag ({flag})"),
    }
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
            .map(|(flag, payload)| (flag, payload.to_vec()))
            .collect();
        assert_eq!(whole, [(1, b"z".to_vec()), (0, b"p".to_vec())]);
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

    /// `bytes` in base64, padded.
    fn base64(bytes: &[u8]) -> Vec<u8> {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = Vec::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
            for i in 0..4 {
                out.push(if i <= chunk.len() {
                    ALPHABET[(n >> (18 - 6 * i) & 63) as usize]
                } else {
                    b'='
                });
            }
        }
        out
    }

    #[test]
    fn base64_decodes_padded_chunks_concatenated() {
        assert_eq!(decode_base64(b""), Some(vec![]));
        assert_eq!(decode_base64(b"aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(decode_base64(b"aGk=aGk=").as_deref(), Some(&b"hihi"[..]));
        assert_eq!(
            decode_base64(b"YQ==Yg==YWJj").as_deref(),
            Some(&b"ababc"[..])
        );
        let all: Vec<u8> = (0..=255).collect();
        for len in 0..all.len() {
            assert_eq!(
                decode_base64(&base64(&all[..len])).as_deref(),
                Some(&all[..len])
            );
        }
        let chunks = [&all[..1], &all[1..3], &all[3..6], &all[6..100]];
        let text: Vec<u8> = chunks.iter().flat_map(|chunk| base64(chunk)).collect();
        assert_eq!(decode_base64(&text).as_deref(), Some(&all[..100]));
        assert_eq!(decode_base64(b"+/+/"), Some(vec![0xfb, 0xff, 0xbf]));
    }

    #[test]
    fn base64_refuses_what_is_not() {
        for text in [
            &b"aGVsbG8"[..],
            b"aGV sbG8",
            b"aGVs\x0bbG8=",
            b"a===",
            b"====",
            b"=aGk",
            b"aG=k",
            b"aGk-",
            b"aGk_",
            b"\xff\xff\xff\xff",
        ] {
            assert_eq!(
                decode_base64(text),
                None,
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }

    /// Hostile text costs time in proportion to its length, and memory no more than 3/4 of it.
    #[test]
    fn base64_of_megabytes_is_linear_and_bounded() {
        let text = vec![b'A'; 8 << 20];
        let decoded = decode_base64(&text).expect("valid");
        assert_eq!(decoded.len(), 6 << 20);
        assert!(decoded.capacity() <= 6 << 20);
        let mut bad = vec![b'A'; 8 << 20];
        bad[(8 << 20) - 1] = b'!';
        assert_eq!(decode_base64(&bad), None);
    }

    /// What is read of a text reply: its messages and its trailer block.
    type TextRead = (Option<u64>, Option<Vec<u8>>);

    /// What is read of a text reply sent in chunks.
    fn read_web_text(chunks: &[&[u8]]) -> TextRead {
        let mut frames = GrpcFrames::web_text();
        for chunk in chunks {
            frames.push_buf(chunk);
        }
        (frames.messages(), frames.web_trailers().map(<[u8]>::to_vec))
    }

    #[test]
    fn web_text_trailers_are_read_as_the_reply_streams() {
        let block = b"grpc-status:5\r\ngrpc-message:gone\r\n";
        // A frame a chunk, each padded.
        let short = [
            base64(&message(0, b"reply")),
            base64(&message(0, b"")),
            base64(&message(0x80, block)),
        ]
        .concat();
        for split in 0..=short.len() {
            assert_eq!(
                read_web_text(&[&short[..split], &short[split..]]),
                (Some(2), Some(block.to_vec())),
                "split at {split}"
            );
        }
        for payload in [100_000, 100_001, 100_002] {
            let long = [
                base64(&message(0, &vec![0x80; payload])),
                base64(&message(0x80, block)),
            ]
            .concat();
            // Unpadded: the trailer frame starts inside a group.
            let joined = base64(&[message(0, &vec![7; payload]), message(0x80, block)].concat());
            for text in [long, joined] {
                for split in [0, 1, 4, 5, 77_777, text.len() - 3, text.len()] {
                    assert_eq!(
                        read_web_text(&[&text[..split], &text[split..]]),
                        (Some(1), Some(block.to_vec())),
                        "{payload} split at {split}"
                    );
                }
            }
        }
        // No trailer frame, no base64: nothing.
        let no_trailers = base64(&message(0, b"reply"));
        assert_eq!(read_web_text(&[&no_trailers]), (Some(1), None));
        assert_eq!(read_web_text(&[b"not base64!!"]), (None, None));
    }

    /// A reply without a trailer frame whose last bytes are shaped like one (a message's payload
    /// the client chose, whole or cut when the reply ended early) has no status, however long.
    #[test]
    fn web_text_payload_shaped_like_a_trailer_frame_is_no_status() {
        let forged = message(0x80, b"grpc-status:0\r\n");
        for len in [10, 30_000, 100_000] {
            let payload = [vec![b'x'; len], forged.clone()].concat();
            let whole = base64(&message(0, &payload));
            let mut cut = message(0, &[&payload[..], b"more"].concat());
            cut.truncate(cut.len() - 4);
            let cut = base64(&cut);
            for text in [whole, cut] {
                assert_eq!(read_web_text(&[&text]).1, None, "{len}");
            }
        }
    }

    /// Hostile replies: whatever the chunks, the reading is the one of the whole reply decoded,
    /// or nothing (never a count or a block it does not hold).
    #[test]
    fn web_text_hostile_replies_read_as_the_whole_reply_or_not_at_all() {
        let block = b"grpc-status:7\r\n";
        let trailers = message(0x80, block);
        let cases: Vec<(Vec<u8>, TextRead)> = vec![
            (Vec::new(), (Some(0), None)),
            // A prefix announcing 4 GiB, then what looks like trailers.
            (
                base64(&[&[0, 0xff, 0xff, 0xff, 0xff][..], &trailers].concat()),
                (Some(1), None),
            ),
            (
                base64(&[&[0x80, 0xff, 0xff, 0xff, 0xff][..], &trailers].concat()),
                (Some(0), None),
            ),
            // A trailer frame of junk: a block, no status in it.
            (
                base64(&message(0x80, b"\0\xff\x80junk")),
                (Some(0), Some(b"\0\xff\x80junk".to_vec())),
            ),
            // Each byte its own padded chunk.
            (
                [message(0, b"ab"), trailers.clone()]
                    .concat()
                    .iter()
                    .flat_map(|b| base64(std::slice::from_ref(b)))
                    .collect(),
                (Some(1), Some(block.to_vec())),
            ),
            // CRLF between chunks, space inside a group: skipped.
            (
                [
                    base64(&message(0, b"a")),
                    b"\r\n".to_vec(),
                    base64(&trailers),
                ]
                .concat(),
                (Some(1), Some(block.to_vec())),
            ),
            (
                [b"AA AAAAA= ".to_vec(), base64(&trailers)].concat(),
                (Some(1), Some(block.to_vec())),
            ),
            // Not base64: URL-safe, other control bytes, padding inside a group, no whole group.
            (b"AAAA-_AA".to_vec(), (None, None)),
            (b"AAAA\x0bAAA".to_vec(), (None, None)),
            (b"AAAA\x0cAAA".to_vec(), (None, None)),
            (b"AAAA\0AAA".to_vec(), (None, None)),
            (b"AA=AAAAA".to_vec(), (None, None)),
            (b"AAA=A===".to_vec(), (None, None)),
            ([base64(&trailers), b"A".to_vec()].concat(), (None, None)),
            (
                [base64(&trailers), b"A \r\n".to_vec()].concat(),
                (None, None),
            ),
            (b"\xff\xfe\xfd\xfc".to_vec(), (None, None)),
        ];
        for (text, expected) in cases {
            for split in 0..=text.len().min(64) {
                assert_eq!(
                    read_web_text(&[&text[..split], &text[split..]]),
                    expected,
                    "{:?} split at {split}",
                    String::from_utf8_lossy(&text)
                );
            }
        }
        // Long, in chunks of any length.
        let long = [message(0, &vec![0x80; 50_000]), trailers.clone()].concat();
        let chunked: Vec<u8> = long.chunks(7).flat_map(base64).collect();
        let joined = base64(&long);
        for text in [&chunked, &joined] {
            for split in [1, 2, 3, 5, 10_007, text.len() - 5] {
                let read = read_web_text(&[&text[..split], &text[split..]]);
                assert_eq!(read.1.as_deref(), Some(&block[..]), "split at {split}");
                assert_eq!(read.0, Some(1), "split at {split}");
            }
        }
    }

    /// Whole groups are decoded where they lie in a chunk, by a table: messages of lengths whose
    /// prefixes and payloads take every character of the alphabet, then the trailer frame, are
    /// read as when each group is read a character at a time (a chunk of three bytes).
    #[test]
    fn web_text_decoded_in_bulk_reads_as_character_by_character() {
        let block = b"grpc-status:0\r\n";
        for len in [0, 1, 2, 3, 62, 255, 256, 257, 4_097, 65_535, 65_536, 70_001] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
            let text = base64(&[message(0, &payload), message(0x80, block)].concat());
            let bulk = read_web_text(&[&text]);
            let chunks: Vec<&[u8]> = text.chunks(3).collect();
            assert_eq!(bulk, read_web_text(&chunks), "{len}");
            assert_eq!(bulk, (Some(1), Some(block.to_vec())), "{len}");
        }
    }

    /// Base64 with whitespace (CR, LF, space, tab) anywhere, as a proxy that wraps lines or a
    /// client that spaces its chunks sends it, reads as the same text without it: the reply's
    /// messages and trailers as it streams, whatever the chunks, and a request's decoding.
    #[test]
    fn web_text_whitespace_is_ignored() {
        let block = b"grpc-status:0\r\n";
        let frames = [
            message(0, b"reply"),
            message(
                0,
                &(0..5_000).map(|i| (i * 7 % 256) as u8).collect::<Vec<_>>(),
            ),
            message(0x80, block),
        ]
        .concat();
        let plain = base64(&frames);
        let wrap = |text: &[u8], width: usize, between: &[u8]| -> Vec<u8> {
            text.chunks(width)
                .flat_map(|line| [line, between].concat())
                .collect()
        };
        let padded: Vec<u8> = [
            base64(&frames[..10]),
            base64(&frames[10..5_011]),
            base64(&frames[5_011..]),
        ]
        .join(&b"\r\n"[..]);
        let cases = [
            wrap(&plain, 76, b"\r\n"),
            wrap(&plain, 64, b"\n"),
            wrap(&plain, 7, b" "),
            wrap(&plain, 1, b"\t"),
            wrap(&plain, 4, b" \r\n\t  "),
            [&b"\r\n"[..], &plain, b" \r\n"].concat(),
            padded,
        ];
        for text in cases {
            let name = String::from_utf8_lossy(&text[..40]).into_owned();
            let expected = (Some(2), Some(block.to_vec()));
            assert_eq!(read_web_text(&[&text]), expected, "{name:?}");
            let chunks: Vec<&[u8]> = text.chunks(3).collect();
            assert_eq!(read_web_text(&chunks), expected, "{name:?} in threes");
            for split in (0..=text.len()).step_by(37).chain([text.len() - 1]) {
                assert_eq!(
                    read_web_text(&[&text[..split], &text[split..]]),
                    expected,
                    "{name:?} split at {split}"
                );
            }
            assert_eq!(
                decode_base64(&text).as_deref(),
                Some(&frames[..]),
                "{name:?}"
            );
        }
    }

    /// Megabytes of hostile text cost time in proportion (debug build): every group padded,
    /// empty messages, prefixes flagged trailers.
    #[test]
    fn hostile_web_text_stays_linear() {
        for unit in [
            &b"YQ=="[..],
            b"AAAAAAA=",
            b"gAAAAA==",
            b"gAAAAACA",
            b"////",
            // Whitespace: alone, between characters, inside padding, lines of one group.
            b" \r\n\t",
            b"A ",
            b"Y Q = = ",
            b"////\r\n",
            b"gAAAAAC\nA",
        ] {
            let text = unit.repeat((4 << 20) / unit.len());
            let started = std::time::Instant::now();
            let _ = read_web_text(&[&text]);
            let chunks: Vec<&[u8]> = text.chunks(3).collect();
            let _ = read_web_text(&chunks);
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "{:?}: {:?}",
                String::from_utf8_lossy(unit),
                started.elapsed()
            );
        }
    }

    #[test]
    fn web_text_request_bodies_are_decoded_whole_or_to_their_last_whole_group() {
        let frames = [message(0, b"one"), message(0, b"two")].concat();
        let text = [base64(&frames[..8]), base64(&frames[8..])].concat();
        let whole = CapturedBody {
            bytes: text.clone().into(),
            total: text.len() as u64,
            truncated: false,
            grpc_messages: Some(2),
        };
        let decoded = decode_web_text_body(&whole).expect("base64");
        assert_eq!(&decoded.bytes[..], &frames[..]);
        assert_eq!((decoded.grpc_messages, decoded.truncated), (Some(2), false));
        // Cut by the capture cap: its whole groups, and the count of the whole body, taken as
        // it streamed.
        let cut = CapturedBody {
            bytes: text.clone().into(),
            total: text.len() as u64 + 10,
            truncated: true,
            grpc_messages: Some(3),
        };
        let cut = CapturedBody {
            bytes: cut.bytes.slice(..text.len() - 1),
            ..cut
        };
        let decoded = decode_web_text_body(&cut).expect("base64");
        assert_eq!((decoded.grpc_messages, decoded.truncated), (Some(3), true));
        assert!(frames.starts_with(&decoded.bytes));
        // Whole but no base64.
        let broken = CapturedBody {
            bytes: text[..text.len() - 1].to_vec().into(),
            ..whole
        };
        assert!(decode_web_text_body(&broken).is_none());
        assert!(is_web_text("Application/gRPC-Web-Text+proto; charset=x"));
        assert!(!is_web_text("application/grpc-web+proto"));
        // Told by their first bytes, as before by parsing: spaces before the type, and types
        // shorter than `application/grpc`.
        assert!(is_web_text(" application/grpc-web-text"));
        assert!(is_json_codec("  Application/GRPC+json ; charset=utf-8"));
        assert!(is_json_codec("application/grpc-web+json"));
        for other in [
            "",
            "application/grp",
            "application/json",
            "application/grpc",
            "text/plain",
        ] {
            assert!(!is_web_text(other) && !is_json_codec(other), "{other}");
        }
    }

    /// A text request's frames are counted as they stream, whatever the chunks: every frame a
    /// message (a request has no trailer frame), whitespace skipped; no count for what is no
    /// base64, and none for a body that ends inside a group, unless it was not read to its end.
    #[test]
    fn web_text_requests_are_counted_as_they_stream() {
        let frames = [message(0, b"one"), message(0x80, b"two"), message(1, b"")].concat();
        let text = [base64(&frames[..3]), b"\r\n".to_vec(), base64(&frames[3..])].concat();
        for split in 0..=text.len() {
            let mut request = GrpcFrames::web_text_request();
            request.push_buf(&&text[..split]);
            request.push_buf(&&text[split..]);
            assert_eq!(request.messages(), Some(3), "split at {split}");
            assert_eq!(request.web_trailers(), None);
        }
        // Two characters of a next group.
        let mut cut = GrpcFrames::web_text_request();
        cut.push_buf(&&[&text[..], b"AA"].concat()[..]);
        assert_eq!((cut.messages(), cut.messages_so_far()), (None, Some(3)));
        let mut broken = GrpcFrames::web_text_request();
        broken.push_buf(&&b"AAAAAAA=!AAAAAAA="[..]);
        assert_eq!((broken.messages(), broken.messages_so_far()), (None, None));
    }

    /// A trailer frame ends the reply for its client (tonic-web's and grpc-web's stop there):
    /// one that follows it, say with a valid status after an invalid one, changes nothing, nor
    /// does one after a first too large to keep (its status stays unknown). Binary and text, at
    /// every split.
    #[test]
    fn a_second_trailer_frame_is_not_the_calls() {
        let first = b"grpc-status:-1\r\n";
        let second = message(0x80, b"grpc-status:0\r\n");
        let body = [message(0, b"reply"), message(0x80, first), second.clone()].concat();
        let text = base64(&body);
        for split in 0..=body.len() {
            let mut binary = GrpcFrames::web();
            binary.push(&body[..split]);
            binary.push(&body[split..]);
            assert_eq!(binary.web_trailers(), Some(&first[..]), "split at {split}");
        }
        for split in 0..=text.len() {
            assert_eq!(
                read_web_text(&[&text[..split], &text[split..]])
                    .1
                    .as_deref(),
                Some(&first[..]),
                "split at {split}"
            );
        }
        // A first frame too long to keep whole: its whole lines within the bound, none here,
        // and still not the second frame's.
        let huge = message(0x80, &vec![b'x'; MAX_WEB_TRAILERS + 1]);
        let body = [huge, second.clone()].concat();
        let mut binary = GrpcFrames::web();
        binary.push(&body);
        assert_eq!(binary.web_trailers(), Some(&b""[..]));
        assert_eq!(
            read_web_text(&[&base64(&body)]).1.as_deref(),
            Some(&b""[..])
        );
    }

    /// Found by a probe: a trailer block past the bound (a long `grpc-status-details-bin`) was
    /// dropped whole, its status with it. Its whole lines within the bound are kept.
    #[test]
    fn a_long_trailer_block_keeps_its_first_lines() {
        let details = format!(
            "grpc-status-details-bin:{}\r\n",
            "A".repeat(MAX_WEB_TRAILERS)
        );
        let block = format!("grpc-status:3\r\ngrpc-message:bad%20request\r\n{details}");
        let body = [message(0, b"reply"), message(0x80, block.as_bytes())].concat();
        let kept = b"grpc-status:3\r\ngrpc-message:bad%20request\r\n";
        for split in [0, 7, 20, 100, body.len() / 2, body.len() - 1] {
            let mut binary = GrpcFrames::web();
            binary.push(&body[..split]);
            binary.push(&body[split..]);
            assert_eq!(binary.web_trailers(), Some(&kept[..]), "split at {split}");
        }
        assert_eq!(
            read_web_text(&[&base64(&body)]).1.as_deref(),
            Some(&kept[..])
        );
    }

    /// Two different `grpc-status` values in one block are no status: clients read either
    /// (tonic's the first of native trailers, tonic-web's and grpc-web's the last of a trailer
    /// frame), so neither is the call's for sure. The same value twice is that value.
    #[test]
    fn conflicting_grpc_statuses_are_no_status() {
        let conflict = Err(r#"grpc: conflicting grpc-status "0" and "13""#.to_owned());
        let mut headers = http::HeaderMap::new();
        headers.append("grpc-status", http::HeaderValue::from_static("0"));
        headers.append("grpc-status", http::HeaderValue::from_static("0"));
        headers.append("grpc-message", http::HeaderValue::from_static("a"));
        assert_eq!(status_of(&headers).map(|s| s.0), Some(Ok(0)));
        headers.append("grpc-status", http::HeaderValue::from_static("13"));
        assert_eq!(
            status_of(&headers),
            Some((conflict.clone(), Some("a".to_owned())))
        );
        let block = b"grpc-status:0\r\ngrpc-message:a\r\nGrpc-Status: 13\r\n";
        let body = [message(0, b"reply"), message(0x80, block)].concat();
        let mut text = GrpcFrames::web_text();
        text.push_buf(&&base64(&body)[..]);
        let trailers = web_trailer_map(text.web_trailers().expect("a trailer frame"));
        assert_eq!(status_of(&trailers).map(|s| s.0), Some(conflict));
        // Hostile: thousands of lines, one read.
        let many = "grpc-status:1\r\n".repeat(1_000) + "grpc-status:2\r\n";
        let trailers = web_trailer_map(many.as_bytes());
        assert_eq!(
            status_of(&trailers).map(|s| s.0),
            Some(Err(
                r#"grpc: conflicting grpc-status "1" and "2""#.to_owned()
            ))
        );
    }

    /// `grpc-status` is `1*DIGIT` fitting an `i32`, leading zeros allowed: anything else is no
    /// status, whichever transport brought it, and the error quotes what was sent.
    #[test]
    fn grpc_status_is_digits_only_from_every_transport() {
        let invalid = |value: &str| Err(format!("grpc: invalid grpc-status {value:?}"));
        for (value, code) in [("0", 0), ("16", 16), ("007", 7), ("2147483647", i32::MAX)] {
            assert_eq!(parse_status(value.as_bytes()), Ok(code), "{value}");
        }
        for value in [
            "-1",
            "+0",
            " 0",
            "0 ",
            "",
            "1e3",
            "0x1",
            "1_0",
            "2147483648",
            "\u{663}",
        ] {
            assert_eq!(parse_status(value.as_bytes()), invalid(value), "{value:?}");
        }
        assert_eq!(parse_status(b"\xff0"), invalid("\u{fffd}0"));
        assert_eq!(
            parse_status("9".repeat(40).as_bytes()),
            Err(format!("grpc: invalid grpc-status {:?}…", "9".repeat(32)))
        );

        // Native trailers and a trailers-only reply: header maps.
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-status", http::HeaderValue::from_static(" 0"));
        headers.insert("grpc-message", http::HeaderValue::from_static("a%20b"));
        assert_eq!(
            status_of(&headers),
            Some((invalid(" 0"), Some("a b".to_owned())))
        );
        headers.insert("grpc-status", http::HeaderValue::from_static("3"));
        assert_eq!(status_of(&headers).map(|s| s.0), Some(Ok(3)));

        // gRPC-Web, binary and text: the trailer frame's header lines, whose own spaces around
        // a value are the line's.
        let web = |block: &[u8]| {
            let body = [message(0, b"reply"), message(0x80, block)].concat();
            let mut binary = GrpcFrames::web();
            binary.push(&body);
            let mut text = GrpcFrames::web_text();
            text.push_buf(&&base64(&body)[..]);
            let statuses = [binary, text].map(|frames| {
                status_of(&web_trailer_map(frames.web_trailers()?)).map(|(code, _)| code)
            });
            assert_eq!(statuses[0], statuses[1], "{block:?}");
            statuses[0].clone()
        };
        assert_eq!(web(b"grpc-status: 007 \r\n"), Some(Ok(7)));
        assert_eq!(web(b"grpc-status:-1\r\n"), Some(invalid("-1")));
        assert_eq!(web(b"grpc-status: +0\r\n"), Some(invalid("+0")));
        assert_eq!(web(b"grpc-status:1 0\r\n"), Some(invalid("1 0")));
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

    #[cfg(feature = "grpc-reflect")]
    mod decoding {
        use std::io::Write as _;

        use flate2::Compression;
        use flate2::write::{GzEncoder, ZlibEncoder};
        use prost_reflect::{DescriptorPool, DynamicMessage};

        use super::super::*;
        use super::message;

        const LOGIN: &str = "tower_audit.demo.v1.Demo/Login";
        const CLIENT_STREAM: &str = "tower_audit.demo.v1.Demo/ClientStream";

        fn pool() -> DescriptorPool {
            DescriptorPool::decode(include_bytes!("../proto/generated/demo.bin").as_ref())
                .expect("the demo descriptors")
        }

        /// A `Ping` with `text` as its message, encoded.
        fn ping(text: &str) -> Vec<u8> {
            let pool = pool();
            let ty = pool
                .get_message_by_name("tower_audit.demo.v1.Ping")
                .expect("Ping");
            let mut ping = DynamicMessage::new(ty);
            ping.set_field_by_name("message", prost_reflect::Value::String(text.into()));
            prost::Message::encode_to_vec(&ping)
        }

        fn gzip(bytes: &[u8]) -> Vec<u8> {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
            encoder.write_all(bytes).expect("in memory");
            encoder.finish().expect("in memory")
        }

        fn zlib(bytes: &[u8]) -> Vec<u8> {
            let mut encoder = ZlibEncoder::new(Vec::new(), Compression::fast());
            encoder.write_all(bytes).expect("in memory");
            encoder.finish().expect("in memory")
        }

        fn decode(
            route: &str,
            body: &[u8],
            encoding: &str,
            limit: usize,
        ) -> (Option<String>, bool, Option<String>) {
            let encoding = MessageEncoding::parse(Some(encoding.as_bytes()));
            let decoded = decode_request(&pool(), route, body, encoding, limit).expect("decoded");
            (decoded.json, decoded.complete, decoded.stopped)
        }

        #[test]
        fn encodings_are_read_from_their_names() {
            fn parse(name: Option<&str>) -> MessageEncoding<'_> {
                MessageEncoding::parse(name.map(str::as_bytes))
            }
            assert_eq!(parse(None), MessageEncoding::Identity);
            assert_eq!(parse(Some(" identity ")), MessageEncoding::Identity);
            assert_eq!(parse(Some("GZIP")), MessageEncoding::Inflate(Coding::Gzip));
            assert_eq!(
                parse(Some("deflate")),
                MessageEncoding::Inflate(Coding::Deflate)
            );
            assert_eq!(parse(Some("zstd")), MessageEncoding::Unsupported(b"zstd"));
            // Not a list, as `Content-Encoding` is.
            assert_eq!(
                parse(Some("gzip, deflate")),
                MessageEncoding::Unsupported(b"gzip, deflate")
            );
        }

        #[test]
        fn gzip_and_deflate_messages_decode_like_plain_ones() {
            let plain = [message(0, &ping("a")), message(0, &ping("b"))].concat();
            let expected = (
                Some(r#"[{"message":"a"},{"message":"b"}]"#.to_owned()),
                true,
                None,
            );
            assert_eq!(decode(CLIENT_STREAM, &plain, "", 1024), expected);
            let gzipped = [message(1, &gzip(&ping("a"))), message(0, &ping("b"))].concat();
            assert_eq!(decode(CLIENT_STREAM, &gzipped, "gzip", 1024), expected);
            let deflated = [message(1, &zlib(&ping("a"))), message(1, &zlib(&ping("b")))].concat();
            assert_eq!(decode(CLIENT_STREAM, &deflated, "deflate", 1024), expected);
        }

        /// A method that takes one message, sent two: both are stored, not the first alone
        /// (what tonic reads), so the second does not go unseen.
        #[test]
        fn a_unary_method_sent_more_than_one_message_stores_them_all() {
            const UNARY: &str = "tower_audit.demo.v1.Demo/Unary";
            let one = message(0, &ping("a"));
            assert_eq!(
                decode(UNARY, &one, "", 1024),
                (Some(r#"{"message":"a"}"#.to_owned()), true, None)
            );
            let two = [one, message(0, &ping("b"))].concat();
            assert_eq!(
                decode(UNARY, &two, "", 1024),
                (
                    Some(r#"[{"message":"a"},{"message":"b"}]"#.to_owned()),
                    true,
                    None
                )
            );
        }

        #[test]
        fn unreadable_compressed_messages_stop_the_decoding_and_say_why() {
            let stopped = |body: &[u8], encoding: &str| decode(CLIENT_STREAM, body, encoding, 1024);
            let first = message(0, &ping("a"));
            let zstd = [first.clone(), message(1, b"(\xb5/\xfd...")].concat();
            assert_eq!(
                stopped(&zstd, "zstd"),
                (
                    Some(r#"[{"message":"a"}]"#.to_owned()),
                    false,
                    Some("message 2 is zstd-compressed, not decoded".to_owned())
                )
            );
            // A plain message is read whatever the encoding named.
            assert_eq!(stopped(&first, "snappy").2, None);
            let cases: [(&[u8], &str, &str); 5] = [
                (
                    &message(1, b"x"),
                    "snappy",
                    "message 1 is snappy-compressed, not decoded",
                ),
                (
                    &message(1, b"x"),
                    "x-secret=hunter2 please",
                    "message 1 is compressed with an unknown grpc-encoding, not decoded",
                ),
                (
                    &message(1, b"not gzip"),
                    "gzip",
                    "message 1 is not valid gzip",
                ),
                (
                    &message(1, &gzip(&ping("a"))),
                    "identity",
                    "message 1 is flagged compressed without a grpc-encoding",
                ),
                (
                    &message(2, &ping("a")),
                    "",
                    "message 1 has an invalid compressed flag (2)",
                ),
            ];
            for (body, encoding, why) in cases {
                assert_eq!(
                    stopped(body, encoding),
                    (None, false, Some(why.to_owned())),
                    "{encoding}"
                );
            }
            // A unary request too.
            let cut = gzip(&ping("a"));
            assert_eq!(
                decode(LOGIN, &message(1, &cut[..cut.len() / 2]), "gzip", 1024),
                (None, false, Some("message 1 is not valid gzip".to_owned()))
            );
        }

        /// The limit holds for all the messages of a request together, and a bomb costs no more
        /// memory than it allows.
        #[test]
        fn inflating_stops_at_the_limit() {
            let big = ping(&"x".repeat(600));
            let body = [message(1, &gzip(&big)), message(1, &gzip(&big))].concat();
            assert!(body.len() < 200);
            assert_eq!(
                decode(CLIENT_STREAM, &body, "gzip", 1000).2.as_deref(),
                Some("message 2 inflates past the 1000-byte limit")
            );
            assert_eq!(decode(CLIENT_STREAM, &body, "gzip", 2 * big.len()).2, None);

            let bomb = gzip(&vec![0; 16 << 20]);
            assert!(bomb.len() < 32 << 10, "{}", bomb.len());
            assert_eq!(
                decode(LOGIN, &message(1, &bomb), "gzip", 64 << 10),
                (
                    None,
                    false,
                    Some("message 1 inflates past the 65536-byte limit".to_owned())
                )
            );
        }
    }

    /// JSON-codec messages: inflated when the `grpc-encoding` was kept, described when not.
    #[test]
    fn json_messages_are_inflated_only_with_their_encoding() {
        use std::io::Write as _;

        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(br#"{"b":2}"#).expect("in memory");
        let gzipped = gzip.finish().expect("in memory");
        let body = [message(0, br#"{"a":1}"#), message(1, &gzipped)].concat();
        let read = |encoding| {
            let decoded = json_request(&body, false, false, encoding, 1024);
            (decoded.json, decoded.complete, decoded.stopped)
        };
        assert_eq!(
            read(MessageEncoding::parse(Some(b"gzip"))),
            (Some(r#"[{"a":1},{"b":2}]"#.to_owned()), true, None)
        );
        assert_eq!(
            read(MessageEncoding::NotKept),
            (
                Some(r#"[{"a":1}]"#.to_owned()),
                false,
                Some("message 2 is compressed, not decoded".to_owned())
            )
        );
        let decoded = json_request(
            &body,
            false,
            false,
            MessageEncoding::parse(Some(b"gzip")),
            4,
        );
        assert_eq!(
            decoded.stopped.as_deref(),
            Some("message 2 inflates past the 4-byte limit")
        );
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
