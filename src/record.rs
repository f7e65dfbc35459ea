//! [`AuditRecord`]: the plain owned data of one request, and the in-flight record that becomes it.
//!
//! Capturing is kept cheap: the request path copies the path, the query and the kept header values
//! into the record's own storage ([`RequestText`], inline when short), clones the matched route's
//! handle and copies at most `max_body_bytes` of the body. These facts live in the request's
//! shared state (the `Arc` behind `AuditContext`), which the finished record takes to the writer.
//! Turning them into column values and sanitizing happen in the background writer.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use quanta::Instant;

use bytes::Buf;
use http::{HeaderMap, HeaderValue, Method};

use crate::context::{RequestShared, lock};
use crate::grpc::{GrpcFrames, Protocol};
use crate::layer::Shared;

/// Everything known about one request once it has ended, however it ended.
///
/// Records travel from the request path to the background writer; the writer turns each into one
/// `audit_log` row. The fields are private so the capture can change without breaking users; the
/// accessors cover what sinks and tests read.
///
/// Nothing in a record is sanitized yet (the writer does that), so its `Debug` shows only what
/// cannot hold a secret: the method, the outcome, the latency and the sizes, never the path,
/// query, headers, body or error.
pub struct AuditRecord {
    /// The request's shared state, whose `facts` the writer reads. One pointer: records move from
    /// the service to the body to the queue, and the facts needed no allocation of their own.
    pub(crate) shared: Arc<RequestShared>,
    /// Nanoseconds (584 years fit): a `Duration` takes 16 bytes, 4 of them padding no other
    /// field can use, and a queue slot is allocated for every record of the capacity.
    pub(crate) latency_ns: u64,
    pub(crate) status: Option<u16>,
    pub(crate) grpc_status: Option<i32>,
    pub(crate) grpc_messages_out: Option<u64>,
    pub(crate) response_bytes: u64,
    pub(crate) error: Option<String>,
    /// Bytes of the request body the record keeps, counted against the queue's body budget
    /// while it is queued.
    pub(crate) body_bytes: u32,
    /// Room reserved in the queue (`Block` and `Reject`), returned when the writer takes it.
    #[allow(dead_code, reason = "held for its Drop, which returns the reservation")]
    pub(crate) permit: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Descriptors to decode a gRPC request's messages with, when configured.
    #[cfg(feature = "grpc-reflect")]
    pub(crate) grpc_descriptors: Option<prost_reflect::DescriptorPool>,
    /// A gRPC request's `grpc-encoding`, how its messages are compressed: kept only when
    /// descriptors are configured, which inflate and decode them.
    #[cfg(feature = "grpc-reflect")]
    pub(crate) grpc_encoding: Option<Box<[u8]>>,
    /// A call told as gRPC by its reply only (its request named another content type): the
    /// gRPC the reply spoke, which its request body is read as.
    pub(crate) grpc_by_reply: Option<Protocol>,
}

impl std::fmt::Debug for AuditRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditRecord")
            .field("method", &self.shared.facts.method)
            .field("status", &self.status)
            .field("grpc_status", &self.grpc_status)
            .field("latency", &self.latency())
            .field("response_bytes", &self.response_bytes)
            .field("body_bytes", &self.body_bytes)
            .field("error", &self.error.as_ref().map(|_| "not shown"))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
impl AuditRecord {
    /// A record of `shared`'s request answered 200, with nothing else: for tests to fill in.
    pub(crate) fn answered(shared: Arc<RequestShared>) -> Self {
        Self {
            shared,
            latency_ns: 0,
            status: Some(200),
            grpc_status: None,
            grpc_messages_out: None,
            response_bytes: 0,
            error: None,
            body_bytes: 0,
            permit: None,
            #[cfg(feature = "grpc-reflect")]
            grpc_descriptors: None,
            #[cfg(feature = "grpc-reflect")]
            grpc_encoding: None,
            grpc_by_reply: None,
        }
    }
}

impl AuditRecord {
    /// The HTTP method.
    pub fn method(&self) -> &Method {
        &self.shared.facts.method
    }

    /// The request path, without the query.
    pub fn path(&self) -> &str {
        self.shared
            .facts
            .text
            .str(TextPart::Path)
            .unwrap_or_default()
    }

    /// The HTTP status of the response; `None` when no response was produced.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// What went wrong, if anything did.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// From arrival to the end of the response body (or to the abort), as the request path's
    /// clock read it. The stored `latency_us` is this corrected by that clock's rate, which the
    /// writer measures against the system's monotonic clock: the two may differ by up to about
    /// a percent (see README's request path table, "the clock").
    pub fn latency(&self) -> Duration {
        Duration::from_nanos(self.latency_ns)
    }

    /// The gRPC status code, from the response headers (trailers-only) or trailers; `None` for
    /// a `grpc-status` that is not `1*DIGIT`, or two that differ (the error names them).
    pub fn grpc_status(&self) -> Option<i32> {
        self.grpc_status
    }
}

/// What the layer learns when the request arrives.
#[derive(Debug)]
pub(crate) struct RequestFacts {
    /// When the request arrived; the writer turns it into wall-clock time, off the request path.
    /// `quanta`'s clock reads the CPU's time-stamp counter in a few nanoseconds, where the
    /// system's monotonic clock took about 28 ns a reading on the development machine, twice
    /// a request (it falls back to that clock where the counter is not stable).
    pub(crate) arrived: Instant,
    pub(crate) method: Method,
    /// The path, the query and the header values the record keeps.
    pub(crate) text: RequestText,
    pub(crate) route: Option<RouteName>,
    pub(crate) peer: Option<IpAddr>,
    pub(crate) client_ip: Option<IpAddr>,
    /// The headers recorded by name, copied; boxed, as most layers record none (and so that
    /// what every request fills in stays small).
    pub(crate) headers: Option<Box<RecordedHeaders>>,
}

/// The recorded headers' copies, or a note that they were left out.
#[derive(Debug)]
pub(crate) enum RecordedHeaders {
    /// `counted`: the bytes counted against the queue's budget for them (0 within
    /// [`UNCOUNTED_HEADERS`]).
    Kept { map: HeaderMap, counted: u32 },
    /// Left out, as they did not fit the queue's budget: their values' bytes, for the row.
    NotCaptured(u32),
}

impl RecordedHeaders {
    fn counted(headers: Option<&Self>) -> usize {
        match headers {
            Some(Self::Kept { counted, .. }) => *counted as usize,
            _ => 0,
        }
    }
}

impl RequestFacts {
    /// The recorded headers' copies, when some were kept.
    pub(crate) fn recorded_headers(&self) -> Option<&HeaderMap> {
        match self.headers.as_deref() {
            Some(RecordedHeaders::Kept { map, .. }) => Some(map),
            _ => None,
        }
    }

    /// Bytes of this request's head counted against the queue's budget when they were copied,
    /// returned to it when the writer takes the record (or when it is not queued).
    pub(crate) fn counted_head_bytes(&self) -> usize {
        self.text.counted() + RecordedHeaders::counted(self.headers.as_deref())
    }
}

/// Recorded header copies whose estimated size ([`header_copy_cost`]) is at most this are part of
/// a record's fixed size; larger ones count against the queue's budget.
pub(crate) const UNCOUNTED_HEADERS: usize = 2 << 10;

/// The memory a map of recorded header copies holds, estimated: the boxed map with its first
/// tables, then each value's entry and allocation besides its bytes.
pub(crate) fn header_copy_cost(values: usize, value_bytes: usize) -> usize {
    const MAP: usize = 768;
    const PER_VALUE: usize = 256;
    MAP + values * PER_VALUE + value_bytes
}

/// A part of the request's text kept in [`RequestText`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextPart {
    Path,
    Query,
    RequestId,
    UserAgent,
    ContentType,
    ContentEncoding,
    /// Kept only when a JWT identity is configured; verified in the writer.
    Authorization,
}

const TEXT_PARTS: usize = 7;

/// The request's path, query and kept header values, copied into the record's own storage: inline
/// when they are short, as those of most API clients are, or else one allocation.
///
/// hyper hands a request's URI and header values over as slices of the connection's read
/// buffer. A record holding those slices until the writer takes it would keep that buffer (8 KiB
/// or more) alive, and hyper would allocate a new one for the next request on the connection: a
/// large allocation per request, freed later on the writer's thread, and memory held per queued
/// record far beyond what the record keeps. One small copy costs less.
#[derive(Default)]
pub(crate) struct RequestText {
    bytes: TextBytes,
    /// Where each part ends in `bytes`; each starts where the one before it ends.
    ends: [u32; TEXT_PARTS],
    /// Bit `i` is set when part `i` is present (it may be empty).
    present: u8,
    /// Bit `i` is set when part `i` was cut for the queue's budget: the text is then on the heap,
    /// followed there by each part's length as sent (see [`RequestText::cut`]).
    cut: u8,
}

/// Text up to this many bytes is kept inline: a path, a query, a request id, a short user agent
/// and a content type fit.
const INLINE_TEXT: usize = 128;

/// Text up to this many bytes is part of a record's fixed size, inline or not; longer text counts
/// against the queue's budget (`queue_body_bytes`), which bounds what the queued records keep.
pub(crate) const UNCOUNTED_TEXT: usize = 1 << 10;

/// What each part of a cut text keeps: its first bytes, up to this many. A request id (a column
/// of 128 characters) keeps what its row would have stored.
pub(crate) const CUT_PART_BYTES: usize = 128;

enum TextBytes {
    Inline([u8; INLINE_TEXT]),
    Heap(Box<[u8]>),
}

/// The most a cut text takes: its parts, then their lengths as sent.
const CUT_TEXT: usize = TEXT_PARTS * (CUT_PART_BYTES + 4);
const _: () = assert!(CUT_TEXT <= UNCOUNTED_TEXT);

impl Default for TextBytes {
    fn default() -> Self {
        Self::Inline([0; INLINE_TEXT])
    }
}

impl TextBytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Self::Inline(inline) => inline,
            Self::Heap(heap) => heap,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        match self {
            Self::Inline(inline) => inline,
            Self::Heap(heap) => heap,
        }
    }
}

/// The parts a [`RequestText`] copies, by name; `None` for a part the request lacks.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TextParts<'a> {
    pub(crate) path: Option<&'a [u8]>,
    pub(crate) query: Option<&'a [u8]>,
    pub(crate) request_id: Option<&'a [u8]>,
    pub(crate) user_agent: Option<&'a [u8]>,
    pub(crate) content_type: Option<&'a [u8]>,
    pub(crate) content_encoding: Option<&'a [u8]>,
    pub(crate) authorization: Option<&'a [u8]>,
}

impl<'a> TextParts<'a> {
    /// The parts in the order of [`TextPart`]'s discriminants.
    fn in_order(self) -> [Option<&'a [u8]>; TEXT_PARTS] {
        let mut parts = [None; TEXT_PARTS];
        parts[TextPart::Path as usize] = self.path;
        parts[TextPart::Query as usize] = self.query;
        parts[TextPart::RequestId as usize] = self.request_id;
        parts[TextPart::UserAgent as usize] = self.user_agent;
        parts[TextPart::ContentType as usize] = self.content_type;
        parts[TextPart::ContentEncoding as usize] = self.content_encoding;
        parts[TextPart::Authorization as usize] = self.authorization;
        parts
    }
}

impl RequestFacts {
    /// The facts of a request that arrived at `arrived`, the rest still to be filled in.
    #[inline]
    pub(crate) fn arriving(arrived: Instant) -> Self {
        Self {
            arrived,
            method: Method::GET,
            text: RequestText::default(),
            route: None,
            peer: None,
            client_ip: None,
            headers: None,
        }
    }
}

impl RequestText {
    /// Copies each part, with room for all of it.
    #[cfg(test)]
    pub(crate) fn new(parts: TextParts<'_>) -> Self {
        let mut text = Self::default();
        text.fill(parts, |_| true);
        text
    }

    /// Copies each part into this text, which must be empty (a default one). Text longer than
    /// [`UNCOUNTED_TEXT`] is first offered to `count` (the queue's budget), which says whether
    /// it fits; when it does not, each part is cut to its first [`CUT_PART_BYTES`]. Returns
    /// whether the text was cut.
    pub(crate) fn fill(&mut self, parts: TextParts<'_>, count: impl FnOnce(usize) -> bool) -> bool {
        let given = parts;
        let parts = parts.in_order();
        let mut ends = [0; TEXT_PARTS];
        let mut present = 0;
        let mut len = 0;
        for (i, part) in parts.iter().enumerate() {
            // hyper bounds a request's head far below this; a part past it is left out.
            if let Some(part) = *part
                && len + part.len() <= u32::MAX as usize
            {
                len += part.len();
                present |= 1 << i;
            }
            ends[i] = len as u32;
        }
        if len > INLINE_TEXT {
            if len > UNCOUNTED_TEXT && !count(len) {
                *self = Self::cut(given);
                return true;
            }
            self.bytes = TextBytes::Heap(vec![0; len].into_boxed_slice());
        }
        let room = self.bytes.as_mut_slice();
        let mut start = 0;
        for (i, part) in parts.iter().enumerate() {
            let end = ends[i] as usize;
            // A part left out above has no room: `present` says which have.
            if present & (1 << i) != 0
                && let (Some(part), Some(slot)) = (*part, room.get_mut(start..end))
            {
                slot.copy_from_slice(part);
            }
            start = end;
        }
        self.ends = ends;
        self.present = present;
        false
    }

    /// The text of `parts` cut: each part's first [`CUT_PART_BYTES`], followed by each part's
    /// length as sent (in all within [`UNCOUNTED_TEXT`], so not counted). Apart from
    /// [`fill`](Self::fill), which calls it rarely, so that the common path does not pay for it.
    #[cold]
    #[inline(never)]
    fn cut(parts: TextParts<'_>) -> Self {
        let mut bytes = Vec::with_capacity(CUT_TEXT);
        let mut full = [0_u32; TEXT_PARTS];
        let mut ends = [0; TEXT_PARTS];
        let (mut present, mut cut) = (0, 0);
        for (i, part) in parts.in_order().into_iter().enumerate() {
            // Within `u32`, as `fill` asks (a part past it is left out there too).
            if let Some(part) = part
                && let Ok(len) = u32::try_from(part.len())
            {
                // Cut where a character starts, so that a UTF-8 part stays UTF-8.
                let mut keep = part.len().min(CUT_PART_BYTES);
                while keep > 0 && part.get(keep).is_some_and(|&b| b & 0xc0 == 0x80) {
                    keep -= 1;
                }
                bytes.extend_from_slice(part.get(..keep).unwrap_or_default());
                full[i] = len;
                present |= 1 << i;
                if keep < part.len() {
                    cut |= 1 << i;
                }
            }
            ends[i] = bytes.len() as u32;
        }
        for len in full {
            bytes.extend_from_slice(&len.to_le_bytes());
        }
        Self {
            bytes: TextBytes::Heap(bytes.into_boxed_slice()),
            ends,
            present,
            cut,
        }
    }

    /// Bytes of this text counted against the queue's budget: a whole text past
    /// [`UNCOUNTED_TEXT`] that fitted.
    fn counted(&self) -> usize {
        match &self.bytes {
            // A cut text is shorter.
            TextBytes::Heap(heap) if heap.len() > UNCOUNTED_TEXT => heap.len(),
            _ => 0,
        }
    }

    /// The length the client sent of a part that was cut; `None` for a part kept whole.
    pub(crate) fn cut_from(&self, part: TextPart) -> Option<usize> {
        let i = part as usize;
        if self.cut & (1 << i) == 0 {
            return None;
        }
        let lengths = self.bytes.as_slice().len().checked_sub(TEXT_PARTS * 4)?;
        let at = lengths + 4 * i;
        let len = self.bytes.as_slice().get(at..at + 4)?;
        Some(u32::from_le_bytes(len.try_into().ok()?) as usize)
    }

    pub(crate) fn get(&self, part: TextPart) -> Option<&[u8]> {
        let i = part as usize;
        if self.present & (1 << i) == 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.bytes
            .as_slice()
            .get(start as usize..self.ends[i] as usize)
    }

    /// The part as text, when it is UTF-8 (the path and the query always are).
    pub(crate) fn str(&self, part: TextPart) -> Option<&str> {
        self.get(part)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
    }
}

impl std::fmt::Debug for RequestText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = |part| self.get(part).map(String::from_utf8_lossy);
        f.debug_struct("RequestText")
            .field("path", &text(TextPart::Path))
            .field("query", &text(TextPart::Query))
            .field("request_id", &text(TextPart::RequestId))
            .field("user_agent", &text(TextPart::UserAgent))
            .field("content_type", &text(TextPart::ContentType))
            .field("content_encoding", &text(TextPart::ContentEncoding))
            .field(
                "authorization",
                &self.get(TextPart::Authorization).map(|_| "Sensitive"),
            )
            .finish()
    }
}

/// The matched route, kept as the framework hands it over so the request path does not allocate.
#[derive(Debug, Clone)]
pub(crate) enum RouteName {
    #[cfg(feature = "axum")]
    Axum(axum::extract::MatchedPath),
    Text(Arc<str>),
}

impl RouteName {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            #[cfg(feature = "axum")]
            Self::Axum(matched) => matched.as_str(),
            Self::Text(text) => text,
        }
    }
}

/// A record still in flight. It is finished exactly once: explicitly at the end of the response,
/// on an error, or — when whatever holds it is dropped first — by `Drop`, as a cancellation.
pub(crate) struct PendingRecord {
    /// The request's body had ended before the service ran: nothing can add to its capture, so
    /// finishing need not lock it.
    body_ended: bool,
    /// The request came over HTTP/2, where the response's `Content-Length` goes out as the
    /// service set it (HTTP/1.1 rewrites that of an empty body to 0).
    http2: bool,
    /// The response body had ended when the response was handed over: hyper never polls it.
    response_ended: bool,
    status: Option<u16>,
    response_bytes: u64,
    /// Bytes the response's client is told to expect, when known as the response was handed
    /// over (its `Content-Length`, else the body's exact size, which hyper announces then);
    /// [`UNKNOWN_LENGTH`] when not. hyper drops a body of known length once it has sent that
    /// much, without polling it to its end.
    response_len: u64,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    /// What only some requests need, boxed: the record moves with the response future and then
    /// with the response body, and most requests move it without these.
    rare: Option<Box<Rare>>,
    /// The request's state until the record is finished; then the record has taken it to the
    /// queue (or dropped it, skipped), and `None` says the record is finished.
    shared: Option<Arc<RequestShared>>,
    layer: Arc<Shared>,
}

/// The parts of an in-flight record that only gRPC calls and echoed request ids use.
#[derive(Debug, Default)]
struct Rare {
    /// Set for gRPC requests only.
    grpc: Option<GrpcResponse>,
    /// From the response headers (trailers-only), trailers or a deadline: the code, or the
    /// error naming a `grpc-status` that is none.
    grpc_status: Option<Result<i32, String>>,
    /// `grpc-message`, decoded, from the headers or trailers that carried `grpc-status`.
    grpc_message: Option<String>,
    /// The request id to echo on the response, when the layer is asked to.
    echo_request_id: Option<HeaderValue>,
    /// A request that sent `TE: trailers` under a content type that is no gRPC's (tonic serves
    /// it as a call): the client's deadline, if any, for when the reply is gRPC's.
    grpc_expected: Option<Option<Duration>>,
    /// Such a request's `grpc-encoding`, copied for the writer when descriptors are configured.
    #[cfg(feature = "grpc-reflect")]
    grpc_expected_encoding: Option<Box<[u8]>>,
    /// The gRPC the reply spoke, for a call told by its reply.
    grpc_by_reply: Option<Protocol>,
    /// The response's status is informational (see [`PendingRecord::set_response`]).
    unsendable_status: bool,
}

/// What a gRPC request adds to its in-flight record.
#[derive(Debug, Default)]
struct GrpcResponse {
    messages: GrpcFrames,
    /// The client's deadline, from `grpc-timeout`.
    timeout: Option<Duration>,
    /// `grpc-encoding`, copied for the writer when descriptors are configured.
    #[cfg(feature = "grpc-reflect")]
    encoding: Option<Box<[u8]>>,
}

impl std::fmt::Debug for PendingRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingRecord")
            .field("request", &self.shared.as_ref().map(|shared| &shared.facts))
            .field("finished", &self.is_finished())
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Error text of a request whose future was dropped before the inner service answered.
pub(crate) const CANCELLED_BEFORE_RESPONSE: &str = "cancelled: the request was dropped before the service responded (client disconnected, a timeout, or the server stopped)";
/// Error text of a response whose body was dropped before its end.
pub(crate) const CANCELLED_DURING_RESPONSE: &str = "cancelled: the response body was dropped before its end (client disconnected, or the server stopped)";
/// Error text of a record dropped while its task unwinds from a panic (the service's, or its
/// response body's).
pub(crate) const PANICKED: &str = "panic: the service panicked while handling the request (the stream was reset, unless a panic layer outside this one answered)";
/// Error text of a gRPC response that ended without a `grpc-status`.
pub(crate) const GRPC_NO_TRAILERS: &str = "grpc: stream ended without trailers (no grpc-status)";
/// gRPC's `DEADLINE_EXCEEDED`.
const GRPC_DEADLINE_EXCEEDED: i32 = 4;
/// `response_len` of a body whose length is not known in advance.
const UNKNOWN_LENGTH: u64 = u64::MAX;

impl PendingRecord {
    pub(crate) fn new(shared: Arc<RequestShared>, layer: Arc<Shared>) -> Self {
        Self {
            body_ended: false,
            http2: false,
            response_ended: false,
            status: None,
            response_bytes: 0,
            response_len: UNKNOWN_LENGTH,
            permit: None,
            rare: None,
            shared: Some(shared),
            layer,
        }
    }

    /// Notes that the request's body had ended before the service ran (see `body_ended`).
    pub(crate) fn set_body_ended(&mut self) {
        self.body_ended = true;
    }

    /// Notes a request that came over HTTP/2 (see `http2`).
    pub(crate) fn set_http2(&mut self) {
        self.http2 = true;
    }

    pub(crate) fn set_permit(&mut self, permit: tokio::sync::OwnedSemaphorePermit) {
        self.permit = Some(permit);
    }

    fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    /// The gRPC part of the record, for a gRPC request.
    fn grpc(&self) -> Option<&GrpcResponse> {
        self.rare.as_ref()?.grpc.as_ref()
    }

    pub(crate) fn echo_request_id(&mut self, id: HeaderValue) {
        self.rare().echo_request_id = Some(id);
    }

    pub(crate) fn layer(&self) -> &Shared {
        &self.layer
    }

    /// The layer's shared state, for what must hold it apart from this record.
    pub(crate) fn layer_handle(&self) -> Arc<Shared> {
        Arc::clone(&self.layer)
    }

    pub(crate) fn take_echo_request_id(&mut self) -> Option<HeaderValue> {
        self.rare.as_mut()?.echo_request_id.take()
    }

    /// The request's state, while the record is not finished.
    pub(crate) fn shared(&self) -> Option<&Arc<RequestShared>> {
        self.shared.as_ref()
    }

    /// Notes the response's status and the length its client is told: its `Content-Length`,
    /// else `exact_len`, the body's exact size hint, which hyper announces when the header is
    /// missing. A header that disagrees with the body is what the client holds the body to:
    /// hyper's HTTP/1.1 writes the hint's bytes under it, HTTP/2 resets the stream. `ended`: the
    /// body had ended already, and HTTP/1.1 announces it as `content-length: 0` whatever the
    /// header said.
    pub(crate) fn set_response(
        &mut self,
        status: u16,
        headers: &HeaderMap,
        exact_len: Option<u64>,
        ended: bool,
    ) {
        self.status = Some(status);
        // A final response with an informational status: the client gets no such response.
        if status < 200 {
            self.informational(status);
        }
        self.response_ended = ended;
        self.response_len = if ended && !self.http2 {
            0
        } else {
            match content_length(headers) {
                Some(len) => len,
                None => exact_len.unwrap_or(UNKNOWN_LENGTH),
            }
        };
        // A trailers-only gRPC reply carries its status in the headers.
        if self.grpc().is_some() {
            self.reread_web_reply(headers);
            self.read_grpc_status(headers);
        } else if self
            .rare
            .as_ref()
            .is_some_and(|rare| rare.grpc_expected.is_some())
        {
            self.grpc_by_reply(headers);
        }
    }

    /// Notes a final response with an informational status, out of line: but an HTTP/1.1
    /// upgrade's 101, HTTP does not allow it.
    #[cold]
    #[inline(never)]
    fn informational(&mut self, status: u16) {
        if status != 101 || self.http2 {
            self.rare().unsendable_status = true;
        }
    }

    /// Notes a request that may be a gRPC call under another content type (see
    /// [`Rare::grpc_expected`]), with the client's deadline.
    pub(crate) fn expect_grpc_reply(&mut self, timeout: Option<Duration>) {
        self.rare().grpc_expected = Some(timeout);
    }

    /// The `grpc-encoding` of a request that [may be a call](Self::expect_grpc_reply), for the
    /// writer's decoding with descriptors if its reply tells it is one.
    #[cfg(feature = "grpc-reflect")]
    pub(crate) fn expect_grpc_encoding(&mut self, encoding: &[u8]) {
        self.rare().grpc_expected_encoding = Some(encoding.into());
    }

    /// Makes the record a gRPC call's when the reply to a request that [may be
    /// one](Self::expect_grpc_reply) is gRPC's: tonic served it as a call, and its status and
    /// messages count, whatever the request's content type said.
    #[cold]
    fn grpc_by_reply(&mut self, headers: &HeaderMap) {
        let Some(protocol) = crate::service::grpc_kind(headers.get(http::header::CONTENT_TYPE))
        else {
            return;
        };
        let timeout = self.rare().grpc_expected.flatten();
        self.set_grpc(timeout, protocol);
        #[cfg(feature = "grpc-reflect")]
        if let Some(encoding) = self.rare().grpc_expected_encoding.take() {
            self.set_grpc_encoding(&encoding);
        }
        self.rare().grpc_by_reply = Some(protocol);
        self.read_grpc_status(headers);
    }

    /// A gRPC-Web reply sent in the other form than its request's: tonic-web answers in the
    /// form the request's `Accept` asks for (binary to curl's `*/*`, however the request came).
    /// Read in the request's form, such a reply lost its status and had its messages miscounted
    /// (found by a probe). No byte of the reply has been counted yet.
    fn reread_web_reply(&mut self, headers: &HeaderMap) {
        let Some(grpc) = self.rare.as_mut().and_then(|rare| rare.grpc.as_mut()) else {
            return;
        };
        let Some(asked) = grpc.messages.web_form() else {
            return;
        };
        match crate::service::grpc_kind(headers.get(http::header::CONTENT_TYPE)) {
            Some(Protocol::Web) if asked != Protocol::Web => grpc.messages = GrpcFrames::web(),
            Some(Protocol::WebText) if asked != Protocol::WebText => {
                grpc.messages = GrpcFrames::web_text();
            }
            _ => {}
        }
    }

    /// Marks a gRPC request: response messages are counted, a missing `grpc-status` is noted,
    /// and `timeout` is the client's deadline (`grpc-timeout`). A gRPC-Web response brings its
    /// trailers in its body, in base64 for the text form.
    pub(crate) fn set_grpc(&mut self, timeout: Option<Duration>, protocol: Protocol) {
        let messages = match protocol {
            Protocol::Native => GrpcFrames::default(),
            Protocol::Web => GrpcFrames::web(),
            Protocol::WebText => GrpcFrames::web_text(),
        };
        self.rare().grpc = Some(GrpcResponse {
            messages,
            timeout,
            #[cfg(feature = "grpc-reflect")]
            encoding: None,
        });
    }

    /// Keeps a gRPC request's `grpc-encoding` for the writer, which inflates its messages to
    /// decode them. Call after [`set_grpc`](Self::set_grpc). A copy: hyper's values are slices
    /// of the connection's read buffer.
    #[cfg(feature = "grpc-reflect")]
    pub(crate) fn set_grpc_encoding(&mut self, encoding: &[u8]) {
        if let Some(grpc) = self.rare.as_mut().and_then(|rare| rare.grpc.as_mut()) {
            grpc.encoding = Some(encoding.into());
        }
    }

    /// The status code received, or the deadline's.
    fn grpc_status(&self) -> Option<i32> {
        self.rare
            .as_ref()?
            .grpc_status
            .as_ref()?
            .as_ref()
            .ok()
            .copied()
    }

    /// Whether a `grpc-status` was received (valid or not), or the deadline passed: the call
    /// has ended.
    fn has_grpc_status(&self) -> bool {
        self.rare
            .as_ref()
            .is_some_and(|rare| rare.grpc_status.is_some())
    }

    pub(crate) fn add_response_data<D: Buf>(&mut self, data: &D) {
        self.response_bytes += data.remaining() as u64;
        if let Some(grpc) = self.rare.as_mut().and_then(|rare| rare.grpc.as_mut()) {
            grpc.messages.push_buf(data);
        }
    }

    /// Reads a gRPC status from the response's trailers, unless its headers carried one: a
    /// trailers-only reply has ended the call, as for a gRPC-Web reply's trailer frame (tonic's
    /// client reads no further), whatever follows it.
    pub(crate) fn on_trailers(&mut self, trailers: &HeaderMap) {
        // A request that is no call (its reply's headers did not make it one) has no gRPC
        // status, whatever its trailers hold: read from them, a row had one when the reply
        // gave it in trailers and none when in headers (found by a probe).
        if self.grpc().is_some() && !self.has_grpc_status() {
            self.read_grpc_status(trailers);
        }
    }

    fn read_grpc_status(&mut self, headers: &HeaderMap) {
        if let Some((code, message)) = crate::grpc::status_of(headers) {
            let rare = self.rare();
            rare.grpc_status = Some(code);
            rare.grpc_message = message;
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.shared.is_none()
    }

    pub(crate) fn finish_ok(&mut self) {
        if !self.has_grpc_status()
            && let Some(block) = self.grpc().and_then(|grpc| grpc.messages.web_trailers())
        {
            let trailers = crate::grpc::web_trailer_map(block);
            self.read_grpc_status(&trailers);
        }
        let error = match self.rare.as_mut() {
            Some(rare) if rare.grpc.is_some() => {
                grpc_error(rare.grpc_status.as_ref(), rare.grpc_message.take())
            }
            Some(rare) if rare.unsendable_status => Some(format!(
                "a final response with the informational status {}, which HTTP does not allow: \
                 the client got none (hyper answers 500 in its place over HTTP/1.1 and resets \
                 the stream over HTTP/2)",
                self.status.unwrap_or_default()
            )),
            Some(rare) => rare.grpc_message.take(),
            None => None,
        };
        self.finish(error, true);
    }

    /// Finishes the record of a body that came to its end. A body of another length than its
    /// response announced (`Content-Length`, or its exact size hint) did not reach the client
    /// as sent: hyper ends an HTTP/1.1 connection whose body fell short, and resets an HTTP/2
    /// stream either way.
    pub(crate) fn finish_at_end(&mut self) {
        // A body's `None` and its `is_end_stream` after it both say it ended: once is enough.
        if self.is_finished() {
            return;
        }
        if self.head_body_over_http2() {
            let error = head_body_error(self.response_bytes);
            self.finish_err(error);
        } else if self.response_len != UNKNOWN_LENGTH
            && self.response_bytes != self.response_len
            && !self.bodiless()
        {
            let error = format!(
                "response body of {} bytes where its length said {}: the server cannot send it as \
                 announced",
                self.response_bytes, self.response_len
            );
            self.finish_err(error);
        } else {
            self.finish_ok();
        }
    }

    /// A request that may have been a call had its messages counted, as gRPC's binary frames:
    /// the count holds only when its reply told it was such a call. Out of line: the common
    /// request has no rare part.
    #[cold]
    #[inline(never)]
    fn forget_unconfirmed_grpc_count(&self, shared: &RequestShared) {
        if let Some(rare) = &self.rare
            && rare.grpc_expected.is_some()
            && matches!(rare.grpc_by_reply, None | Some(Protocol::WebText))
        {
            lock(&shared.capture).forget_grpc_messages();
        }
    }

    pub(crate) fn finish_err(&mut self, error: String) {
        self.finish(Some(error), false);
    }

    /// Submits the record; `ended`: the response body went out to its end (else it failed or
    /// was dropped, and its messages are those sent so far).
    fn finish(&mut self, error: Option<String>, ended: bool) {
        // Taken, not cloned: the record carries this handle to the queue.
        let Some(shared) = self.shared.take() else {
            return;
        };
        let latency = shared.facts.arrived.elapsed();
        if shared.is_skipped() {
            self.layer.intake.skip_record(&shared.facts);
            return;
        }
        if self.rare.is_some() {
            self.forget_unconfirmed_grpc_count(&shared);
        }
        // The body and the context stay in the shared state, sealed, for the writer to take (a
        // body that had ended before the service ran needs no seal: nothing can add to it).
        let (error, body_bytes) = if self.body_ended {
            (error, 0)
        } else {
            let mut capture = lock(&shared.capture);
            let kept = capture.kept();
            let body_error = capture.seal();
            (error.or_else(|| body_error.map(str::to_owned)), kept)
        };
        shared.seal_fields();
        // A text reply cut inside a group counts what was sent, as a binary one does.
        let grpc_messages_out = self.grpc().and_then(|g| {
            if ended {
                g.messages.messages()
            } else {
                g.messages.messages_so_far()
            }
        });
        #[cfg(feature = "grpc-reflect")]
        let grpc_descriptors = self.grpc().and(self.layer.config.grpc_descriptors.clone());
        #[cfg(feature = "grpc-reflect")]
        let grpc_encoding = self
            .rare
            .as_mut()
            .and_then(|rare| rare.grpc.as_mut())
            .and_then(|grpc| grpc.encoding.take());
        self.layer.intake.submit(AuditRecord {
            shared,
            latency_ns: u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX),
            status: self.status,
            grpc_status: self.grpc_status(),
            grpc_messages_out,
            response_bytes: self.response_bytes,
            error,
            body_bytes: u32::try_from(body_bytes).unwrap_or(u32::MAX),
            permit: self.permit.take(),
            #[cfg(feature = "grpc-reflect")]
            grpc_descriptors,
            #[cfg(feature = "grpc-reflect")]
            grpc_encoding,
            grpc_by_reply: self.rare.as_ref().and_then(|rare| rare.grpc_by_reply),
        });
    }
}

impl PendingRecord {
    /// The client's deadline, when a gRPC call without a status yet has outlived it: before the
    /// response, or while it streams (tonic enforces the deadline only until the headers; the
    /// client gives up on the stream at its deadline).
    fn deadline_passed(&self) -> Option<Duration> {
        if self.has_grpc_status() {
            return None;
        }
        let timeout = self.grpc()?.timeout?;
        // The client's clock (and tonic's deadline timer) started before this layer's did: allow
        // for the time the request took to get here.
        let allowance = (timeout / 10).min(Duration::from_millis(50));
        let elapsed = self.shared.as_ref()?.facts.arrived.elapsed() + allowance;
        (elapsed >= timeout).then_some(timeout)
    }

    /// The response went out whole though its body was not polled to its end: hyper sends no
    /// body for HEAD, 1xx, 204, 304 and a successful CONNECT, and drops a body of known length
    /// once that many bytes are written (as axum drops the body of a HEAD response).
    fn response_sent_whole(&self) -> bool {
        self.status.is_some() && (self.bodiless() || self.response_bytes == self.response_len)
    }

    /// A body handed on in answer to a HEAD over HTTP/2: hyper's HTTP/2 sends it (its HTTP/1.1
    /// does not, nor does axum give one), and the client, which takes none there, resets the
    /// stream.
    fn head_body_over_http2(&self) -> bool {
        self.http2
            && self.response_bytes > 0
            && self
                .shared
                .as_ref()
                .is_some_and(|shared| shared.facts.method == Method::HEAD)
    }

    /// A response that carries no body whatever its headers say: to a HEAD, a 1xx, 204 or 304,
    /// a successful CONNECT.
    fn bodiless(&self) -> bool {
        let (Some(status), Some(shared)) = (self.status, &self.shared) else {
            return false;
        };
        let method = &shared.facts.method;
        *method == Method::HEAD
            || (100..200).contains(&status)
            || status == 204
            || status == 304
            || (*method == Method::CONNECT && (200..300).contains(&status))
    }
}

/// The error of a gRPC call that ended: its `grpc-message`; for a `grpc-status` that is none, the
/// error naming it, then the message; for none at all, that the stream ended without one.
fn grpc_error(status: Option<&Result<i32, String>>, message: Option<String>) -> Option<String> {
    match (status, message) {
        (None, _) => Some(GRPC_NO_TRAILERS.to_owned()),
        (Some(Err(invalid)), Some(message)) => Some(format!("{invalid}: {message}")),
        (Some(Err(invalid)), None) => Some(invalid.clone()),
        (Some(Ok(_)), message) => message,
    }
}

/// The `Content-Length` of a response, when it has one that hyper would send.
/// The error of [`PendingRecord::head_body_over_http2`].
fn head_body_error(bytes: u64) -> String {
    format!(
        "response body of {bytes} bytes to a HEAD over HTTP/2: the client takes none there and \
         resets the stream"
    )
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get(http::header::CONTENT_LENGTH)?.to_str().ok()?;
    value.trim().parse().ok()
}

impl Drop for PendingRecord {
    fn drop(&mut self) {
        if !self.is_finished() {
            let message = if std::thread::panicking() {
                PANICKED.to_owned()
            } else if self.head_body_over_http2() {
                head_body_error(self.response_bytes)
            } else if self.response_ended {
                // Dropped unread, as hyper drops a body that has ended: gone out as it was.
                self.finish_at_end();
                return;
            } else if self.response_sent_whole() {
                self.finish_ok();
                return;
            } else if let Some(timeout) = self.deadline_passed() {
                // The server's deadline enforcement (tonic's, outside this layer) dropped the call,
                // or the client gave up at its deadline: either way the call ended so.
                self.rare().grpc_status = Some(Ok(GRPC_DEADLINE_EXCEEDED));
                let when = if self.status.is_some() {
                    "during the response"
                } else {
                    "before the service responded"
                };
                format!(
                    "grpc: deadline exceeded (grpc-timeout {} ms), cancelled {when}",
                    timeout.as_millis()
                )
            } else if self.response_len != UNKNOWN_LENGTH && self.response_bytes > self.response_len
            {
                // hyper sends an HTTP/1.1 body to its announced length and drops the rest.
                format!(
                    "response body longer than the {} bytes its length said ({} handed on): the \
                     server cut it there",
                    self.response_len, self.response_bytes
                )
            } else if self.status.is_some() {
                CANCELLED_DURING_RESPONSE.to_owned()
            } else {
                CANCELLED_BEFORE_RESPONSE.to_owned()
            };
            self.finish(Some(message), false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record's `Debug` (a user's `{record:?}`, a test's failure) shows none of what the
    /// writer has not sanitized yet: path, query, headers, body, error.
    #[test]
    fn a_records_debug_shows_no_captured_value() {
        let mut facts = RequestFacts::arriving(quanta::Instant::now());
        facts.text.fill(
            TextParts {
                path: Some(b"/reset/secret-path"),
                query: Some(b"password=secret-query"),
                user_agent: Some(b"secret-agent"),
                content_type: Some(b"application/json"),
                ..TextParts::default()
            },
            |_| true,
        );
        let body = br#"{"password":"secret-body"}"#;
        let capture = crate::body::Capture::read_to_end(body, body.len());
        let record = AuditRecord {
            error: Some("bad token secret-error".to_owned()),
            ..AuditRecord::answered(RequestShared::new(capture, facts))
        };
        let debug = format!("{record:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("method: GET"), "{debug}");
        assert!(debug.contains("status: Some(200)"), "{debug}");
        assert!(debug.contains(r#"error: Some("not shown")"#), "{debug}");
    }

    #[test]
    fn request_text_keeps_each_part_apart() {
        let text = RequestText::new(TextParts {
            path: Some(b"/a/b"),
            query: Some(b""),
            user_agent: Some(b"agent \xff"),
            content_type: Some(b"text/plain"),
            authorization: Some(b"Bearer t"),
            ..TextParts::default()
        });
        assert_eq!(text.str(TextPart::Path), Some("/a/b"));
        // An empty query (`/a/b?`) is present; a missing header is not.
        assert_eq!(text.str(TextPart::Query), Some(""));
        assert_eq!(text.get(TextPart::RequestId), None);
        assert_eq!(text.get(TextPart::UserAgent), Some(&b"agent \xff"[..]));
        assert_eq!(text.str(TextPart::UserAgent), None, "not UTF-8");
        assert_eq!(text.str(TextPart::ContentType), Some("text/plain"));
        assert_eq!(text.get(TextPart::ContentEncoding), None);
        assert_eq!(text.str(TextPart::Authorization), Some("Bearer t"));
        let debug = format!("{text:?}");
        assert!(!debug.contains("Bearer"), "{debug}");
        assert_eq!(RequestText::default().get(TextPart::Path), None);

        // Past the inline room, the text moves to the heap whole; each side of the edge.
        for len in [INLINE_TEXT, INLINE_TEXT + 1] {
            let agent = vec![b'a'; len - 5];
            let text = RequestText::new(TextParts {
                path: Some(b"/p"),
                query: Some(b"q"),
                user_agent: Some(&agent),
                content_encoding: Some(b"br"),
                ..TextParts::default()
            });
            assert_eq!(
                matches!(text.bytes, TextBytes::Inline(_)),
                len <= INLINE_TEXT,
                "{len}"
            );
            assert_eq!(text.get(TextPart::Path), Some(&b"/p"[..]));
            assert_eq!(text.get(TextPart::Query), Some(&b"q"[..]));
            assert_eq!(text.get(TextPart::UserAgent), Some(&agent[..]));
            assert_eq!(text.get(TextPart::RequestId), None);
            assert_eq!(text.get(TextPart::ContentEncoding), Some(&b"br"[..]));
        }
    }

    /// Text past the uncounted size is offered to the budget; when it does not fit, each part
    /// keeps its first bytes, cut where a character starts, and the lengths sent.
    #[test]
    fn long_text_is_counted_or_cut() {
        let path = format!("/{}", "é".repeat(200));
        let agent = "a".repeat(UNCOUNTED_TEXT);
        let parts = TextParts {
            path: Some(path.as_bytes()),
            query: Some(b"q=1"),
            request_id: Some(b"id-1"),
            user_agent: Some(agent.as_bytes()),
            ..TextParts::default()
        };
        let len = path.len() + 3 + 4 + agent.len();

        // Within the uncounted size the budget is not asked.
        let mut short = RequestText::default();
        let asked = short.fill(
            TextParts {
                user_agent: Some(&agent.as_bytes()[..UNCOUNTED_TEXT - path.len() - 7]),
                ..parts
            },
            |_| panic!("asked"),
        );
        assert!(!asked && short.counted() == 0);

        let mut fitted = RequestText::default();
        let mut offered = None;
        assert!(!fitted.fill(parts, |bytes| {
            offered = Some(bytes);
            true
        }));
        assert_eq!((offered, fitted.counted()), (Some(len), len));
        assert_eq!(fitted.str(TextPart::Path), Some(&*path));
        assert_eq!(fitted.cut_from(TextPart::Path), None);

        let mut cut = RequestText::default();
        assert!(cut.fill(parts, |_| false));
        assert_eq!(cut.counted(), 0);
        // 128 bytes would split a two-byte character: 127 are kept, still UTF-8.
        let kept = cut.str(TextPart::Path).expect("UTF-8");
        assert_eq!(kept.len(), CUT_PART_BYTES - 1);
        assert!(path.starts_with(kept));
        assert_eq!(cut.cut_from(TextPart::Path), Some(path.len()));
        assert_eq!(cut.str(TextPart::Query), Some("q=1"));
        assert_eq!(
            cut.cut_from(TextPart::Query),
            None,
            "short parts stay whole"
        );
        assert_eq!(cut.str(TextPart::RequestId), Some("id-1"));
        assert_eq!(
            cut.get(TextPart::UserAgent),
            Some(&agent.as_bytes()[..CUT_PART_BYTES])
        );
        assert_eq!(cut.cut_from(TextPart::UserAgent), Some(agent.len()));
        assert_eq!(cut.get(TextPart::ContentType), None);
    }

    /// A call's error from what its trailers (or headers) said: a `grpc-status` that is none
    /// makes the call failed, its error naming the value, then the call's own message.
    #[test]
    fn an_invalid_grpc_status_is_the_calls_error() {
        let invalid = Err(r#"grpc: invalid grpc-status "-1""#.to_owned());
        assert_eq!(grpc_error(Some(&Ok(0)), None), None);
        assert_eq!(
            grpc_error(Some(&Ok(5)), Some("gone".to_owned())).as_deref(),
            Some("gone")
        );
        assert_eq!(
            grpc_error(Some(&invalid), None).as_deref(),
            Some(r#"grpc: invalid grpc-status "-1""#)
        );
        assert_eq!(
            grpc_error(Some(&invalid), Some("gone".to_owned())).as_deref(),
            Some(r#"grpc: invalid grpc-status "-1": gone"#)
        );
        assert_eq!(grpc_error(None, None).as_deref(), Some(GRPC_NO_TRAILERS));
        // Whatever the transport, the status is read by one function: see
        // `grpc::tests::grpc_status_is_digits_only_from_every_transport`.
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("+0"));
        let (status, message) = crate::grpc::status_of(&trailers).expect("a grpc-status");
        assert_eq!(
            grpc_error(Some(&status), message).as_deref(),
            Some(r#"grpc: invalid grpc-status "+0""#)
        );
    }

    /// What moves with every response (the in-flight record, in the response future and then in
    /// the response body) and with every request (the request body, in the handler's future)
    /// stays small: the rare parts are boxed.
    #[test]
    fn what_moves_with_each_request_stays_small() {
        type Body = http_body_util::Full<bytes::Bytes>;
        let pending = std::mem::size_of::<PendingRecord>();
        let request_body = std::mem::size_of::<crate::body::RequestBody<Body>>();
        let response_body = std::mem::size_of::<crate::body::ResponseBody<Body>>();
        assert!(pending <= 64, "an in-flight record takes {pending} bytes");
        assert!(
            request_body <= std::mem::size_of::<Body>() + 64,
            "a request body takes {request_body} bytes"
        );
        assert!(
            response_body <= std::mem::size_of::<Body>() + 72,
            "a response body takes {response_body} bytes"
        );
    }

    /// The README bounds the queue by `capacity × 2 KiB` (4 KiB with recorded headers) besides
    /// `queue_body_bytes`: the record and its request's shared state, which hold up to 128
    /// bytes of the request's text inline, and the head's copies that are not counted against
    /// the budget (longer text or a cut one; recorded headers), each one allocation besides.
    #[test]
    fn a_queued_record_stays_within_its_documented_size() {
        const ALLOCATION: usize = 16; // what the allocator adds to one
        let fixed = std::mem::size_of::<AuditRecord>()
            + std::mem::size_of::<RequestShared>()
            + 2 * std::mem::size_of::<usize>(); // the Arc's counts
        assert!(
            fixed <= 720,
            "a record and its shared state take {fixed} bytes"
        );
        let text = fixed + UNCOUNTED_TEXT + ALLOCATION;
        assert!(text <= 2 << 10, "with its text: {text} bytes");
        assert!(text + UNCOUNTED_HEADERS <= 4 << 10);
        // The estimate of recorded headers covers at least the map and one value's entry.
        assert!(header_copy_cost(1, 0) >= std::mem::size_of::<HeaderMap>() + 8 * 4 + 6 * 96);
    }

    /// `capacity`'s documentation and the README give a queue slot's size, allocated for every
    /// record of the capacity when the layer is built: the record and the stamp crossbeam's
    /// `ArrayQueue` keeps beside it.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn a_queue_slot_is_its_documented_size() {
        let align = std::mem::align_of::<AuditRecord>().max(std::mem::align_of::<usize>());
        let slot = (std::mem::size_of::<usize>() + std::mem::size_of::<AuditRecord>())
            .next_multiple_of(align);
        // `grpc-reflect` adds what the writer's decoding needs (descriptors, the encoding).
        let documented = if cfg!(feature = "grpc-reflect") {
            136
        } else {
            112
        };
        assert_eq!(slot, documented, "a queue slot takes {slot} bytes");
    }
}
