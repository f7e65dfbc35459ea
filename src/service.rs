//! [`Audit`]: the middleware service.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http::header::{CONTENT_ENCODING, CONTENT_TYPE, USER_AGENT};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::Overflow;
use crate::body::{Capture, PreRead, RequestBody, ResponseBody};
use crate::context::{AuditContext, RequestShared, lock};
use crate::future::ResponseFuture;
use crate::grpc::Protocol;
use crate::layer::{Config, Shared};
use crate::record::{
    PendingRecord, RecordedHeaders, RequestFacts, RouteName, TextParts, UNCOUNTED_HEADERS,
    header_copy_cost,
};
use crate::writer::Channel;

/// The socket address of the client connection, for servers without axum's `ConnectInfo`.
///
/// Insert it into the request extensions (for example in a plain hyper `service_fn` before calling
/// the audited service, or with `tower_http::add_extension`) and the layer records it as the peer.
///
/// ```
/// use std::net::SocketAddr;
/// use tower_audit::PeerAddr;
///
/// let mut request = http::Request::new(());
/// let peer: SocketAddr = "192.0.2.7:50123".parse().unwrap();
/// request.extensions_mut().insert(PeerAddr(peer));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// Middleware that records each request it serves; built by [`AuditLayer`](crate::AuditLayer).
#[derive(Clone)]
pub struct Audit<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for Audit<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Audit")
            .field("inner", &self.inner)
            .field("config", &self.shared.config)
            .finish()
    }
}

impl<S> Audit<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Self { inner, shared }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Audit<S>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>> + Clone,
    S::Error: fmt::Display,
    ReqBody: Body,
    ReqBody::Error: fmt::Display,
    ResBody: Body,
    ResBody::Error: fmt::Display,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let start = quanta::Instant::now();
        let (mut parts, body) = request.into_parts();
        let config = &self.shared.config;
        let channel = self.shared.intake.channel();
        if config.skips(&parts) {
            self.shared.intake.count_skipped();
            let request = Request::from_parts(parts, RequestBody::new(body, None));
            return ResponseFuture::called(self.inner.call(request), None);
        }

        // Block and Reject reserve room in the queue before the service runs.
        let mut wait_for_room = None;
        let permit = match &channel.permits {
            None => None,
            Some(permits) => match permits.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => match config.overflow {
                    Overflow::Block { timeout } => {
                        wait_for_room = Some((Box::pin(permits.clone().acquire_owned()), timeout));
                        None
                    }
                    _ => {
                        channel.reject();
                        return ResponseFuture::rejected();
                    }
                },
            },
        };

        // Before the scan, which then finds a generated id too.
        let echo = config
            .echo_request_id
            .then(|| request_id(&mut parts, config));
        let seen = Seen::scan(&parts.headers, config);
        let kind = grpc_kind(seen.content_type);
        let grpc = kind.is_some();
        // Maybe a gRPC call under another content type: its reply's tells.
        let grpc_by_reply = !grpc && seen.te_trailers;
        let mut capture = Capture::new(config.max_body_bytes);
        let ended = body.is_end_stream();
        if ended {
            capture.set_ended();
        } else if let Some(len) = seen
            .content_length
            .and_then(|value| std::str::from_utf8(value.as_bytes()).ok()?.parse().ok())
        {
            capture.declare_len(len);
        }
        if let Some(protocol) = kind {
            capture.count_grpc_messages(protocol);
        } else if grpc_by_reply {
            // Counted as they stream, in case the reply tells a call: a body past the capture's
            // cap could not be counted afterwards. Forgotten if the reply does not.
            capture.count_grpc_messages(Protocol::Native);
        }
        let pre_read = should_pre_read(&seen, &body, config).then_some(config.body_read_timeout);
        let mut shared = RequestShared::new(capture, RequestFacts::arriving(start));
        // Filled where they stay, rather than built and then moved into the allocation (a
        // fresh `Arc`: `get_mut` always has it).
        if let Some(state) = Arc::get_mut(&mut shared) {
            fill_facts(&mut state.facts, &parts, config, channel, grpc, seen);
        }
        if let Some(identify) = &config.identify {
            let identity = identify(&parts);
            let mut fields = lock(&shared.fields);
            fields.user_id = identity.user_id;
            fields.tenant_id = identity.tenant_id;
        }
        // An audit layer outside this one (an app's, around a nested router's own): what the
        // handler sets through this context goes to its row too. The insert's own lookup tells.
        if let Some(outer) = parts
            .extensions
            .insert(AuditContext::new(Arc::clone(&shared)))
        {
            shared.nest_in(outer);
        }
        // A body that has ended already has nothing to capture: its wrapper gets no handle on
        // the shared state (no lock when the handler polls it), and the record takes this one.
        let body_shared = (!ended).then(|| Arc::clone(&shared));
        let mut pending = PendingRecord::new(shared, self.shared.clone());
        if ended {
            pending.set_body_ended();
        }
        if parts.version == http::Version::HTTP_2 {
            pending.set_http2();
        }
        if let Some(kind) = kind {
            pending.set_grpc(grpc_timeout(&parts.headers), kind);
            // Only the writer's decoding with descriptors reads it: looked up for no one else.
            #[cfg(feature = "grpc-reflect")]
            if config.grpc_descriptors.is_some()
                && let Some(encoding) = parts.headers.get("grpc-encoding")
            {
                pending.set_grpc_encoding(encoding.as_bytes());
            }
        }
        if grpc_by_reply {
            pending.expect_grpc_reply(grpc_timeout(&parts.headers));
            #[cfg(feature = "grpc-reflect")]
            if config.grpc_descriptors.is_some()
                && let Some(encoding) = parts.headers.get("grpc-encoding")
            {
                pending.expect_grpc_encoding(encoding.as_bytes());
            }
        }
        if let Some(id) = echo {
            pending.echo_request_id(id);
        }
        if let Some(permit) = permit {
            pending.set_permit(permit);
        }

        if let Some((acquire, timeout)) = wait_for_room {
            let clone = self.inner.clone();
            let service = std::mem::replace(&mut self.inner, clone);
            return ResponseFuture::wait_for_room(
                service, parts, body, pending, acquire, timeout, pre_read,
            );
        }

        if let Some(timeout) = pre_read {
            // A small body has usually arrived with the head: take it now, without a timer or a
            // second trip through the future. The future polls again with a real waker if not.
            let mut pre_read = PreRead::new(body);
            let mut now = Context::from_waker(Waker::noop());
            if let Some(shared) = pending.shared()
                && pre_read.poll_read(&mut now, shared).is_ready()
            {
                let body = RequestBody::replaying(pre_read, body_shared);
                let request = Request::from_parts(parts, body);
                return ResponseFuture::called(self.inner.call(request), Some(pending));
            }
            // Call the service that was made ready, and leave a fresh clone for the next call.
            let clone = self.inner.clone();
            let service = std::mem::replace(&mut self.inner, clone);
            return ResponseFuture::pre_read(service, parts, pre_read, pending, timeout);
        }
        let request = Request::from_parts(parts, RequestBody::new(body, body_shared));
        ResponseFuture::called(self.inner.call(request), Some(pending))
    }
}

/// The headers a record keeps, found in one pass over the request's headers rather than one
/// hash lookup each.
#[derive(Default)]
struct Seen<'a> {
    request_id: Option<&'a HeaderValue>,
    user_agent: Option<&'a HeaderValue>,
    content_type: Option<&'a HeaderValue>,
    content_encoding: Option<&'a HeaderValue>,
    /// `Content-Encoding` came in more than one line, which together name the codings in
    /// order (RFC 9110 §5.3), as `gzip, gzip` does in one.
    content_encoding_lines: bool,
    authorization: Option<&'a HeaderValue>,
    content_length: Option<&'a HeaderValue>,
    /// `Expect: 100-continue`: the client sends the body only when it is read.
    expect_continue: bool,
    /// `TE: trailers`, which gRPC's clients send: a call tonic serves whatever its content type.
    te_trailers: bool,
}

impl<'a> Seen<'a> {
    fn scan(headers: &'a HeaderMap, config: &Config) -> Self {
        let mut seen = Self::default();
        let keep = |slot: &mut Option<&'a HeaderValue>, value: &'a HeaderValue| {
            if slot.is_none() {
                *slot = Some(value);
            }
        };
        for (name, value) in headers {
            if name == USER_AGENT {
                keep(&mut seen.user_agent, value);
            } else if name == CONTENT_TYPE {
                keep(&mut seen.content_type, value);
            } else if name == CONTENT_ENCODING {
                seen.content_encoding_lines |= seen.content_encoding.is_some();
                keep(&mut seen.content_encoding, value);
            } else if name == http::header::AUTHORIZATION {
                if config.keep_authorization {
                    keep(&mut seen.authorization, value);
                }
            } else if name == http::header::CONTENT_LENGTH {
                keep(&mut seen.content_length, value);
            } else if name == http::header::EXPECT {
                seen.expect_continue |= value.as_bytes().eq_ignore_ascii_case(b"100-continue");
            } else if name == http::header::TE {
                seen.te_trailers |= te_names_trailers(value.as_bytes());
            } else if *name == config.request_id_header {
                keep(&mut seen.request_id, value);
            }
        }
        seen
    }
}

/// Copies what the record keeps of the request's head. Copies past a record's fixed size count
/// against the queue's budget; what does not fit is cut (the text) or left out (the recorded
/// headers), and counted in `heads_cut`.
fn fill_facts(
    facts: &mut RequestFacts,
    parts: &Parts,
    config: &Config,
    channel: &Channel,
    grpc: bool,
    seen: Seen,
) {
    let headers = &parts.headers;
    let uri = client_uri(parts);
    // A CONNECT names an authority, not a path (`CONNECT example.com:443`): its target is that.
    let path = match (uri.path(), uri.authority()) {
        ("", Some(authority)) => authority.as_str(),
        (path, _) => path,
    };
    // Codings in several lines are joined as one list: read from the first line only, a body
    // gzipped twice was inflated once and stored as invalid JSON (found by a probe).
    let joined: Vec<u8>;
    let content_encoding = if seen.content_encoding_lines {
        joined = headers
            .get_all(CONTENT_ENCODING)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect::<Vec<_>>()
            .join(&b", "[..]);
        Some(joined.as_slice())
    } else {
        seen.content_encoding.map(HeaderValue::as_bytes)
    };
    let text = TextParts {
        path: Some(path.as_bytes()),
        query: uri.query().map(str::as_bytes),
        request_id: seen.request_id.map(HeaderValue::as_bytes),
        user_agent: seen.user_agent.map(HeaderValue::as_bytes),
        content_type: seen.content_type.map(HeaderValue::as_bytes),
        content_encoding,
        authorization: seen.authorization.map(HeaderValue::as_bytes),
    };
    let mut cut = facts.text.fill(text, |bytes| channel.count_head(bytes));
    if !config.record_headers.is_empty() {
        facts.headers = recorded_headers(headers, &config.record_headers, channel);
        cut |= matches!(
            facts.headers.as_deref(),
            Some(RecordedHeaders::NotCaptured(_))
        );
    }
    if cut {
        channel.count_head_cut();
    }
    let peer = peer_ip(parts);
    facts.client_ip = if config.trusted_proxies.is_enabled() {
        config.trusted_proxies.resolve(peer, headers).client
    } else {
        peer
    };
    facts.peer = peer;
    facts.method = parts.method.clone();
    facts.route = route(parts, grpc);
}

/// The URI the client asked for. A router nested in axum (`Router::nest`, `nest_service`) sees
/// the path without its prefix; the outermost router keeps the whole URI as `OriginalUri`.
pub(crate) fn client_uri(parts: &Parts) -> &http::Uri {
    #[cfg(feature = "axum")]
    if let Some(axum::extract::OriginalUri(uri)) = parts.extensions.get() {
        return uri;
    }
    &parts.uri
}

/// The request's id, generated (and set on the request, for the handler) when it has none, or
/// one the row could not store as sent: the id echoed to the client is then the row's.
fn request_id(parts: &mut Parts, config: &Config) -> http::HeaderValue {
    if let Some(id) = parts.headers.get(&config.request_id_header)
        && storable_request_id(id.as_bytes())
    {
        return id.clone();
    }
    let id = http::HeaderValue::from_str(&crate::writer::uuid_v7(chrono::Utc::now()).to_string())
        .unwrap_or_else(|_| http::HeaderValue::from_static("invalid-request-id"));
    parts
        .headers
        .insert(config.request_id_header.clone(), id.clone());
    id
}

/// An id the writer stores unchanged: not empty, UTF-8, and within the column's length (the
/// writer replaces invalid UTF-8 and cuts a longer id).
fn storable_request_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= crate::migration::REQUEST_ID_LEN as usize
        && std::str::from_utf8(id).is_ok()
}

/// Copies of the recorded headers' values, kept whole: the writer cuts each to 4 KiB after
/// redacting it whole, so that a cut never leaves half a secret unrecognized. Copies past
/// [`UNCOUNTED_HEADERS`] count against the queue's budget, and are let go of when they do not
/// fit.
fn recorded_headers(
    headers: &HeaderMap,
    names: &[http::HeaderName],
    channel: &Channel,
) -> Option<Box<RecordedHeaders>> {
    let mut recorded = HeaderMap::new();
    let (mut values, mut value_bytes) = (0, 0);
    for name in names {
        for value in headers.get_all(name) {
            // A copy: hyper's values are slices of the connection's read buffer (`RequestText`).
            if let Ok(copy) = HeaderValue::from_bytes(value.as_bytes()) {
                values += 1;
                value_bytes += copy.len();
                recorded.append(name.clone(), copy);
            }
        }
    }
    if recorded.is_empty() {
        return None;
    }
    let cost = header_copy_cost(values, value_bytes);
    let counted = if cost <= UNCOUNTED_HEADERS {
        0
    } else if channel.count_head(cost) {
        cost
    } else {
        let bytes = u32::try_from(value_bytes).unwrap_or(u32::MAX);
        return Some(Box::new(RecordedHeaders::NotCaptured(bytes)));
    };
    Some(Box::new(RecordedHeaders::Kept {
        map: recorded,
        // hyper bounds a head far below 4 GiB; the cost fits.
        counted: u32::try_from(counted).unwrap_or(u32::MAX),
    }))
}

fn peer_ip(parts: &Parts) -> Option<IpAddr> {
    if let Some(PeerAddr(addr)) = parts.extensions.get::<PeerAddr>() {
        return Some(addr.ip().to_canonical());
    }
    #[cfg(feature = "axum")]
    if let Some(info) = parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(info.0.ip().to_canonical());
    }
    #[cfg(feature = "tonic")]
    if let Some(addr) = parts
        .extensions
        .get::<tonic::transport::server::TcpConnectInfo>()
        .and_then(tonic::transport::server::TcpConnectInfo::remote_addr)
    {
        return Some(addr.ip().to_canonical());
    }
    None
}

/// Decided once per request, by the content type. A type in lowercase, as every gRPC and
/// gRPC-Web client sends it, is told by comparing bytes; any other is screened by its first 16
/// bytes folded to lowercase a word at a time, and read further only when it is gRPC in other
/// letters (media types are case-insensitive, and tonic serves a call whatever its content type).
pub(crate) fn grpc_kind(content_type: Option<&HeaderValue>) -> Option<Protocol> {
    const GRPC: &[u8] = b"application/grpc";
    // Setting bit 5 lowercases a letter and leaves `/` as it is; no other byte a header value
    // may hold becomes a byte of `application/grpc` by it.
    const FOLD: u64 = 0x2020_2020_2020_2020;
    let value = content_type?.as_bytes();
    if let Some(rest) = value.strip_prefix(GRPC) {
        return grpc_kind_after(rest, |rest, suffix| rest.strip_prefix(suffix));
    }
    let (head, rest) = value.split_first_chunk::<16>()?;
    let word = |bytes: Option<&[u8; 8]>| bytes.map(|bytes| u64::from_le_bytes(*bytes) | FOLD);
    if word(head.first_chunk()) != Some(u64::from_le_bytes(*b"applicat"))
        || word(head.last_chunk()) != Some(u64::from_le_bytes(*b"ion/grpc"))
    {
        return None;
    }
    grpc_kind_in_other_letters(rest)
}

/// What follows `application/grpc`: nothing, a codec (`+proto`) or parameters (`;…`) for native
/// gRPC; `-web` or `-web-text`, then the same, for gRPC-Web. `strip` takes a suffix off.
#[inline(always)]
fn grpc_kind_after(
    rest: &[u8],
    strip: impl for<'a> Fn(&'a [u8], &'static [u8]) -> Option<&'a [u8]>,
) -> Option<Protocol> {
    let ends = |rest: &[u8]| matches!(rest.first(), None | Some(b'+' | b';'));
    if ends(rest) {
        return Some(Protocol::Native);
    }
    let rest = strip(rest, b"-web")?;
    if ends(rest) {
        return Some(Protocol::Web);
    }
    strip(rest, b"-text")
        .filter(|rest| ends(rest))
        .map(|_| Protocol::WebText)
}

/// The rest of a gRPC content type not in lowercase (`Application/GRPC-Web`), read as
/// [`grpc_kind_after`] does, whatever the case.
#[cold]
fn grpc_kind_in_other_letters(rest: &[u8]) -> Option<Protocol> {
    grpc_kind_after(rest, |rest, suffix| {
        let (head, tail) = rest.split_at_checked(suffix.len())?;
        head.eq_ignore_ascii_case(suffix).then_some(tail)
    })
}

/// Whether a `TE` value lists `trailers`, whatever the case, among its comma-separated codings.
#[cold]
fn te_names_trailers(value: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|coding| {
        let name = coding.split(|&b| b == b';').next().unwrap_or_default();
        name.trim_ascii().eq_ignore_ascii_case(b"trailers")
    })
}

/// The client's deadline from `grpc-timeout`: at most 8 digits and a unit (`H M S m u n`).
fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.as_bytes();
    let (unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

fn route(parts: &Parts, grpc: bool) -> Option<RouteName> {
    #[cfg(feature = "axum")]
    let matched = parts.extensions.get::<axum::extract::MatchedPath>();
    // A route of the app's own, matched by a template without a wildcard (`/users/{id}`),
    // keeps it whatever the content type: a client saying `application/grpc` to a REST
    // handler would otherwise keep its request out of that route's rows.
    #[cfg(feature = "axum")]
    if grpc && let Some(matched) = matched.filter(|matched| !matched.as_str().contains("{*")) {
        return Some(RouteName::Axum(matched.clone()));
    }
    // gRPC: the path is the route, `/package.Service/Method`, also where a router matched it
    // with a wildcard (tonic's routes in an axum app match `/package.Service/{*rest}`).
    if grpc {
        let path = parts.uri.path();
        return Some(RouteName::Text(Arc::from(
            path.strip_prefix('/').unwrap_or(path),
        )));
    }
    #[cfg(feature = "axum")]
    if let Some(matched) = matched {
        return Some(RouteName::Axum(matched.clone()));
    }
    None
}

/// A JSON or form body of known length within the cap is read before the service runs, so a
/// handler that rejects the request without reading it still leaves the body in the record.
/// Anything streamed (chunked uploads, gRPC) is only teed, and so is a body the client sends
/// only when asked (`Expect: 100-continue`): reading it would ask for it, where a handler that
/// refuses the request unread answers at once and the client never sends it.
fn should_pre_read<B: Body>(seen: &Seen<'_>, body: &B, config: &Config) -> bool {
    let Some(len) = body.size_hint().exact() else {
        return false;
    };
    if len == 0 || len > config.max_body_bytes as u64 || config.body_read_timeout.is_zero() {
        return false;
    }
    let Some(content_type) = seen.content_type else {
        return false;
    };
    if seen.expect_continue {
        return false;
    }
    let content_type = content_type.as_bytes();
    let essence = content_type
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let json = essence.eq_ignore_ascii_case(b"application/json")
        || (essence.len() > 5 && essence[essence.len() - 5..].eq_ignore_ascii_case(b"+json"));
    let form = essence.eq_ignore_ascii_case(b"application/x-www-form-urlencoded");
    // The bounded wait needs Tokio's timer.
    (json || form) && tokio::runtime::Handle::try_current().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Instant;

    use crate::record::TextPart;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use tower::ServiceExt;

    /// Serves `request` once and returns the response body with the request's record, left in
    /// the queue because the writer is not run.
    async fn serve_and_take_record<S, B>(
        service: Audit<S>,
        request: Request<B>,
    ) -> (Bytes, crate::record::AuditRecord)
    where
        Audit<S>: Service<Request<B>, Response = Response<ResponseBody<Full<Bytes>>>>,
        <Audit<S> as Service<Request<B>>>::Error: fmt::Debug,
    {
        let shared = Arc::clone(&service.shared);
        let response = service.oneshot(request).await.expect("response");
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let record = shared
            .intake
            .channel()
            .queue
            .pop()
            .expect("a queued record");
        (body, record)
    }

    /// hyper's URI and header values are slices of the connection's read buffer: a queued
    /// record must hold copies, not the buffer.
    #[tokio::test]
    async fn queued_records_do_not_hold_the_request_buffer() {
        use tower::Layer;

        let db = sea_orm::Database::connect("sqlite::memory:")
            .await
            .expect("connect");
        // The writer is not run: the record stays in the queue.
        let (layer, _guard, _writer) = crate::AuditLayer::builder(db)
            .record_headers([http::HeaderName::from_static("x-tenant")])
            .build_pair()
            .expect("layer");
        let read =
            Bytes::from(b"/orders/17?expand=itemsbench/1.0application/jsonid-1gzipt-9".to_vec());
        let slice = |from: usize, to: usize| {
            HeaderValue::from_maybe_shared(read.slice(from..to)).expect("value")
        };
        let request = Request::post(http::Uri::from_maybe_shared(read.slice(..23)).expect("uri"))
            .header(USER_AGENT, slice(23, 32))
            .header(CONTENT_TYPE, slice(32, 48))
            .header("x-request-id", slice(48, 52))
            .header(CONTENT_ENCODING, slice(52, 56))
            .header("x-tenant", slice(56, 59))
            .body(Full::new(Bytes::from_static(b"{}")))
            .expect("request");
        let handler = tower::service_fn(|request: Request<_>| async move {
            drop(request);
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
        });
        let (_, record) = serve_and_take_record(layer.layer(handler), request).await;
        assert!(read.is_unique(), "the record holds the request's buffer");
        let facts = &record.shared.facts;
        let text = |part| facts.text.str(part);
        assert_eq!(text(TextPart::Path), Some("/orders/17"));
        assert_eq!(text(TextPart::Query), Some("expand=items"));
        assert_eq!(text(TextPart::UserAgent), Some("bench/1.0"));
        assert_eq!(text(TextPart::ContentType), Some("application/json"));
        assert_eq!(text(TextPart::RequestId), Some("id-1"));
        assert_eq!(text(TextPart::ContentEncoding), Some("gzip"));
        assert_eq!(text(TextPart::Authorization), None);
        let headers = facts.recorded_headers().expect("recorded headers");
        assert_eq!(headers["x-tenant"], "t-9");
    }

    /// A reply cut short (the client went away, or the body failed) counts the messages sent so
    /// far whatever its form: a text reply whose base64 stops inside a group too, as its binary
    /// twin and a text request not read to its end do. One that ends inside a group is no base64:
    /// no count.
    #[tokio::test]
    async fn a_text_reply_cut_inside_a_group_counts_what_was_sent() {
        use std::pin::Pin;

        use http_body::Frame;
        use tower::Layer;

        /// One chunk, then an error or nothing ever again (the client drops the body).
        struct Cut(Option<Bytes>, bool);
        impl Body for Cut {
            type Data = Bytes;
            type Error = std::io::Error;
            fn poll_frame(
                mut self: Pin<&mut Self>,
                _: &mut Context<'_>,
            ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
                match self.0.take() {
                    Some(chunk) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
                    None if self.1 => Poll::Ready(Some(Err(std::io::Error::other("reset")))),
                    None => Poll::Pending,
                }
            }
        }

        // A message's prefix and payload, then 2 characters of a group: 5 + 5 bytes, then 1.
        let text = Bytes::from_static(b"AAAAAAVyZXBseQ");
        for (content_type, chunk) in [
            ("application/grpc-web-text", text),
            (
                "application/grpc-web",
                Bytes::from_static(b"\0\0\0\0\x05reply\0"),
            ),
        ] {
            for fails in [false, true] {
                let db = sea_orm::Database::connect("sqlite::memory:")
                    .await
                    .expect("connect");
                let (layer, _guard, _writer) = crate::AuditLayer::builder_for_grpc(db)
                    .build_pair()
                    .expect("layer");
                let chunk = chunk.clone();
                let handler = tower::service_fn(move |_: Request<_>| {
                    let chunk = chunk.clone();
                    async move {
                        let mut response = Response::new(Cut(Some(chunk), fails));
                        response
                            .headers_mut()
                            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let service = layer.layer(handler);
                let shared = Arc::clone(&service.shared);
                let request = Request::post("/pkg.S/M")
                    .header(CONTENT_TYPE, content_type)
                    .body(Full::new(Bytes::new()))
                    .expect("request");
                let mut body = service
                    .oneshot(request)
                    .await
                    .expect("response")
                    .into_body();
                let first = body.frame().await.expect("a frame");
                assert!(first.is_ok());
                if fails {
                    assert!(body.frame().await.expect("the error").is_err());
                }
                drop(body);
                let record = shared
                    .intake
                    .channel()
                    .queue
                    .pop()
                    .expect("a queued record");
                assert!(record.error.is_some(), "{content_type} {fails}");
                assert_eq!(
                    record.grpc_messages_out,
                    Some(1),
                    "{content_type}, failing: {fails}"
                );
            }
        }
    }

    /// The record is finished when the response ends; a handler that kept its `AuditContext` or
    /// the request body changes nothing in it afterwards (the writer takes both later).
    #[tokio::test]
    async fn settings_and_body_reads_after_the_record_is_finished_are_ignored() {
        use std::sync::Mutex;

        use tower::Layer;

        let db = sea_orm::Database::connect("sqlite::memory:")
            .await
            .expect("connect");
        // The writer is not run: the record stays in the queue.
        let (layer, _guard, _writer) = crate::AuditLayer::builder(db).build_pair().expect("layer");
        type Kept = (AuditContext, crate::RequestBody<Full<Bytes>>);
        let kept: Arc<Mutex<Option<Kept>>> = Arc::default();
        let slot = Arc::clone(&kept);
        let handler =
            tower::service_fn(move |request: Request<crate::RequestBody<Full<Bytes>>>| {
                let slot = Arc::clone(&slot);
                async move {
                    let (parts, body) = request.into_parts();
                    let context = parts
                        .extensions
                        .get::<AuditContext>()
                        .expect("context")
                        .clone();
                    context.set_user("alice");
                    *slot.lock().expect("slot") = Some((context, body));
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
                }
            });
        let request = Request::post("/late")
            .body(Full::new(Bytes::from_static(b"read after the response")))
            .expect("request");
        let (_, record) = serve_and_take_record(layer.layer(handler), request).await;

        let (context, body) = kept.lock().expect("slot").take().expect("kept");
        context.set_user("mallory");
        context.set_tenant("late");
        context.insert_extra("late", true);
        let read = body.collect().await.expect("body").to_bytes();
        assert_eq!(&read[..], b"read after the response");

        let fields = std::mem::take(&mut *lock(&record.shared.fields));
        assert_eq!(fields.user_id.as_deref(), Some("alice"));
        assert_eq!(fields.tenant_id, None);
        assert_eq!(fields.extra, None);
        let captured = lock(&record.shared.capture).take();
        assert!(captured.bytes.is_empty(), "{captured:?}");
        assert_eq!(captured.total, 0);
        assert!(
            captured.truncated,
            "a body unread when the record was finished is a prefix"
        );
    }

    /// A small body that arrived in several frames with trailers is read ahead, then replayed
    /// to the handler frame by frame, in order, trailers last; the record has the whole body.
    #[tokio::test]
    async fn pre_read_body_replays_every_frame_in_order() {
        use std::collections::VecDeque;
        use std::pin::Pin;

        use http_body::Frame;
        use tower::Layer;

        /// Frames that are all ready, with an exact length, as a small body that has arrived.
        struct Frames(VecDeque<Frame<Bytes>>, u64);
        impl Body for Frames {
            type Data = Bytes;
            type Error = std::convert::Infallible;
            fn poll_frame(
                mut self: Pin<&mut Self>,
                _: &mut Context<'_>,
            ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
                let frame = self.0.pop_front();
                if let Some(data) = frame.as_ref().and_then(Frame::data_ref) {
                    self.1 -= data.len() as u64;
                }
                Poll::Ready(frame.map(Ok))
            }
            fn size_hint(&self) -> http_body::SizeHint {
                http_body::SizeHint::with_exact(self.1)
            }
        }

        let db = sea_orm::Database::connect("sqlite::memory:")
            .await
            .expect("connect");
        let (layer, _guard, _writer) = crate::AuditLayer::builder(db).build_pair().expect("layer");
        let mut trailers = HeaderMap::new();
        trailers.insert("x-checksum", HeaderValue::from_static("c-1"));
        let parts = [r#"{"a":"#, r#""one","#, r#""b":2}"#];
        let mut frames: VecDeque<_> = parts
            .iter()
            .map(|part| Frame::data(Bytes::from_static(part.as_bytes())))
            .collect();
        frames.push_back(Frame::trailers(trailers));
        let len = parts.iter().map(|part| part.len() as u64).sum();
        let request = Request::post("/frames")
            .header(CONTENT_TYPE, "application/json")
            .body(Frames(frames, len))
            .expect("request");
        let handler = tower::service_fn(|request: Request<RequestBody<Frames>>| async move {
            let mut body = request.into_body();
            let mut seen = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.expect("frame");
                match frame.into_data() {
                    Ok(data) => seen.push(String::from_utf8(data.to_vec()).expect("utf-8")),
                    Err(frame) => {
                        let trailers = frame.into_trailers().expect("trailers");
                        seen.push(format!("trailers {:?}", trailers["x-checksum"]));
                    }
                }
            }
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(seen.join("|")))))
        });
        let (seen, record) = serve_and_take_record(layer.layer(handler), request).await;
        assert_eq!(
            std::str::from_utf8(&seen),
            Ok(r#"{"a":|"one",|"b":2}|trailers "c-1""#)
        );
        let body = crate::context::lock(&record.shared.capture).take();
        assert_eq!(&body.bytes[..], br#"{"a":"one","b":2}"#);
        assert!(!body.truncated);
    }

    /// Serves `request` and returns the response's body.
    /// A handler that answers with the request's body.
    async fn echo(
        request: Request<RequestBody<Full<Bytes>>>,
    ) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
        let body = request.into_body().collect().await.expect("body");
        Ok(Response::new(Full::new(body.to_bytes())))
    }

    /// `POST /items` with a plain-text `body`.
    fn text_post(body: &'static [u8]) -> Request<Full<Bytes>> {
        Request::post("/items")
            .header("content-type", "text/plain")
            .body(Full::new(Bytes::from_static(body)))
            .expect("request")
    }

    async fn body_of<S, B>(service: S, request: Request<Full<Bytes>>) -> Bytes
    where
        S: Service<Request<Full<Bytes>>, Response = Response<B>>,
        S::Error: std::fmt::Debug,
        B: http_body::Body,
        B::Data: bytes::Buf,
        B::Error: std::fmt::Debug,
    {
        let response = service.oneshot(request).await.expect("response");
        response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
    }

    /// The queue's body budget counts a record's kept body while it is queued, and only then:
    /// not for a record the full queue dropped or pushed out, and no longer once the writer took
    /// it. A body that does not fit is let go of, and its record queued without it.
    #[tokio::test]
    async fn the_queues_body_budget_counts_only_queued_records() {
        use tower::Layer;

        for policy in [Overflow::DropNewest, Overflow::DropOldest] {
            let db = sea_orm::Database::connect("sqlite::memory:")
                .await
                .expect("connect");
            // The writer is not run: the queue keeps what is pushed until `pop` below.
            let (layer, _guard, _writer) = crate::AuditLayer::builder(db)
                .overflow(policy)
                .capacity(1)
                .queue_body_bytes(100)
                .build_pair()
                .expect("layer");
            let service = layer.layer(tower::service_fn(echo));
            let channel = || service.shared.intake.channel();
            let serve = |body: &'static [u8]| body_of(service.clone(), text_post(body));

            assert_eq!(serve(&[b'a'; 60]).await.len(), 60);
            assert_eq!(channel().queued_body_bytes(), 60, "{policy:?}");
            // The queue's one place is taken: the new record is dropped (`DropNewest`) or
            // pushes the first out (`DropOldest`); either way only the queued one counts.
            assert_eq!(serve(&[b'b'; 30]).await.len(), 30);
            let queued = if policy == Overflow::DropNewest {
                60
            } else {
                30
            };
            assert_eq!(channel().queued_body_bytes(), queued, "{policy:?}");
            assert_eq!(channel().snapshot().dropped, 1);
            let record = channel().pop().expect("a queued record");
            assert_eq!(record.body_bytes as usize, queued);
            assert_eq!(channel().queued_body_bytes(), 0, "{policy:?}");
            drop(record);

            // 90 bytes fit.
            assert_eq!(serve(&[b'c'; 90]).await.len(), 90);
            let record = channel().pop().expect("a queued record");
            assert_eq!(record.body_bytes, 90);
            drop(record);
            assert_eq!(channel().queued_body_bytes(), 0);
        }

        // With 60 bytes queued, 60 more do not fit: the record is queued without its body.
        let db = sea_orm::Database::connect("sqlite::memory:")
            .await
            .expect("connect");
        let (layer, _guard, _writer) = crate::AuditLayer::builder(db)
            .capacity(2)
            .queue_body_bytes(100)
            .build_pair()
            .expect("layer");
        let service = layer.layer(tower::service_fn(echo));
        let channel = || service.shared.intake.channel();
        let serve = |body: &'static [u8]| body_of(service.clone(), text_post(body));
        assert_eq!(serve(&[b'c'; 60]).await.len(), 60);
        assert_eq!(
            serve(&[b'd'; 60]).await.len(),
            60,
            "the handler still reads it all"
        );
        assert_eq!(channel().queued_body_bytes(), 60);
        assert_eq!(channel().snapshot().bodies_shed, 1);
        assert_eq!(channel().pop().expect("the first record").body_bytes, 60);
        let record = channel().pop().expect("the record, without its body");
        assert_eq!(record.body_bytes, 0);
        let body = crate::context::lock(&record.shared.capture).take();
        assert!(body.bytes.is_empty() && body.truncated);
        assert_eq!(body.total, 60);
    }

    /// A request's head is copied into its record; hyper lets a client send one of up to
    /// 400 KiB. While the writer does not write, the queued records' long heads stay within the
    /// queue's budget (`queue_body_bytes`) beyond each record's fixed part: past it a head is
    /// cut, and its row says so. The budget is returned when the writer takes the records.
    #[tokio::test]
    async fn long_heads_count_against_the_queues_budget_and_are_cut_past_it() {
        use tower::Layer;

        use crate::record::{UNCOUNTED_HEADERS, UNCOUNTED_TEXT};

        const BUDGET: usize = 64 << 10;
        const REQUESTS: usize = 20;
        let db = sea_orm::Database::connect("sqlite::memory:")
            .await
            .expect("connect");
        // The writer is not run: the records stay in the queue, as while the database is away.
        let (layer, _guard, _writer) = crate::AuditLayer::builder(db)
            .capacity(64)
            .queue_body_bytes(BUDGET)
            .record_headers([http::HeaderName::from_static("x-trace")])
            .build_pair()
            .expect("layer");
        let handler = tower::service_fn(|_: Request<RequestBody<Full<Bytes>>>| async {
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
        });
        let service = layer.layer(handler);
        let channel = || service.shared.intake.channel();
        let path = format!("/files/{}/{}", "d".repeat(150), "f".repeat(10_000));
        let query = format!("a=1&token={}&b={}", "s".repeat(100), "q".repeat(20_000));
        let agent = "u".repeat(5_000);
        let trace = "t".repeat(10_000);
        for _ in 0..REQUESTS {
            let request = Request::get(format!("{path}?{query}"))
                .header(USER_AGENT, &agent)
                .header("x-trace", &trace)
                .body(Full::new(Bytes::new()))
                .expect("request");
            body_of(service.clone(), request).await;
        }
        assert_eq!(channel().queue.len(), REQUESTS);
        assert!(channel().queued_body_bytes() <= BUDGET);

        // What the queued records hold of their heads, past their fixed part.
        let mut records = Vec::new();
        let mut held = 0;
        while let Some(record) = channel().pop() {
            let facts = &record.shared.facts;
            let text: usize = [
                TextPart::Path,
                TextPart::Query,
                TextPart::RequestId,
                TextPart::UserAgent,
            ]
            .into_iter()
            .filter_map(|part| facts.text.get(part).map(<[u8]>::len))
            .sum();
            let headers: usize = facts
                .recorded_headers()
                .map_or(0, |headers| headers.values().map(HeaderValue::len).sum());
            held += text.saturating_sub(UNCOUNTED_TEXT) + headers.saturating_sub(UNCOUNTED_HEADERS);
            records.push(record);
        }
        assert!(
            held <= BUDGET,
            "the queued records hold {held} bytes of their heads past their fixed part"
        );
        assert_eq!(channel().queued_body_bytes(), 0, "all returned");
        let cut = channel().snapshot().heads_cut;
        assert!(cut > 0 && cut < REQUESTS as u64, "{cut} heads cut");

        // The first records fitted, whole; the last were cut, and their rows say so.
        let rows: Vec<_> = records
            .into_iter()
            .map(|record| {
                crate::writer::to_model_alone(
                    record,
                    &Default::default(),
                    &crate::writer::WallClock::now(),
                )
            })
            .collect();
        let whole = &rows[0];
        assert_eq!(whole.path, path);
        assert_eq!(
            whole.query.as_deref(),
            Some(&*format!("a=1&token=[REDACTED]&b={}", "q".repeat(20_000)))
        );
        assert_eq!(whole.user_agent.as_deref(), Some(&*agent));
        let headers = whole.request_headers.as_ref().expect("headers");
        assert!(
            headers["x-trace"]
                .as_str()
                .is_some_and(|t| t.starts_with("tttt"))
        );

        let last = rows.last().expect("rows");
        assert_eq!(
            last.path,
            format!("/files/ …[truncated, {} bytes total]", path.len())
        );
        assert_eq!(
            last.query.as_deref(),
            Some(&*format!(
                "a=1&token=[REDACTED]&b= …[truncated, {} bytes total]",
                query.len()
            ))
        );
        assert_eq!(
            last.user_agent.as_deref(),
            Some(&*format!(
                "{} …[truncated, 5000 bytes total]",
                "u".repeat(crate::record::CUT_PART_BYTES)
            ))
        );
        assert_eq!(
            last.request_headers,
            Some(serde_json::json!("[headers not captured, 10000 bytes]"))
        );
        assert!(rows.iter().all(|row| row.request_id.is_some()));
    }

    /// Under `Block`, a request that finds the queue full is counted once, and its wait is added
    /// when the wait ends: at the timeout, or when the request is dropped while it waits. A
    /// request that found room is in neither.
    #[tokio::test]
    async fn waits_for_room_are_counted_with_their_length() {
        use tower::Layer;

        const TIMEOUT: Duration = Duration::from_millis(300);
        const GIVE_UP: Duration = Duration::from_millis(50);
        let db = sea_orm::Database::connect("sqlite::memory:")
            .await
            .expect("connect");
        // The writer is not run: the first record keeps the queue's only room.
        let (layer, _guard, _writer) = crate::AuditLayer::builder(db)
            .overflow(Overflow::Block { timeout: TIMEOUT })
            .capacity(1)
            .build_pair()
            .expect("layer");
        let handler = tower::service_fn(|_: Request<RequestBody<Full<Bytes>>>| async {
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
        });
        let service = layer.layer(handler);
        let stats = || service.shared.intake.channel().snapshot();
        let request = || {
            Request::get("/wait")
                .body(Full::new(Bytes::new()))
                .expect("request")
        };
        let serve = |request| body_of(service.clone(), request);

        assert_eq!(&serve(request()).await[..], b"ok");
        let after_room = stats();
        assert_eq!((after_room.blocked, after_room.queue_len), (0, 1));
        assert_eq!(after_room.blocked_for, Duration::ZERO);

        // No room comes: the request waits out the timeout, is served, and its record is
        // dropped at the full queue.
        let started = Instant::now();
        assert_eq!(&serve(request()).await[..], b"ok");
        assert!(started.elapsed() >= TIMEOUT);
        let after_timeout = stats();
        assert_eq!((after_timeout.blocked, after_timeout.dropped), (1, 1));
        assert!(
            after_timeout.blocked_for >= TIMEOUT && after_timeout.blocked_for < TIMEOUT * 20,
            "{:?}",
            after_timeout.blocked_for
        );

        // Counted as soon as it begins to wait; dropped while it waits (well before the
        // timeout, with room to spare on a busy machine), with the time it waited added then.
        let mut waiting = Box::pin(service.clone().oneshot(request()));
        let polled_once = tokio::time::timeout(Duration::ZERO, &mut waiting).await;
        assert!(polled_once.is_err(), "the request did not wait");
        let waiting_now = stats();
        assert_eq!((waiting_now.blocked, waiting_now.dropped), (2, 1));
        assert_eq!(waiting_now.blocked_for, after_timeout.blocked_for);
        tokio::time::sleep(GIVE_UP).await;
        drop(waiting);
        let after_cancel = stats();
        assert_eq!((after_cancel.blocked, after_cancel.dropped), (2, 2));
        let waited = after_cancel.blocked_for - after_timeout.blocked_for;
        assert!(
            waited >= GIVE_UP && waited < TIMEOUT,
            "waited {waited:?} before the request was dropped"
        );
    }

    /// A `Buf` of more slices than the capture copies at once: a capture with a gap in it
    /// keeps nothing after the gap, so what it keeps is a prefix of what was sent.
    #[tokio::test]
    async fn a_capture_with_a_gap_keeps_nothing_after_it() {
        use std::collections::VecDeque;
        use std::io::IoSlice;
        use std::pin::Pin;

        use bytes::Buf;
        use http_body::Frame;
        use tower::Layer;

        /// Data in pieces, each its own slice.
        struct Pieces(VecDeque<Bytes>);
        impl Buf for Pieces {
            fn remaining(&self) -> usize {
                self.0.iter().map(Bytes::len).sum()
            }
            fn chunk(&self) -> &[u8] {
                self.0.front().map_or(&[], |piece| &piece[..])
            }
            fn advance(&mut self, mut cnt: usize) {
                while cnt > 0 {
                    let Some(front) = self.0.front_mut() else {
                        return;
                    };
                    let take = cnt.min(front.len());
                    front.advance(take);
                    cnt -= take;
                    if front.is_empty() {
                        self.0.pop_front();
                    }
                }
            }
            fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
                let mut n = 0;
                for (slot, piece) in dst.iter_mut().zip(&self.0) {
                    *slot = IoSlice::new(piece);
                    n += 1;
                }
                n
            }
        }
        struct Frames(VecDeque<Pieces>);
        impl Body for Frames {
            type Data = Pieces;
            type Error = std::convert::Infallible;
            fn poll_frame(
                mut self: Pin<&mut Self>,
                _: &mut Context<'_>,
            ) -> Poll<Option<Result<Frame<Pieces>, Self::Error>>> {
                Poll::Ready(self.0.pop_front().map(|data| Ok(Frame::data(data))))
            }
        }

        let db = sea_orm::Database::connect("sqlite::memory:")
            .await
            .expect("connect");
        let (layer, _guard, _writer) = crate::AuditLayer::builder(db).build_pair().expect("layer");
        let handler = tower::service_fn(|request: Request<RequestBody<Frames>>| async move {
            let mut body = request.into_body();
            let mut read = Vec::new();
            while let Some(frame) = body.frame().await {
                if let Ok(mut data) = frame.expect("frame").into_data() {
                    while data.has_remaining() {
                        read.extend_from_slice(data.chunk());
                        let len = data.chunk().len();
                        data.advance(len);
                    }
                }
            }
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(read))))
        });
        let pieces = (0..10).map(|i| Bytes::from(format!("p{i}|"))).collect();
        let frames = [
            Pieces(pieces),
            Pieces(VecDeque::from([Bytes::from("tail")])),
        ];
        let request = Request::post("/pieces")
            .header(CONTENT_TYPE, "text/plain")
            .body(Frames(VecDeque::from(frames)))
            .expect("request");
        let (read, record) = serve_and_take_record(layer.layer(handler), request).await;
        assert_eq!(&read[..], b"p0|p1|p2|p3|p4|p5|p6|p7|p8|p9|tail");

        let captured = lock(&record.shared.capture).take();
        assert_eq!(&captured.bytes[..], b"p0|p1|p2|p3|p4|p5|p6|p7|");
        assert!(captured.truncated);
        assert_eq!(captured.total, read.len() as u64);
    }

    #[test]
    fn grpc_is_told_by_its_content_type() {
        let kind = |ct: &'static str| grpc_kind(Some(&HeaderValue::from_static(ct)));
        for ct in [
            "application/grpc",
            "application/grpc+proto",
            "application/grpc+json",
            "application/grpc;charset=utf-8",
            "Application/GRPC",
            "APPLICATION/GRPC+PROTO",
        ] {
            assert_eq!(kind(ct), Some(Protocol::Native), "{ct}");
        }
        for ct in [
            "application/grpc-web",
            "application/grpc-web+proto",
            "application/grpc-web;charset=utf-8",
            "Application/gRPC-Web+proto",
        ] {
            assert_eq!(kind(ct), Some(Protocol::Web), "{ct}");
        }
        for ct in [
            "application/grpc-web-text",
            "application/grpc-web-text+proto",
            "application/grpc-web-text;charset=utf-8",
            "application/gRPC-Web-Text",
        ] {
            assert_eq!(kind(ct), Some(Protocol::WebText), "{ct}");
        }
        for ct in [
            "application/grpcx",
            "application/grpc-webx",
            "application/grpc-web-textx",
            "application/grpc-text",
            "APPLICATION/GRPCX",
            "application_grpc",
            "application/json",
            "text/plain",
            "",
        ] {
            assert_eq!(kind(ct), None, "{ct}");
        }
        assert_eq!(grpc_kind(None), None);
    }

    #[test]
    fn grpc_timeouts_parse_every_unit() {
        let timeout = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert("grpc-timeout", http::HeaderValue::from_static(value));
            grpc_timeout(&headers)
        };
        assert_eq!(timeout("200m"), Some(Duration::from_millis(200)));
        assert_eq!(timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(timeout("5u"), Some(Duration::from_micros(5)));
        assert_eq!(timeout("7n"), Some(Duration::from_nanos(7)));
        assert_eq!(timeout("m"), None);
        assert_eq!(timeout("123456789m"), None);
        assert_eq!(timeout("1x"), None);
        assert_eq!(timeout("-1m"), None);
    }
}
