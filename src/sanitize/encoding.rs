//! Bounded `Content-Encoding` decoding.
//!
//! A compressed body is decoded only up to a byte limit, so a small gzip bomb costs at most
//! that much memory and time; the rest is treated like a body cut by the capture cap.

use flate2::{Decompress, FlushDecompress, Status};

/// One decodable content coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    Gzip,
    Deflate,
}

/// What a `Content-Encoding` header asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ContentCoding<'a> {
    /// No header, empty, or only `identity`.
    Identity,
    /// Codings in the order they were applied.
    Decode(Vec<Coding>),
    /// A coding this module does not decode (`br`, `zstd`, ...), as written.
    Unsupported(&'a str),
}

impl<'a> ContentCoding<'a> {
    /// Parses a raw `Content-Encoding` value such as `gzip` or `deflate, gzip`.
    pub(crate) fn parse(header: Option<&'a str>) -> Self {
        let mut codings = Vec::new();
        for token in header
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            if token.eq_ignore_ascii_case("gzip") || token.eq_ignore_ascii_case("x-gzip") {
                codings.push(Coding::Gzip);
            } else if token.eq_ignore_ascii_case("deflate") {
                codings.push(Coding::Deflate);
            } else if !token.eq_ignore_ascii_case("identity") {
                return Self::Unsupported(token);
            }
        }
        if codings.is_empty() {
            Self::Identity
        } else {
            Self::Decode(codings)
        }
    }
}

/// A decoded body.
#[derive(Debug)]
pub(crate) struct Decoded {
    /// At most the limit given to [`decode`].
    pub(crate) bytes: Vec<u8>,
    /// Every coding reached its end of stream within the limit.
    pub(crate) complete: bool,
    /// Decoding stopped at the limit, with more to come: a bomb, or a body over the limit.
    pub(crate) over_limit: bool,
}

/// Undoes `codings` (last applied first), producing at most `limit` bytes.
///
/// Returns `None` when the input is not in the claimed coding at all.
pub(crate) fn decode(codings: &[Coding], input: &[u8], limit: usize) -> Option<Decoded> {
    let mut current = Decoded {
        bytes: input.to_vec(),
        complete: true,
        over_limit: false,
    };
    for &coding in codings.iter().rev() {
        let next = match coding {
            Coding::Gzip => gunzip(&current.bytes, limit),
            Coding::Deflate => {
                let zlib = is_zlib_header(&current.bytes);
                inflate(&current.bytes, zlib, limit).map(|(decoded, _)| decoded)
            }
        }?;
        current = Decoded {
            bytes: next.bytes,
            complete: current.complete && next.complete,
            over_limit: current.over_limit || next.over_limit,
        };
    }
    Some(current)
}

/// HTTP `deflate` is meant to be zlib-wrapped, but some clients send raw deflate.
fn is_zlib_header(bytes: &[u8]) -> bool {
    match bytes {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

/// The deflate stream inside a gzip member (RFC 1952), header skipped.
///
/// The trailer's CRC is not checked: the body is for reading, not for trusting.
fn gzip_payload(bytes: &[u8]) -> Option<&[u8]> {
    const FHCRC: u8 = 0x02;
    const FEXTRA: u8 = 0x04;
    const FNAME: u8 = 0x08;
    const FCOMMENT: u8 = 0x10;
    let (&[0x1f, 0x8b, 8, flags], _) = bytes.split_first_chunk::<4>()? else {
        return None;
    };
    let mut rest = bytes.get(10..)?;
    if flags & FEXTRA != 0 {
        let len = usize::from(u16::from_le_bytes([*rest.first()?, *rest.get(1)?]));
        rest = rest.get(2 + len..)?;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let nul = memchr::memchr(0, rest)?;
            rest = &rest[nul + 1..];
        }
    }
    if flags & FHCRC != 0 {
        rest = rest.get(2..)?;
    }
    Some(rest)
}

/// Inflates the members of a gzip body (RFC 1952 §2.2: a body may hold several, as
/// `cat a.gz b.gz` makes, and `gzip -d` reads them all) to at most `limit` bytes in all; `None`
/// when the first is no gzip. Bytes after the last member that begin none (but zeros, which
/// some writers pad with) leave the body incomplete, so its row says it was cut. Read from the
/// first member only, the second member's text was silently lost (found by a probe).
fn gunzip(input: &[u8], limit: usize) -> Option<Decoded> {
    // A gzip member's trailer: CRC-32 and ISIZE.
    const TRAILER: usize = 8;
    let (mut decoded, mut used) = inflate(gzip_payload(input)?, false, limit)?;
    let mut rest = input;
    loop {
        if !decoded.complete {
            return Some(decoded);
        }
        let payload = gzip_payload(rest).unwrap_or_default();
        let after = payload.get(used + TRAILER..).unwrap_or_default();
        if after.iter().all(|&b| b == 0) {
            return Some(decoded);
        }
        let (Some(next), true) = (gzip_payload(after), after.starts_with(&[0x1f, 0x8b])) else {
            decoded.complete = false;
            return Some(decoded);
        };
        let Some((member, member_used)) =
            inflate(next, false, limit.saturating_sub(decoded.bytes.len()))
        else {
            decoded.complete = false;
            return Some(decoded);
        };
        decoded.bytes.extend_from_slice(&member.bytes);
        decoded.complete = member.complete;
        decoded.over_limit = member.over_limit;
        rest = after;
        used = member_used;
    }
}

/// Inflates at most `limit` bytes; `None` when the stream is corrupt from the first byte. With
/// the input's bytes read to the stream's end (what follows is not the stream's).
fn inflate(input: &[u8], zlib: bool, limit: usize) -> Option<(Decoded, usize)> {
    // Decode in steps so a bomb stops at `limit` instead of filling memory.
    const STEP: usize = 32 * 1024;
    let mut inflater = Decompress::new(zlib);
    let mut out = Vec::new();
    loop {
        let consumed = usize::try_from(inflater.total_in()).unwrap_or(usize::MAX);
        let produced = out.len();
        if produced > limit {
            out.truncate(limit);
            let decoded = Decoded {
                bytes: out,
                complete: false,
                over_limit: true,
            };
            return Some((decoded, consumed));
        }
        out.reserve_exact(STEP.min(limit + 1 - produced));
        let status = inflater.decompress_vec(
            input.get(consumed..).unwrap_or_default(),
            &mut out,
            FlushDecompress::None,
        );
        match status {
            Ok(Status::StreamEnd) => {
                let complete = out.len() <= limit;
                out.truncate(limit);
                let decoded = Decoded {
                    bytes: out,
                    complete,
                    over_limit: !complete,
                };
                let used = usize::try_from(inflater.total_in()).unwrap_or(usize::MAX);
                return Some((decoded, used));
            }
            Ok(_)
                if usize::try_from(inflater.total_in()).unwrap_or(usize::MAX) > consumed
                    || out.len() > produced => {}
            // No progress: the input ran out before the end of the stream.
            Ok(_) => {
                let decoded = Decoded {
                    bytes: out,
                    complete: false,
                    over_limit: false,
                };
                return Some((decoded, input.len()));
            }
            Err(_) if out.is_empty() => return None,
            Err(_) => {
                let decoded = Decoded {
                    bytes: out,
                    complete: false,
                    over_limit: false,
                };
                return Some((decoded, input.len()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use flate2::Compression;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn gzip_best(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::best());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn parses_header_values() {
        assert_eq!(ContentCoding::parse(None), ContentCoding::Identity);
        assert_eq!(
            ContentCoding::parse(Some(" identity ")),
            ContentCoding::Identity
        );
        assert_eq!(
            ContentCoding::parse(Some("GZIP")),
            ContentCoding::Decode(vec![Coding::Gzip])
        );
        assert_eq!(
            ContentCoding::parse(Some("deflate, x-gzip")),
            ContentCoding::Decode(vec![Coding::Deflate, Coding::Gzip])
        );
        assert_eq!(
            ContentCoding::parse(Some("gzip, br")),
            ContentCoding::Unsupported("br")
        );
    }

    #[test]
    fn gzip_zlib_and_raw_deflate_round_trip() {
        let data = b"hello hello hello world";
        let got = decode(&[Coding::Gzip], &gzip(data), 1024).unwrap();
        assert!(got.complete);
        assert_eq!(got.bytes, data);

        let mut z = ZlibEncoder::new(Vec::new(), Compression::fast());
        z.write_all(data).unwrap();
        let got = decode(&[Coding::Deflate], &z.finish().unwrap(), 1024).unwrap();
        assert_eq!((got.bytes.as_slice(), got.complete), (&data[..], true));

        let mut d = DeflateEncoder::new(Vec::new(), Compression::fast());
        d.write_all(data).unwrap();
        let got = decode(&[Coding::Deflate], &d.finish().unwrap(), 1024).unwrap();
        assert_eq!((got.bytes.as_slice(), got.complete), (&data[..], true));
    }

    #[test]
    fn bomb_stops_at_the_limit() {
        let bomb = gzip_best(&vec![0; 16 * 1024 * 1024]);
        assert!(bomb.len() < 64 * 1024);
        let got = decode(&[Coding::Gzip], &bomb, 64 * 1024).unwrap();
        assert!(!got.complete && got.over_limit);
        assert_eq!(got.bytes.len(), 64 * 1024);
        assert!(got.bytes.capacity() < 256 * 1024);
    }

    #[test]
    fn cut_stream_is_incomplete() {
        let data: Vec<u8> = (0..20_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let full = gzip(&data);
        let got = decode(&[Coding::Gzip], &full[..full.len() / 2], 1 << 20).unwrap();
        assert!(!got.complete && !got.over_limit);
        assert!(!got.bytes.is_empty() && data.starts_with(&got.bytes));
    }

    /// Found by a probe: a body of two gzip members (`cat a.gz b.gz`) was read to the end of
    /// the first, and its row had half a JSON document, without a word of what was missing.
    #[test]
    fn every_member_of_a_gzip_body_is_read_within_the_limit() {
        let two = [
            gzip(b"{\"user\":\"alice\","),
            gzip(b"\"password\":\"hunter2\"}"),
        ]
        .concat();
        let got = decode(&[Coding::Gzip], &two, 1024).unwrap();
        assert_eq!(
            (got.bytes.as_slice(), got.complete),
            (&b"{\"user\":\"alice\",\"password\":\"hunter2\"}"[..], true)
        );
        // The limit holds for all the members together.
        let got = decode(&[Coding::Gzip], &two, 20).unwrap();
        assert_eq!(got.bytes.as_slice(), b"{\"user\":\"alice\",\"pas");
        assert!(!got.complete && got.over_limit);
        let got = decode(&[Coding::Gzip], &two, 16).unwrap();
        assert_eq!(got.bytes.as_slice(), b"{\"user\":\"alice\",");
        assert!(!got.complete && got.over_limit);
        // Zeros after the last member are padding; other bytes leave the body incomplete.
        let padded = [gzip(b"{}").as_slice(), &[0; 16]].concat();
        assert!(decode(&[Coding::Gzip], &padded, 1024).unwrap().complete);
        let trailing = [gzip(b"{}").as_slice(), b"more"].concat();
        let got = decode(&[Coding::Gzip], &trailing, 1024).unwrap();
        assert_eq!((got.bytes.as_slice(), got.complete), (&b"{}"[..], false));
        // A second member cut short is a cut body.
        let cut = [gzip(b"{}"), gzip(&[b'x'; 4000])[..20].to_vec()].concat();
        let got = decode(&[Coding::Gzip], &cut, 1024).unwrap();
        assert!(!got.complete && !got.over_limit);
        assert!(got.bytes.starts_with(b"{}"));
    }

    #[test]
    fn garbage_is_not_gzip() {
        assert!(decode(&[Coding::Gzip], b"plain text", 1024).is_none());
        assert!(
            decode(
                &[Coding::Gzip],
                &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff],
                1024
            )
            .is_none()
        );
    }
}
