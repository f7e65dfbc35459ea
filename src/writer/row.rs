//! Turning an [`AuditRecord`] into an `audit_log` row: text conversion, request id generation,
//! sanitizing and fitting values to their columns — all off the request path.

use super::WallClock;
use crate::body::CapturedBody;
use crate::client_ip::anonymize;
#[cfg(feature = "jwt")]
use crate::context::ContextFields;
use crate::context::lock;
use crate::entity::audit_log::{
    Model, REQUEST_BODY_ALTERED, REQUEST_TARGET_ALTERED, TENANT_ID_TRUNCATED, USER_ID_TRUNCATED,
};
use crate::migration::{IP_LEN, LONG_TEXT_BYTES, METHOD_LEN, REQUEST_ID_LEN, SHORT_TEXT_LEN};
use crate::record::{AuditRecord, RecordedHeaders, RequestFacts, RouteName, TextPart};
use crate::sanitize::{BodyInput, Redactor};

/// The route of a 404 that matched no route.
pub(crate) const UNMATCHED_ROUTE: &str = "<unmatched>";

/// What the conversion needs besides the record; shared by the worker and, when they write to
/// the journal themselves, the producers.
#[derive(Debug, Clone)]
pub(crate) struct RowConfig {
    pub(crate) redactor: Redactor,
    pub(crate) anonymize_ip: bool,
    /// The layer's `max_body_bytes`: a compressed body is decoded to no more (0: the
    /// redactor's own bound alone).
    pub(crate) max_body_bytes: usize,
    /// What the bodies of one batch may grow by in all as they are decoded (gzip, a gRPC
    /// message's compression) past the bytes captured, which the queue's budget counted: the
    /// layer's `queue_body_bytes`. Past it, a compressed body is described, not decoded: a
    /// hundred bytes of gzip that inflate to the cap, in each of a batch's thousands of
    /// records, would otherwise take the cap's memory thousands of times.
    pub(crate) batch_inflation: usize,
    #[cfg(feature = "jwt")]
    pub(crate) jwt: Option<std::sync::Arc<crate::JwtIdentity>>,
}

impl Default for RowConfig {
    /// The rules alone: bodies decoded to the redactor's bound, without a batch's budget.
    fn default() -> Self {
        Self {
            redactor: Redactor::default(),
            anonymize_ip: false,
            max_body_bytes: 0,
            batch_inflation: usize::MAX,
            #[cfg(feature = "jwt")]
            jwt: None,
        }
    }
}

/// [`to_model`] of a record converted alone, with a batch's whole budget.
#[cfg(test)]
pub(crate) fn to_model_alone(record: AuditRecord, config: &RowConfig, clock: &WallClock) -> Model {
    let mut inflation = config.batch_inflation;
    to_model(record, config, clock, &mut inflation)
}

/// The row for `record`. `id` is left 0: the database assigns it. `inflation`: what is left of
/// the batch's [`RowConfig::batch_inflation`], which the body's growth past its captured bytes
/// is taken from.
pub(crate) fn to_model(
    record: AuditRecord,
    config: &RowConfig,
    clock: &WallClock,
    inflation: &mut usize,
) -> Model {
    let redactor = &config.redactor;
    let AuditRecord {
        shared,
        latency_ns,
        status,
        grpc_status,
        grpc_messages_out,
        response_bytes,
        error,
        body_bytes: _,
        permit: _,
        #[cfg(feature = "grpc-reflect")]
        grpc_descriptors,
        #[cfg(feature = "grpc-reflect")]
        grpc_encoding,
        grpc_by_reply,
    } = record;
    let request = &shared.facts;
    // Sealed when the record was finished: nothing changes them any more.
    let body = lock(&shared.capture).take();
    let mut context = std::mem::take(&mut *lock(&shared.fields));
    // An empty user or tenant (`set_user("")`, a gateway's empty header) names no one, as an
    // empty claim does: it neither stands for a user nor keeps a token's from the row.
    context.user_id = context.user_id.filter(|user| !user.is_empty());
    context.tenant_id = context.tenant_id.filter(|tenant| !tenant.is_empty());
    // Microseconds: what every backend stores, so a row reads back as it was hashed.
    let occurred_at = super::truncate_micros(clock.at(request.arrived));
    #[cfg(feature = "jwt")]
    let context = {
        let mut context = context;
        let authorization = request.text.get(TextPart::Authorization);
        let cut = request.text.cut_from(TextPart::Authorization).is_some();
        verify_identity(
            config,
            authorization.map(|value| (value, cut)),
            occurred_at.timestamp(),
            &mut context,
        );
        context
    };
    let sent_path = request.text.str(TextPart::Path).unwrap_or_default();
    // A path cut for the queue's budget ends at its last whole segment: what the value patterns
    // need to recognize a secret in the cut one may be gone.
    let path = match request.text.cut_from(TextPart::Path) {
        Some(_) => &sent_path[..sent_path.rfind('/').map_or(0, |slash| slash + 1)],
        None => sent_path,
    };
    // A segment the matched route's template names with a sensitive key (`/reset/{token}`)
    // is redacted whole.
    let template = request.route.as_ref().map(RouteName::as_str);
    let stored_path = cut_head_part(
        request,
        TextPart::Path,
        cut_bytes(
            redactor.redact_path_in_route(path, template),
            LONG_TEXT_BYTES,
        ),
    );
    // A gRPC call's route is the path its client sent (also for a call told by its reply).
    let grpc_method = match (&request.route, grpc_by_reply) {
        (Some(RouteName::Text(name)), _) => Some(&**name),
        (_, Some(_)) => Some(sent_path.strip_prefix('/').unwrap_or(sent_path)),
        _ => None,
    };
    // A 404 without a matched route: group scanners' random paths under one route name.
    let route = match (grpc_method, &request.route) {
        // Kept where it names a method as sent, else grouped as unmatched: one the path's
        // redaction altered must not reach the table here, and scanners' paths must not fill
        // the route's index.
        (Some(name), _) => Some(
            if crate::grpc::is_method_name(name) && stored_path.strip_prefix('/') == Some(name) {
                cut_chars(name, SHORT_TEXT_LEN)
            } else {
                UNMATCHED_ROUTE.to_owned()
            },
        ),
        (None, Some(route)) => Some(cut_chars(route.as_str(), SHORT_TEXT_LEN)),
        (None, None) if status == Some(404) => Some(UNMATCHED_ROUTE.to_owned()),
        (None, None) => None,
    };
    let ip = |ip: std::net::IpAddr| {
        let ip = if config.anonymize_ip {
            anonymize(ip)
        } else {
            ip
        };
        ip_text(ip)
    };
    let v7 = |at: &chrono::DateTime<chrono::Utc>| uuid_text(super::uuid_v7(*at));
    let request_id = match request.text.get(TextPart::RequestId) {
        // An empty header names no request: it gets an id of its own, as a missing one does.
        Some(value) if !value.is_empty() => lossy(value, REQUEST_ID_LEN as usize),
        // Generated here rather than on the request path: v7 keeps the arrival time in its prefix.
        _ => v7(&occurred_at),
    };
    // A request's `grpc-encoding` is kept only for the decoding with descriptors.
    #[cfg(feature = "grpc-reflect")]
    let encoding = match &grpc_descriptors {
        Some(_) => crate::grpc::MessageEncoding::parse(grpc_encoding.as_deref()),
        None => crate::grpc::MessageEncoding::NotKept,
    };
    #[cfg(not(feature = "grpc-reflect"))]
    let encoding = crate::grpc::MessageEncoding::NotKept;
    // A call told by its reply is read as the gRPC its reply spoke, whatever its request said.
    let content_type = match grpc_by_reply {
        Some(protocol) => Some(protocol.content_type()),
        None => request.text.str(TextPart::ContentType),
    };
    let content_encoding = request.text.str(TextPart::ContentEncoding);
    // gRPC-Web's text form: its messages are read from the base64 decoded; what is no base64 is
    // described as sent.
    let web_text = content_type.is_some_and(crate::grpc::is_web_text);
    let decoded_text = web_text
        .then(|| crate::grpc::decode_web_text_body(&body))
        .flatten();
    let messages = if web_text {
        decoded_text.as_ref()
    } else {
        Some(&body)
    };
    let grpc_messages_in = messages
        .and_then(|messages| messages.grpc_messages)
        .or_else(|| {
            // Not counted as the request streamed: counted from what was captured, when that is all.
            grpc_by_reply?;
            let messages = messages.filter(|messages| !messages.truncated)?;
            crate::grpc::count_messages(&messages.bytes)
        });
    // Whether the method takes a client stream, when descriptors tell it.
    #[cfg(feature = "grpc-reflect")]
    let client_streaming = grpc_descriptors
        .as_ref()
        .zip(route.as_deref())
        .and_then(|(pool, route)| crate::grpc::is_client_streaming(pool, route));
    #[cfg(not(feature = "grpc-reflect"))]
    let client_streaming = None;
    // A compressed body decodes to no more than the layer keeps of a body, and only while the
    // batch's inflation budget has room for that much (0: described, not decoded).
    let mut max_decoded = redactor.max_decoded_bytes();
    if config.max_body_bytes > 0 {
        max_decoded = max_decoded.min(config.max_body_bytes);
    }
    if *inflation < max_decoded {
        max_decoded = 0;
    }
    let decoded = match messages {
        None => None,
        Some(messages) if content_type.is_some_and(crate::grpc::is_json_codec) => {
            grpc_json_codec_body(
                redactor,
                route.as_deref(),
                request,
                encoding,
                messages,
                client_streaming,
                max_decoded,
            )
        }
        #[cfg(feature = "grpc-reflect")]
        Some(messages) => {
            grpc_descriptors
                .as_ref()
                .zip(route.as_deref())
                .and_then(|(pool, route)| {
                    grpc_request_json(
                        redactor,
                        pool,
                        route,
                        request,
                        encoding,
                        messages,
                        max_decoded,
                    )
                })
        }
        #[cfg(not(feature = "grpc-reflect"))]
        Some(_) => None,
    };
    // A compressed body inflated in part (past `max_decoded`, or a stream cut short) is stored
    // as a prefix too, however whole its capture (found by a probe: the column said whole).
    let mut decode_cut = false;
    let request_body = decoded
        .or_else(|| {
            let (text, cut) = redactor.redact_body_decoding(
                &BodyInput {
                    content_type,
                    content_encoding,
                    bytes: &body.bytes,
                    total_len: body.total,
                    truncated: body.truncated,
                    route: route.as_deref(),
                },
                max_decoded,
            );
            decode_cut = cut;
            text
        })
        .map(|text| cut_bytes(text, LONG_TEXT_BYTES));
    let grown = request_body
        .as_ref()
        .map_or(0, |text| text.len().saturating_sub(body.bytes.len()));
    *inflation = inflation.saturating_sub(grown);
    #[cfg_attr(not(feature = "integrity"), allow(unused_mut))]
    let mut handler_extra = context.extra;
    // The writer's own note of a row sealed again (read back when a writer restarts, to relink
    // the rows it left in the journal): never the handler's to set.
    #[cfg(feature = "integrity")]
    if let Some(fields) = &mut handler_extra {
        fields.remove(crate::integrity::CHAIN_REPLACED);
    }
    let mut extra = handler_extra.map(|extra| {
        let mut extra = redact_json(redactor, extra);
        settle_json(&mut extra, 1);
        extra
    });
    // A replay must not send an altered body, and a redaction with a replacement of the user's
    // or a summary of a multipart upload cannot be told from a real body afterwards.
    if request_body.as_deref().is_some_and(|stored| {
        !stored_verbatim(
            stored,
            &body,
            content_encoding,
            request.text.get(TextPart::ContentType),
        )
    }) {
        extra = Some(note_altered_body(extra));
    }
    let request_headers = match request.headers.as_deref() {
        Some(RecordedHeaders::NotCaptured(bytes)) => Some(serde_json::Value::String(format!(
            "[headers not captured, {bytes} bytes]"
        ))),
        _ => request
            .recorded_headers()
            .and_then(|headers| {
                let names: Vec<_> = headers.keys().cloned().collect();
                redactor.redact_headers(headers, &names)
            })
            .and_then(|json| serde_json::from_str(&json).ok())
            .map(|mut headers| {
                if config.anonymize_ip {
                    anonymize_address_headers(&mut headers);
                }
                headers
            }),
    };

    let sent_query = request.text.str(TextPart::Query);
    let mut model = Model {
        id: 0,
        // The idempotency key: retries and journal replays never write a record twice.
        record_id: v7(&occurred_at),
        // Microseconds: what every backend stores, so a row reads back as it was hashed.
        occurred_at,
        request_id: Some(request_id),
        method: cut_chars(request.method.as_str(), METHOD_LEN),
        path: stored_path,
        route,
        query: sent_query.map(|query| {
            let redacted = if request.text.cut_from(TextPart::Query).is_some() {
                redactor.redact_cut_query(query)
            } else {
                redactor.redact_query(query)
            };
            cut_head_part(
                request,
                TextPart::Query,
                cut_bytes(redacted, LONG_TEXT_BYTES),
            )
        }),
        status: status.map(i32::from),
        grpc_status,
        grpc_messages_in: grpc_messages_in.map(saturating_i64),
        grpc_messages_out: grpc_messages_out.map(saturating_i64),
        latency_us: i64::try_from(
            clock
                .corrected(std::time::Duration::from_nanos(latency_ns))
                .as_micros(),
        )
        .unwrap_or(i64::MAX),
        client_ip: request.client_ip.map(ip),
        peer_ip: request.peer.map(ip),
        user_agent: request.text.get(TextPart::UserAgent).map(|ua| {
            // As the header's value is redacted in `request_headers`: a bot's user agent
            // may carry its token.
            let redacted = redactor.redact_header_text(&lossy(ua, LONG_TEXT_BYTES));
            cut_head_part(request, TextPart::UserAgent, redacted)
        }),
        user_id: context
            .user_id
            .as_deref()
            .map(|v| cut_chars(v, SHORT_TEXT_LEN)),
        tenant_id: context
            .tenant_id
            .as_deref()
            .map(|v| cut_chars(v, SHORT_TEXT_LEN)),
        // The handler's words, which may quote the request (`/reset?token=…`): redacted as
        // `extra` is.
        action: context
            .action
            .map(|v| cut_chars(&redactor.redact_header_text(&v), SHORT_TEXT_LEN)),
        resource: context
            .resource
            .map(|v| cut_bytes(redactor.redact_header_text(&v), LONG_TEXT_BYTES)),
        request_body,
        request_body_truncated: body.truncated || decode_cut,
        request_bytes: i64::try_from(body.total).unwrap_or(i64::MAX),
        response_bytes: i64::try_from(response_bytes).unwrap_or(i64::MAX),
        request_headers,
        extra,
        error: error.map(|e| cut_bytes(redactor.redact_error(&e), LONG_TEXT_BYTES)),
        chain_id: None,
        chain_seq: None,
        prev_hash: None,
        row_hash: None,
        key_id: None,
    };
    if strip_nul(&mut model) {
        // The stored body is not the one sent any more (U+FFFD for each NUL).
        model.extra = Some(note_altered_body(model.extra.take()));
    }
    // A replacement text of the user's leaves no marker to tell a redacted path or query from
    // the client's: a replay must not send it as recorded.
    if model.path != sent_path || model.query.as_deref() != sent_query {
        model.extra = Some(note(model.extra.take(), REQUEST_TARGET_ALTERED));
    }
    // A cut identity says how long the whole one was: two users sharing their first 255
    // characters are then not one. Counted in characters, which the cut keeps: a NUL made
    // U+FFFD takes more bytes, and cuts nothing.
    for (whole, stored, key) in [
        (&context.user_id, &model.user_id, USER_ID_TRUNCATED),
        (&context.tenant_id, &model.tenant_id, TENANT_ID_TRUNCATED),
    ] {
        if let (Some(whole), Some(stored)) = (whole, stored)
            && whole.len() != stored.len()
        {
            let length = whole.chars().count();
            if length != stored.chars().count() {
                model.extra = Some(note_value(model.extra.take(), key, length.into()));
            }
        }
    }
    model
}

/// A head's text as stored, with the note of a part cut for the queue's budget (see
/// [`WriterStats::heads_cut`](crate::WriterStats::heads_cut)): the one the writer's cap of a
/// header value gives.
fn cut_head_part(request: &RequestFacts, part: TextPart, mut stored: String) -> String {
    if let Some(full) = request.text.cut_from(part) {
        stored.push_str(&format!(" …[truncated, {full} bytes total]"));
    }
    stored
}

/// `uuid.to_string()` without the formatting machinery (about 400 instructions a row).
fn uuid_text(uuid: uuid::Uuid) -> String {
    let mut buffer = uuid::Uuid::encode_buffer();
    uuid.hyphenated().encode_lower(&mut buffer).to_owned()
}

/// `ip.to_string()`, an IPv4 address written without the formatting machinery (hundreds of
/// instructions, twice a row). No address is longer than `IP_LEN`: an IPv6 one is 45 characters
/// at most.
fn ip_text(ip: std::net::IpAddr) -> String {
    const _: () = assert!(IP_LEN >= 45);
    match ip {
        std::net::IpAddr::V4(v4) => {
            let mut out = String::with_capacity(15);
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
            out
        }
        std::net::IpAddr::V6(v6) => v6.to_string(),
    }
}

/// Whether `stored` is the body the client sent: all of it was captured, it had no
/// `Content-Encoding`, and the sanitizer kept its bytes, or (for JSON not sent as `text/*`,
/// which the sanitizer writes compactly) left out only the whitespace between tokens. (A NUL,
/// which the row turns into U+FFFD, is noted by [`to_model`] after [`strip_nul`].)
fn stored_verbatim(
    stored: &str,
    body: &CapturedBody,
    content_encoding: Option<&str>,
    content_type: Option<&[u8]>,
) -> bool {
    let encoded = content_encoding.is_some_and(|coding| {
        let coding = coding.trim();
        !coding.is_empty() && !coding.eq_ignore_ascii_case("identity")
    });
    if body.truncated || encoded || body.total != body.bytes.len() as u64 {
        return false;
    }
    // A `text/*` body is read as text by its endpoint: its whitespace is its own.
    let text = content_type.is_some_and(|ct| {
        ct.trim_ascii_start()
            .get(..5)
            .is_some_and(|start| start.eq_ignore_ascii_case(b"text/"))
    });
    let raw: &[u8] = &body.bytes;
    raw == stored.as_bytes()
        || (!text
            && json_without_whitespace(raw, stored.as_bytes())
            && serde_json::from_slice::<serde::de::IgnoredAny>(raw).is_ok())
}

/// Whether `compact` is `raw` with the JSON whitespace outside strings left out. In valid JSON
/// such whitespace only ever separates tokens, so both are then the same document.
fn json_without_whitespace(raw: &[u8], compact: &[u8]) -> bool {
    let mut compact = compact.iter();
    let (mut in_string, mut escaped) = (false, false);
    for &byte in raw {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
        } else if matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
            continue;
        } else if byte == b'"' {
            in_string = true;
        }
        if compact.next() != Some(&byte) {
            return false;
        }
    }
    compact.next().is_none()
}

/// `extra` with [`REQUEST_BODY_ALTERED`] set: the writer's note wins over a handler's field of
/// that name.
fn note_altered_body(extra: Option<serde_json::Value>) -> serde_json::Value {
    note(extra, REQUEST_BODY_ALTERED)
}

/// `extra` with the writer's note `key` set to `true`, over a handler's field of that name.
fn note(extra: Option<serde_json::Value>, key: &str) -> serde_json::Value {
    note_value(extra, key, true.into())
}

/// `extra` with the writer's note `key` set to `value`, over a handler's field of that name.
fn note_value(
    extra: Option<serde_json::Value>,
    key: &str,
    value: serde_json::Value,
) -> serde_json::Value {
    let mut fields = match extra {
        Some(serde_json::Value::Object(fields)) => fields,
        _ => serde_json::Map::new(),
    };
    fields.insert(key.into(), value);
    serde_json::Value::Object(fields)
}

/// The deepest nesting of arrays and objects every backend's JSON column takes: MariaDB's
/// `JSON_VALID` refuses 32 levels.
const JSON_DEPTH: usize = 31;

/// What takes the place of an array or object nested deeper than [`JSON_DEPTH`].
const TOO_DEEP: &str = "[nested deeper than 31 levels]";

/// `value` as every backend's JSON column takes it and reads it back, which the row's hash
/// (`integrity`) must cover; `level` is its depth, 1 for the top:
/// - PostgreSQL's `jsonb` keeps a number as a decimal: a float that serde_json writes with an
///   exponent, from 1e16 up, reads back as an integer there, and `-0.0` as `0.0`; such numbers
///   are written in that form everywhere. Floats past `u64` read back as floats, and stay.
/// - PostgreSQL refuses U+0000 in `jsonb` (in a string or a key): it becomes U+FFFD, as in
///   the text columns.
/// - MariaDB refuses nesting 32 levels deep: an array or object deeper than [`JSON_DEPTH`]
///   becomes [`TOO_DEEP`].
///
/// A row the database refused would be stored in its safe form, without its body and headers:
/// a client that got a NUL into a handler's `extra` would erase its own request from the row.
fn settle_json(value: &mut serde_json::Value, level: usize) {
    use serde_json::Value;
    match value {
        Value::Array(_) | Value::Object(_) if level > JSON_DEPTH => {
            *value = Value::String(TOO_DEEP.to_owned());
        }
        Value::Number(number) => {
            let Some(float) = number.as_f64().filter(|_| number.is_f64()) else {
                return;
            };
            // 2^63 and 2^64, exactly.
            const I64_END: f64 = 9_223_372_036_854_775_808.0;
            const U64_END: f64 = 18_446_744_073_709_551_616.0;
            if float == 0.0 {
                *number = serde_json::Number::from_f64(0.0).unwrap_or_else(|| 0.into());
            } else if float.abs() >= 1e16 && (-I64_END..I64_END).contains(&float) {
                // Whole: every f64 from 2^53 up is.
                *number = (float as i64).into();
            } else if (1e16..U64_END).contains(&float) {
                *number = (float as u64).into();
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| settle_json(item, level + 1)),
        Value::Object(fields) => {
            if fields.keys().any(|key| key.contains('\0')) {
                *fields = std::mem::take(fields)
                    .into_iter()
                    .map(|(key, value)| (key.replace('\0', "\u{fffd}"), value))
                    .collect();
            }
            fields
                .values_mut()
                .for_each(|field| settle_json(field, level + 1));
        }
        Value::String(text) => {
            if memchr::memchr(0, text.as_bytes()).is_some() {
                *text = text.replace('\0', "\u{fffd}");
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

/// PostgreSQL cannot store U+0000 in text; no backend should get a row it may reject for it.
/// Returns whether the request body had one.
fn strip_nul(model: &mut Model) -> bool {
    // The `memchr` crate's search, vectorized: core's `contains` is a scalar loop (80
    // instructions a row more on a 300-byte body).
    let has_nul = |text: &str| memchr::memchr(0, text.as_bytes()).is_some();
    let fix = |text: &mut String| {
        if has_nul(text) {
            *text = text.replace('\0', "\u{fffd}");
        }
    };
    for text in [&mut model.method, &mut model.path].into_iter().chain(
        [
            &mut model.request_id,
            &mut model.route,
            &mut model.query,
            &mut model.client_ip,
            &mut model.peer_ip,
            &mut model.user_agent,
            &mut model.user_id,
            &mut model.tenant_id,
            &mut model.action,
            &mut model.resource,
            &mut model.error,
        ]
        .into_iter()
        .flatten(),
    ) {
        fix(text);
    }
    match &mut model.request_body {
        Some(body) if has_nul(body) => {
            *body = body.replace('\0', "\u{fffd}");
            true
        }
        _ => false,
    }
}

/// A last-resort form of a row the database rejected: every text cut short and stripped to
/// printable ASCII, the body replaced by a note. Keeps who, what and when.
pub(crate) fn safe_form(model: &Model, reason: &str) -> Model {
    let ascii = |text: &str, max: usize| -> String {
        text.chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .take(max)
            .collect()
    };
    let opt = |text: &Option<String>, max: usize| text.as_deref().map(|t| ascii(t, max));
    Model {
        method: ascii(&model.method, 16),
        path: ascii(&model.path, 200),
        request_id: opt(&model.request_id, 64),
        route: opt(&model.route, 200),
        query: opt(&model.query, 200),
        client_ip: opt(&model.client_ip, 45),
        peer_ip: opt(&model.peer_ip, 45),
        user_agent: opt(&model.user_agent, 200),
        user_id: opt(&model.user_id, 200),
        tenant_id: opt(&model.tenant_id, 200),
        action: opt(&model.action, 200),
        resource: opt(&model.resource, 200),
        request_body: model
            .request_body
            .as_ref()
            .map(|_| "[body not stored: the database rejected the row]".to_owned()),
        request_headers: None,
        extra: Some({
            let rejected = serde_json::json!({ "rejected": ascii(reason, 500) });
            match model.request_body {
                Some(_) => note_altered_body(Some(rejected)),
                None => rejected,
            }
        }),
        error: opt(&model.error, 200),
        ..model.clone()
    }
}

/// A gRPC request decoded with the configured descriptors, its compressed messages inflated,
/// sanitized as a JSON body; a cut stream says so, and so does a message that could not be read.
#[cfg(feature = "grpc-reflect")]
fn grpc_request_json(
    redactor: &Redactor,
    pool: &prost_reflect::DescriptorPool,
    route: &str,
    request: &crate::record::RequestFacts,
    encoding: crate::grpc::MessageEncoding<'_>,
    body: &CapturedBody,
    max_decoded: usize,
) -> Option<String> {
    use crate::grpc::decode_request;

    if body.bytes.is_empty() {
        // Nothing captured (or the body was shed): described by its size, not as no messages.
        return None;
    }
    let decoded = decode_request(pool, route, &body.bytes, encoding, max_decoded)?;
    decoded_request_body(redactor, Some(route), request, body, decoded)
}

/// The messages of a gRPC call that uses the JSON codec (`application/grpc+json`,
/// `application/grpc-web+json`), unframed, their compressed ones inflated when the request's
/// `grpc-encoding` was kept, sanitized as a JSON body: one message as itself, a stream as an
/// array (a client stream always, when the descriptors tell the method's kind:
/// `client_streaming`). `None` when nothing whole was captured: the body is then described by its
/// size.
fn grpc_json_codec_body(
    redactor: &Redactor,
    route: Option<&str>,
    request: &RequestFacts,
    encoding: crate::grpc::MessageEncoding<'_>,
    body: &CapturedBody,
    client_streaming: Option<bool>,
    max_decoded: usize,
) -> Option<String> {
    if body.bytes.is_empty() {
        return None;
    }
    let decoded = crate::grpc::json_request(
        &body.bytes,
        body.truncated,
        client_streaming == Some(true),
        encoding,
        max_decoded,
    );
    if decoded.json.is_none() && decoded.stopped.is_none() {
        return None;
    }
    decoded_request_body(redactor, route, request, body, decoded)
}

/// The JSON read from the messages of a gRPC request, sanitized; a cut stream says so, and so
/// does a message that could not be read (the body is described when it was the first).
fn decoded_request_body(
    redactor: &Redactor,
    route: Option<&str>,
    request: &RequestFacts,
    body: &CapturedBody,
    decoded: crate::grpc::DecodedRequest,
) -> Option<String> {
    let Some(json) = decoded.json else {
        let why = decoded.stopped.unwrap_or_default();
        return redactor.describe_unread_body(
            &BodyInput {
                content_type: request.text.str(TextPart::ContentType),
                content_encoding: None,
                bytes: &body.bytes,
                total_len: body.total,
                truncated: body.truncated,
                route,
            },
            &why,
        );
    };
    if let Some(why) = decoded.stopped {
        // The messages before the one that could not be read, whole; then why they end there.
        let mut out = redactor.redact_body(&BodyInput {
            content_type: Some("application/json"),
            content_encoding: None,
            bytes: json.as_bytes(),
            total_len: json.len() as u64,
            truncated: false,
            route,
        })?;
        out.push_str(&format!(
            " …[{}; {} bytes total]",
            redactor.redact_text(&why),
            body.total
        ));
        return Some(out);
    }
    let cut = body.truncated || !decoded.complete;
    redactor.redact_body(&BodyInput {
        content_type: Some("application/json"),
        content_encoding: None,
        bytes: json.as_bytes(),
        total_len: if cut { body.total } else { json.len() as u64 },
        truncated: cut,
        route,
    })
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Names the user from a verified bearer token when nothing else did; notes why not otherwise.
/// `authorization`: the header's value as kept, and whether it was cut for the queue's budget.
/// `arrived`: the request's arrival in Unix seconds, which the token's times are checked against.
#[cfg(feature = "jwt")]
fn verify_identity(
    config: &RowConfig,
    authorization: Option<(&[u8], bool)>,
    arrived: i64,
    context: &mut ContextFields,
) {
    let (Some(jwt), Some((authorization, cut))) = (&config.jwt, authorization) else {
        return;
    };
    if context.user_id.is_some() {
        return;
    }
    let reason = if cut {
        // What is left of it fails as a forgery would: the row must not say the client sent one.
        "token not verified: the Authorization header was cut for the queue's budget".to_owned()
    } else {
        match jwt.identify(authorization, arrived) {
            Ok((identity, note)) => {
                if context.tenant_id.is_none() {
                    context.tenant_id = identity.tenant_id;
                }
                context.user_id = identity.user_id;
                match note {
                    // The user stands; the row says why the token named no tenant.
                    Some(note) if context.user_id.is_some() => note,
                    _ if context.user_id.is_some() => return,
                    // A verified token without its user claim (a misconfigured `user_claim`, a
                    // machine token): the row says why it has no user rather than nothing.
                    _ => format!(
                        "token verified, but its `{}` claim names no user",
                        jwt.user_claim_name()
                    ),
                }
            }
            Err(reason) => reason,
        }
    };
    context
        .extra
        .get_or_insert_with(serde_json::Map::new)
        .insert("identity_error".into(), reason.into());
}

/// Runs handler-supplied fields through the body sanitizer, as JSON.
fn redact_json(
    redactor: &Redactor,
    extra: serde_json::Map<String, serde_json::Value>,
) -> serde_json::Value {
    let raw = serde_json::Value::Object(extra).to_string();
    let redacted = redactor.redact_body(&BodyInput {
        content_type: Some("application/json"),
        content_encoding: None,
        bytes: raw.as_bytes(),
        total_len: raw.len() as u64,
        truncated: false,
        route: None,
    });
    redacted
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// With `anonymize_ip`, the addresses of the recorded headers that name the client
/// ([`CLIENT_ADDRESS_HEADERS`](crate::client_ip::CLIENT_ADDRESS_HEADERS): `X-Forwarded-For`,
/// `Forwarded`, `X-Real-IP`, …) cut as the columns' are: the whole addresses, the ones a client
/// wrote too, stayed there.
fn anonymize_address_headers(headers: &mut serde_json::Value) {
    use serde_json::Value;
    let Value::Object(fields) = headers else {
        return;
    };
    for (name, value) in fields.iter_mut() {
        if !crate::client_ip::CLIENT_ADDRESS_HEADERS
            .iter()
            .any(|header| header.eq_ignore_ascii_case(name))
        {
            continue;
        }
        let values = match value {
            Value::Array(values) => values.iter_mut().collect(),
            value => vec![value],
        };
        for value in values {
            if let Value::String(text) = value
                && let std::borrow::Cow::Owned(cut) = crate::client_ip::anonymize_addresses(text)
            {
                *text = cut;
            }
        }
    }
}

/// Header bytes as text: invalid UTF-8 is replaced rather than rejected, then cut to fit.
fn lossy(bytes: &[u8], max_bytes: usize) -> String {
    // Checking valid UTF-8 first is several times faster than `from_utf8_lossy`'s chunks.
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    };
    cut_bytes(text, max_bytes)
}

/// At most `max` characters (how MySQL and PostgreSQL measure `VARCHAR(n)`).
pub(crate) fn cut_chars(text: &str, max: u32) -> String {
    // No more characters than bytes: most values need no counting.
    if text.len() <= max as usize {
        return text.to_owned();
    }
    match text.char_indices().nth(max as usize) {
        Some((end, _)) => text[..end].to_owned(),
        None => text.to_owned(),
    }
}

/// At most `max` bytes, cut on a character boundary.
pub(crate) fn cut_bytes(mut text: String, max: usize) -> String {
    text.truncate(text.floor_char_boundary(max));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_respect_character_boundaries() {
        assert_eq!(cut_chars("héllo", 2), "hé");
        assert_eq!(cut_chars("abc", 10), "abc");
        assert_eq!(cut_bytes("héllo".to_owned(), 2), "h");
        assert_eq!(cut_bytes("héllo".to_owned(), 3), "hé");
        assert_eq!(lossy(b"a\xffb", 10), "a\u{fffd}b");
        // More bytes than the limit, yet few enough characters.
        assert_eq!(cut_chars("ééé", 3), "ééé");
        assert_eq!(cut_chars("ééé", 2), "éé");
        assert_eq!(cut_chars("abc", 3), "abc");
        assert_eq!(lossy("héllo".as_bytes(), 3), "hé");
        assert_eq!(lossy(b"ok", 10), "ok");
    }

    /// A record that waited (in the queue, or in the journal through an outage) keeps the user
    /// its token named when the request arrived, however late the writer gets to it.
    #[cfg(feature = "jwt")]
    #[test]
    fn a_token_is_checked_against_the_arrival_not_the_writers_clock() {
        use crate::body::Capture;
        use crate::context::RequestShared;
        use crate::record::{RequestFacts, TextParts};
        use jsonwebtoken::{EncodingKey, Header};

        let now = chrono::Utc::now();
        // Used an hour ago; expired half an hour ago (well past the 60 s of leeway).
        let claims = serde_json::json!({ "sub": "alice", "exp": now.timestamp() - 1800 });
        let token = jsonwebtoken::encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(b"a long random secret, 32 bytes.."),
        )
        .expect("token");
        let authorization = format!("Bearer {token}");
        let arrived = quanta::Instant::now();
        let record = || {
            let mut facts = RequestFacts::arriving(arrived);
            facts.text.fill(
                TextParts {
                    path: Some(b"/transfer"),
                    authorization: Some(authorization.as_bytes()),
                    ..TextParts::default()
                },
                |_| true,
            );
            AuditRecord::answered(RequestShared::new(Capture::new(0), facts))
        };
        let config = RowConfig {
            jwt: Some(std::sync::Arc::new(crate::JwtIdentity::hs256(
                b"a long random secret, 32 bytes..",
            ))),
            ..RowConfig::default()
        };

        let an_hour_ago = WallClock::with_rate(arrived, now - chrono::Duration::hours(1), 1.0);
        let row = to_model_alone(record(), &config, &an_hour_ago);
        assert_eq!(row.user_id.as_deref(), Some("alice"), "{:?}", row.extra);
        assert_eq!(row.extra, None);

        let just_now = WallClock::with_rate(arrived, now, 1.0);
        let row = to_model_alone(record(), &config, &just_now);
        assert_eq!(row.user_id, None);
        let reason = row
            .extra
            .as_ref()
            .and_then(|extra| extra.get("identity_error"))
            .and_then(|reason| reason.as_str())
            .unwrap_or_default()
            .to_owned();
        assert!(reason.contains("ExpiredSignature"), "{reason}");
    }

    fn captured(raw: &[u8]) -> CapturedBody {
        CapturedBody {
            bytes: bytes::Bytes::copy_from_slice(raw),
            total: raw.len() as u64,
            ..CapturedBody::default()
        }
    }

    /// A gRPC request whose compressed messages cannot all be read: the messages before the
    /// first that cannot, redacted, and why it stops; nothing read: a description, unless the
    /// route has a body function of its own.
    #[cfg(feature = "grpc-reflect")]
    #[test]
    fn grpc_messages_that_cannot_be_read_are_described() {
        use crate::record::{RequestFacts, TextParts};

        const ROUTE: &str = "tower_audit.demo.v1.Demo/ClientStream";
        let pool = prost_reflect::DescriptorPool::decode(
            include_bytes!("../../proto/generated/demo.bin").as_ref(),
        )
        .expect("the demo descriptors");
        let framed = |flag: u8, payload: &[u8]| {
            let mut out = vec![flag];
            out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            out.extend_from_slice(payload);
            out
        };
        // Ping { message: "password=hunter2" }, then a message of another encoding.
        let mut ping = vec![0x0a, 16];
        ping.extend_from_slice(b"password=hunter2");
        let body = [framed(0, &ping), framed(1, b"\x28\xb5\x2f\xfd...")].concat();
        let mut facts = RequestFacts::arriving(quanta::Instant::now());
        facts.text.fill(
            TextParts {
                content_type: Some(b"application/grpc"),
                ..TextParts::default()
            },
            |_| true,
        );
        let json = |redactor: &Redactor, body: &[u8]| {
            let encoding = crate::grpc::MessageEncoding::parse(Some(b"zstd"));
            grpc_request_json(
                redactor,
                &pool,
                ROUTE,
                &facts,
                encoding,
                &captured(body),
                redactor.max_decoded_bytes(),
            )
        };
        let redactor = Redactor::default();
        assert_eq!(
            json(&redactor, &body).as_deref(),
            Some(
                format!(
                    r#"[{{"message":"password=[REDACTED]"}}] …[message 2 is zstd-compressed, not decoded; {} bytes total]"#,
                    body.len()
                )
                .as_str()
            )
        );
        let unread = &body[5 + ping.len()..];
        assert_eq!(
            json(&redactor, unread).as_deref(),
            Some(
                format!(
                    "[binary application/grpc, {} bytes: message 1 is zstd-compressed, not decoded]",
                    unread.len()
                )
                .as_str()
            )
        );
        let custom = Redactor::builder()
            .route_body_fn(ROUTE, |body| {
                Some(format!("{} bytes, mine", body.total_len))
            })
            .build();
        assert_eq!(
            json(&custom, unread).as_deref(),
            Some(format!("{} bytes, mine", unread.len()).as_str())
        );
    }

    /// The row of a gRPC call of `content_type` to `pkg.Orders/Create` whose captured request
    /// body is `body` (`truncated`: cut by the capture cap, `total` bytes in all).
    fn grpc_row(content_type: &str, body: &[u8], truncated: Option<u64>) -> Model {
        use crate::body::Capture;
        use crate::context::RequestShared;
        use crate::record::{RequestFacts, TextParts};

        let mut facts = RequestFacts::arriving(quanta::Instant::now());
        facts.text.fill(
            TextParts {
                path: Some(b"/pkg.Orders/Create"),
                content_type: Some(content_type.as_bytes()),
                ..TextParts::default()
            },
            |_| true,
        );
        let capture = match truncated {
            Some(total) => Capture::read_to_end(
                &[body, &vec![0; total as usize - body.len()][..]].concat(),
                body.len(),
            ),
            None => Capture::read_to_end(body, body.len()),
        };
        let record = AuditRecord {
            grpc_status: Some(0),
            grpc_messages_out: Some(1),
            ..AuditRecord::answered(RequestShared::new(capture, facts))
        };
        to_model_alone(record, &RowConfig::default(), &WallClock::now())
    }

    /// A gzip body decodes to no more than the layer keeps of a body, and the bodies of one
    /// batch grow past their captured bytes by no more than the batch's budget: past it, a
    /// compressed body is described, not decoded (found by a probe: a hundred bytes of gzip
    /// that inflate to 60 KB, in each of a batch's records, took 405 MiB; each row stored the
    /// 60 KB whole where `max_body_bytes` was 16 KiB).
    #[test]
    fn compressed_bodies_decode_within_the_body_cap_and_the_batchs_budget() {
        use std::io::Write as _;

        use crate::body::Capture;
        use crate::context::RequestShared;
        use crate::record::{RequestFacts, TextParts};

        let item = r#""aaaaaaaa","#;
        let inflated = format!(
            r#"{{"password":"hunter2","items":[{}"a"]}}"#,
            item.repeat(60_000 / item.len())
        );
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(inflated.as_bytes()).unwrap();
        let gzipped = encoder.finish().unwrap();
        assert!(gzipped.len() < 200, "{} bytes of gzip", gzipped.len());
        let record = || {
            let mut facts = RequestFacts::arriving(quanta::Instant::now());
            facts.text.fill(
                TextParts {
                    path: Some(b"/upload"),
                    content_type: Some(b"application/json"),
                    content_encoding: Some(b"gzip"),
                    ..TextParts::default()
                },
                |_| true,
            );
            AuditRecord::answered(RequestShared::new(
                Capture::read_to_end(&gzipped, gzipped.len()),
                facts,
            ))
        };
        let config = RowConfig {
            max_body_bytes: 16 * 1024,
            batch_inflation: 40 * 1024,
            ..RowConfig::default()
        };
        let clock = WallClock::now();
        let mut inflation = config.batch_inflation;
        let bodies: Vec<String> = (0..8)
            .map(|_| {
                to_model(record(), &config, &clock, &mut inflation)
                    .request_body
                    .unwrap()
            })
            .collect();
        // Decoded to the cap (and cut there) while the budget has room for a whole cap: two of
        // 16 KiB in 40; then described.
        for body in &bodies[..2] {
            assert!(body.starts_with(r#"{"password":"[REDACTED]","items":["aaa"#));
            let stored = body.len();
            assert!(
                stored > 16_000 && stored < 16 * 1024 + 100,
                "{stored} bytes"
            );
        }
        let described = format!("[gzip-encoded application/json, {} bytes]", gzipped.len());
        for body in &bodies[2..] {
            assert_eq!(body, &described);
        }
        // A record alone, with no cap of the layer's, decodes to the redactor's bound.
        let alone = to_model_alone(record(), &RowConfig::default(), &clock)
            .request_body
            .unwrap();
        assert!(alone.len() > 60_000, "{} bytes", alone.len());
        assert!(!alone.contains("hunter2"));
    }

    /// A gRPC call's route is the path its client sent: a secret the path's redaction took out
    /// must not stay in it, nor may any path that names no method fill the route's index.
    #[test]
    fn a_grpc_route_is_kept_only_where_it_names_a_method_as_sent() {
        use crate::body::Capture;
        use crate::context::RequestShared;
        use crate::record::{RequestFacts, TextParts};

        let row = |path: &str| {
            let mut facts = RequestFacts::arriving(quanta::Instant::now());
            facts.text.fill(
                TextParts {
                    path: Some(path.as_bytes()),
                    content_type: Some(b"application/grpc"),
                    ..TextParts::default()
                },
                |_| true,
            );
            let name = path.strip_prefix('/').unwrap_or(path);
            facts.route = Some(RouteName::Text(std::sync::Arc::from(name)));
            let record = AuditRecord {
                grpc_status: Some(12),
                grpc_messages_out: Some(0),
                ..AuditRecord::answered(RequestShared::new(Capture::read_to_end(b"", 0), facts))
            };
            to_model_alone(record, &RowConfig::default(), &WallClock::now())
        };
        for method in [
            "/pkg.Orders/Create",
            "/grpc.health.v1.Health/Check",
            "/auth.v1.Auth/Login",
            "/auth.v1.PasswordService/ResetPassword",
            "/api.v1.Keys/GetApiKey",
            "/Greeter/SayHello",
        ] {
            let row = row(method);
            assert_eq!(row.path, method);
            assert_eq!(row.route.as_deref(), Some(&method[1..]));
        }
        let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        for (path, secret) in [
            ("/pkg.Orders/Create;jsessionid=0F3A9B2C77", "0F3A9B2C77"),
            ("/cards/4111111111111111/charge", "4111111111111111"),
            (&format!("/pkg.Orders/{jwt}"), jwt),
        ] {
            let row = row(path);
            assert!(!row.path.contains(secret), "{}", row.path);
            assert_eq!(row.route.as_deref(), Some(UNMATCHED_ROUTE), "{path}");
        }
        for path in [
            "/pkg.Orders/Create/extra",
            "/pkg..Orders/Create",
            "/9pkg.Orders/Create",
        ] {
            assert_eq!(row(path).route.as_deref(), Some(UNMATCHED_ROUTE), "{path}");
        }
    }

    fn frame(flag: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![flag];
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// A JSON-codec gRPC call: its messages unframed and sanitized as JSON, one object for a
    /// single message, an array for a stream; a cut last message is said to be cut.
    #[test]
    fn grpc_json_codec_messages_are_unframed_and_redacted() {
        let login = br#"{"user":"ann","password":"hunter2"}"#;
        for content_type in [
            "application/grpc+json",
            "application/grpc-web+json",
            "Application/gRPC+JSON; charset=utf-8",
        ] {
            let row = grpc_row(content_type, &frame(0, login), None);
            assert_eq!(
                row.request_body.as_deref(),
                Some(r#"{"user":"ann","password":"[REDACTED]"}"#),
                "{content_type}"
            );
            assert_eq!(
                row.extra,
                Some(serde_json::json!({ REQUEST_BODY_ALTERED: true }))
            );
        }
        let stream = [
            frame(0, br#"{"note":"a"}"#),
            frame(0, br#" {"token":"t0ps3cret"} "#),
        ]
        .concat();
        let row = grpc_row("application/grpc+json", &stream, None);
        assert_eq!(
            row.request_body.as_deref(),
            Some(r#"[{"note":"a"},{"token":"[REDACTED]"}]"#)
        );
        // The third message cut by the capture cap.
        let third = frame(0, br#"{"password":"hunter2"}"#);
        let cut = [stream.clone(), third[..12].to_vec()].concat();
        let total = stream.len() + third.len();
        let row = grpc_row("application/grpc+json", &cut, Some(total as u64));
        assert_eq!(
            row.request_body.as_deref(),
            Some(
                format!(
                    r#"[{{"note":"a"}},{{"token":"[REDACTED]"}}] …[truncated, {total} bytes total]"#
                )
                .as_str()
            )
        );
        // Cut right after a whole message: a stream, whatever came next.
        let first = frame(0, br#"{"note":"a"}"#);
        let total = first.len() + third.len();
        let row = grpc_row("application/grpc+json", &first, Some(total as u64));
        assert_eq!(
            row.request_body.as_deref(),
            Some(format!(r#"[{{"note":"a"}}] …[truncated, {total} bytes total]"#).as_str())
        );
        // Nothing whole: described by its size, never the bytes.
        let row = grpc_row(
            "application/grpc+json",
            &third[..12],
            Some(third.len() as u64),
        );
        assert_eq!(
            row.request_body.as_deref(),
            Some(format!("[binary application/grpc+json, {} bytes]", third.len()).as_str())
        );
    }

    /// A message that is no JSON, or compressed (its `grpc-encoding` not kept), stops the
    /// reading: the messages before it, and why; its bytes are never stored.
    #[test]
    fn grpc_json_codec_messages_that_cannot_be_read_are_described() {
        let bad = frame(0, br#"{"user":"ann", password: "hunter2"}"#);
        let row = grpc_row("application/grpc+json", &bad, None);
        assert_eq!(
            row.request_body.as_deref(),
            Some(
                format!(
                    "[binary application/grpc+json, {} bytes: message 1 is not valid JSON]",
                    bad.len()
                )
                .as_str()
            )
        );
        let body = [
            frame(0, br#"{"password":"a"}"#),
            frame(1, b"\x1f\x8b..hunter2"),
        ]
        .concat();
        let row = grpc_row("application/grpc-web+json", &body, None);
        assert_eq!(
            row.request_body.as_deref(),
            Some(
                format!(
                    r#"[{{"password":"[REDACTED]"}}] …[message 2 is compressed, not decoded; {} bytes total]"#,
                    body.len()
                )
                .as_str()
            )
        );
        let empty = frame(0, b"");
        let row = grpc_row("application/grpc+json", &empty, None);
        assert_eq!(
            row.request_body.as_deref(),
            Some("[binary application/grpc+json, 5 bytes: message 1 is not valid JSON]")
        );
    }

    /// Codecs other than JSON (and the framing of `+xml`, which is no text) are described by size.
    #[test]
    fn grpc_codecs_other_than_json_are_described_by_size() {
        for content_type in [
            "application/grpc+cbor",
            "application/grpc+xml",
            "application/grpc-web+proto",
        ] {
            let body = frame(0, b"<password>hunter2</password>");
            let row = grpc_row(content_type, &body, None);
            assert_eq!(
                row.request_body,
                Some(format!("[binary {content_type}, {} bytes]", body.len())),
            );
        }
    }

    /// Only a body stored as the client sent it (JSON compacted included) is verbatim; what the
    /// sanitizer changed, summarized or decoded, and what was cut, is not.
    #[test]
    fn verbatim_bodies_are_told_from_altered_ones() {
        let redactor = Redactor::builder().replacement("<gone>").build();
        let stored = |raw: &[u8], content_type: &str| {
            redactor
                .redact_body(&BodyInput::new(Some(content_type), raw))
                .unwrap_or_default()
        };
        for (raw, content_type, verbatim) in [
            (&br#"{"qty":2}"#[..], "application/json", true),
            (b"{ \"qty\" : 2,\n \"note\": \"a  b\" }", "application/json", true),
            (br#"{"qty":2,"password":"x"}"#, "application/json", false),
            (b"a=1&b=two", "application/x-www-form-urlencoded", true),
            (b"a=1&token=two", "application/x-www-form-urlencoded", false),
            (b"plain words", "text/plain", true),
            (b"\x89PNG", "image/png", false),
            (
                b"--b\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nholiday\r\n--b--\r\n",
                "multipart/form-data; boundary=b",
                false,
            ),
        ] {
            let text = stored(raw, content_type);
            assert_eq!(
                stored_verbatim(&text, &captured(raw), None, Some(content_type.as_bytes())),
                verbatim,
                "{content_type}: {text}"
            );
        }
        let json = br#"{"qty":2}"#;
        let text = stored(json, "application/json");
        assert!(!stored_verbatim(&text, &captured(json), Some("gzip"), None));
        assert!(stored_verbatim(
            &text,
            &captured(json),
            Some("identity"),
            None
        ));
        let mut cut = captured(json);
        cut.truncated = true;
        assert!(!stored_verbatim(&text, &cut, None, None));
        // Whitespace inside a string is the document's own; a token split by it is invalid.
        assert!(!json_without_whitespace(br#"["a b"]"#, br#"["ab"]"#));
        assert!(!stored_verbatim("[12]", &captured(b"[1 2]"), None, None));
        // JSON sent as text is compacted by the sanitizer: its endpoint would get other bytes.
        let pretty = b"{\n  \"note\": \"a\"\n}";
        let text = stored(pretty, "text/plain");
        assert_eq!(text, r#"{"note":"a"}"#);
        assert!(!stored_verbatim(
            &text,
            &captured(pretty),
            None,
            Some(b"text/plain")
        ));
        assert!(stored_verbatim(
            &text,
            &captured(pretty),
            None,
            Some(b"application/json")
        ));
        // The row's NUL becomes U+FFFD: not the body that was sent, noted with the row.
        let mut model = super::super::sink::template_row();
        model.request_body = Some("a\0b".to_owned());
        assert!(strip_nul(&mut model));
        assert_eq!(model.request_body.as_deref(), Some("a\u{fffd}b"));
        let mut model = super::super::sink::template_row();
        model.path = "/a\0b".to_owned();
        assert!(!strip_nul(&mut model), "only the body counts");
    }

    /// The note of a row sealed again is the writer's: a restarted writer relinks journaled
    /// rows from it. A handler's field of that name is not stored.
    #[cfg(feature = "integrity")]
    #[test]
    fn a_handler_cannot_set_the_chains_note_of_a_replaced_row() {
        use crate::context::{AuditContext, RequestShared};
        use crate::record::RequestFacts;

        let shared = RequestShared::new(
            crate::body::Capture::new(0),
            RequestFacts::arriving(quanta::Instant::now()),
        );
        let context = AuditContext::new(std::sync::Arc::clone(&shared));
        context.insert_extra("plan", "gold");
        context.insert_extra(
            crate::integrity::CHAIN_REPLACED,
            serde_json::json!({ "seq": 7, "hash": "v1:00" }),
        );
        let record = AuditRecord::answered(shared);
        let config = RowConfig::default();
        let row = to_model_alone(record, &config, &WallClock::now());
        assert_eq!(row.extra, Some(serde_json::json!({ "plan": "gold" })));
    }

    #[test]
    fn the_note_on_an_altered_body_wins_over_a_handlers_field() {
        let extra = serde_json::json!({ "plan": "gold", REQUEST_BODY_ALTERED: false });
        assert_eq!(
            note_altered_body(Some(extra)),
            serde_json::json!({ "plan": "gold", REQUEST_BODY_ALTERED: true })
        );
        assert_eq!(
            note_altered_body(None),
            serde_json::json!({ REQUEST_BODY_ALTERED: true })
        );
    }

    /// The text is std's, for every octet value in every position.
    #[test]
    fn addresses_are_written_as_std_writes_them() {
        use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
        for octet in 0..=255_u8 {
            for position in 0..4 {
                let mut octets = [1, 22, 203, 9];
                octets[position] = octet;
                let ip = IpAddr::V4(Ipv4Addr::from(octets));
                assert_eq!(ip_text(ip), ip.to_string());
            }
        }
        for ip in [
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            "2001:db8::ffff:255.255.255.255".parse().expect("ip"),
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
                .parse()
                .expect("ip"),
        ] {
            assert_eq!(ip_text(ip), ip.to_string());
            assert!(ip_text(ip).len() <= IP_LEN as usize);
        }
    }
    /// The text is the uuid crate's `Display`.
    #[test]
    fn record_ids_are_written_as_uuid_writes_them() {
        for _ in 0..100 {
            let id = crate::writer::uuid_v7(chrono::Utc::now());
            assert_eq!(uuid_text(id), id.to_string());
        }
        assert_eq!(uuid_text(uuid::Uuid::max()), uuid::Uuid::max().to_string());
    }

    /// Found by a probe: PostgreSQL read `1e16` back as `10000000000000000` and `-0.0` as
    /// `0.0`, so rows whose `extra` held them failed verification there. The values are now
    /// written as it reads them back (`SELECT '[1e16, -0.0, …]'::jsonb`).
    #[test]
    fn numbers_are_written_as_jsonb_reads_them_back() {
        let mut value = serde_json::json!({"n": [
            1e16, 1.5e16, -1e16, 1e19, 1e20, -0.0, 0.0, 0.1, 1e15, 1e-7, -2.5, 7, u64::MAX
        ]});
        settle_json(&mut value, 1);
        assert_eq!(
            value.to_string(),
            "{\"n\":[10000000000000000,15000000000000000,-10000000000000000,\
             10000000000000000000,1e+20,0.0,0.0,0.1,1000000000000000.0,1e-7,-2.5,7,\
             18446744073709551615]}"
        );
    }

    /// Found by a probe: PostgreSQL refused a NUL in `extra` (a string or a key) and MariaDB
    /// nesting 32 levels deep, and the row was stored in its safe form, without its body and
    /// headers. A NUL becomes U+FFFD; an array or object past 31 levels, a note.
    #[test]
    fn extra_is_written_as_every_backend_takes_it() {
        let mut value = serde_json::json!({"note": "a\u{0}b", "k\u{0}": ["x\u{0}", 1]});
        settle_json(&mut value, 1);
        assert_eq!(
            value,
            serde_json::json!({"note": "a\u{fffd}b", "k\u{fffd}": ["x\u{fffd}", 1]})
        );
        let nested = |levels: usize| {
            (1..levels).fold(
                serde_json::json!({"leaf": 1}),
                |inner, _| serde_json::json!({ "a": inner }),
            )
        };
        let mut deep = nested(JSON_DEPTH);
        settle_json(&mut deep, 1);
        assert_eq!(deep, nested(JSON_DEPTH));
        let mut deeper = nested(JSON_DEPTH + 9);
        settle_json(&mut deeper, 1);
        let mut innermost = &deeper;
        for _ in 1..JSON_DEPTH {
            innermost = &innermost["a"];
        }
        assert_eq!(innermost["a"], serde_json::json!(TOO_DEEP));
    }
}
