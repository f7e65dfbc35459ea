//! Replay: sending the recorded state-changing requests of a range again, through any service.

use std::ops::ControlFlow;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::Full;
use sea_orm::ConnectionTrait;
use tower_service::Service;

use super::query::stored_page;
use super::stored::Stored;
use super::{AuditFilter, PageRequest};
use crate::Error;
use crate::entity::audit_log::{Model, REQUEST_BODY_ALTERED, REQUEST_TARGET_ALTERED};

/// The methods a replay sends: those that change state.
pub const REPLAYED_METHODS: [&str; 4] = ["POST", "PUT", "PATCH", "DELETE"];

/// The text the default [`Redactor`](crate::sanitize::Redactor) puts in place of a secret.
pub const REDACTION_MARKER: &str = "[REDACTED]";

/// One recorded request, as a replay sends it. Made from a row (`From<Model>`); its fields grow
/// as the rows a replay must tell apart do, so it is not built field by field outside the crate.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ReplayRecord {
    /// The row's id.
    pub id: i64,
    /// The row's request id.
    pub request_id: Option<String>,
    /// When the request arrived.
    pub occurred_at: DateTime<Utc>,
    /// HTTP method.
    pub method: String,
    /// Path, without the query.
    pub path: String,
    /// Stored (sanitized) query string.
    pub query: Option<String>,
    /// Stored (sanitized) request body.
    pub body: Option<String>,
    /// Whether the stored body is only a prefix.
    pub body_truncated: bool,
    /// Whether the writer noted that the stored body is not the one the client sent (see
    /// [`REQUEST_BODY_ALTERED`]).
    pub body_altered: bool,
    /// Whether the writer noted that the stored path or query is not the one the client sent
    /// (see [`REQUEST_TARGET_ALTERED`]).
    pub target_altered: bool,
    /// Body bytes the client sent.
    pub body_bytes: i64,
    /// The `content-type` recorded in `request_headers`, if it was recorded.
    pub content_type: Option<String>,
    /// The other headers recorded in `request_headers` (see
    /// [`record_headers`](crate::AuditLayerBuilder::record_headers)), as stored: one pair a
    /// value, redacted or cut ones included (a replay sends neither).
    pub headers: Vec<(String, String)>,
    /// The note stored in `request_headers` in place of the recorded headers, when they were
    /// left out for the queue's budget (`[headers not captured, N bytes]`).
    pub headers_not_captured: Option<String>,
    /// Whether the request was a gRPC call: gRPC message counts or a gRPC status were
    /// recorded, or an `application/grpc…` content type.
    pub grpc: bool,
    /// The status the request got when it was recorded.
    pub status: Option<i32>,
}

impl From<Model> for ReplayRecord {
    fn from(row: Model) -> Self {
        let content_type = row
            .request_headers
            .as_ref()
            .and_then(|h| h.get("content-type"))
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let noted = |key: &str| {
            row.extra
                .as_ref()
                .and_then(|extra| extra.get(key))
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false)
        };
        let body_altered = noted(REQUEST_BODY_ALTERED);
        let target_altered = noted(REQUEST_TARGET_ALTERED);
        let headers_not_captured = row
            .request_headers
            .as_ref()
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        let mut headers = Vec::new();
        if let Some(recorded) = row
            .request_headers
            .as_ref()
            .and_then(serde_json::Value::as_object)
        {
            for (name, values) in recorded {
                if name.eq_ignore_ascii_case("content-type") {
                    continue;
                }
                let values = match values {
                    serde_json::Value::Array(values) => values.iter().collect(),
                    value => vec![value],
                };
                for value in values.into_iter().filter_map(serde_json::Value::as_str) {
                    headers.push((name.clone(), value.to_owned()));
                }
            }
        }
        let grpc = row.grpc_messages_in.is_some()
            || row.grpc_messages_out.is_some()
            || row.grpc_status.is_some()
            || content_type.as_deref().is_some_and(|ct| {
                ct.trim_start()
                    .get(..16)
                    .is_some_and(|essence| essence.eq_ignore_ascii_case("application/grpc"))
            });
        ReplayRecord {
            id: row.id,
            request_id: row.request_id,
            occurred_at: row.occurred_at,
            method: row.method,
            path: row.path,
            query: row.query,
            body: row.request_body,
            body_truncated: row.request_body_truncated,
            body_altered,
            target_altered,
            body_bytes: row.request_bytes,
            content_type,
            headers,
            headers_not_captured,
            grpc,
            status: row.status,
        }
    }
}

impl ReplayRecord {
    /// Why this record cannot be replayed faithfully, if it cannot.
    ///
    /// The writer's note ([`body_altered`](Self::body_altered)) is what tells a body that the
    /// sanitizer changed without a trace of it, as with a replacement text of the user's or a
    /// multipart upload stored as the JSON list of its parts. Rows written before that note
    /// existed are judged by what the stored text shows: `marker`, a description, a cut.
    pub fn unreplayable(&self, marker: &str) -> Option<String> {
        if self.grpc {
            // A replay sends HTTP bodies as stored; a gRPC call's are its framed messages.
            return Some(
                "gRPC call: its messages are stored decoded or described, not framed as sent"
                    .to_owned(),
            );
        }
        // Cut for the queue's budget or the column's size: a space cannot be in a sent path
        // or query, so the note is never the client's.
        if is_cut(&self.path) {
            return Some("path was truncated (stored as cut, the request was not)".to_owned());
        }
        if self.path.contains(marker) {
            return Some("path was redacted".to_owned());
        }
        if self.query.as_deref().is_some_and(is_cut) {
            return Some(
                "query string was truncated (stored as cut, the request was not)".to_owned(),
            );
        }
        if self.body_truncated {
            // `request_bytes` counts what the server read: 0 for a body no handler read.
            return Some(format!(
                "request body was not read to its end ({} bytes read)",
                self.body_bytes
            ));
        }
        if let Some(body) = &self.body {
            if body.contains(marker) {
                return Some("request body was redacted".to_owned());
            }
            // Binary, undecodable or uncaptured bodies are stored as a description.
            if body.starts_with('[') && body.ends_with(" bytes]") {
                return Some(format!("request body was not stored: {body}"));
            }
            if body.contains(" …[") {
                return Some("request body was stored altered (malformed)".to_owned());
            }
            let multipart = self.content_type.as_deref().is_some_and(|ct| {
                ct.trim_start()
                    .get(..10)
                    .is_some_and(|essence| essence.eq_ignore_ascii_case("multipart/"))
            });
            if multipart {
                return Some(
                    "request body was stored as a summary of its parts (multipart)".to_owned(),
                );
            }
            if self.body_altered {
                return Some(
                    "request body was stored altered (redacted, summarized or decoded)".to_owned(),
                );
            }
        } else if self.body_bytes > 0 {
            return Some("request body was not stored".to_owned());
        }
        if self.query.as_deref().is_some_and(|q| q.contains(marker)) {
            return Some("query string was redacted".to_owned());
        }
        if self.target_altered {
            return Some("path or query was stored altered (redacted or replaced)".to_owned());
        }
        let has_body = self.body_bytes > 0 || self.body.as_deref().is_some_and(|b| !b.is_empty());
        if let Some(note) = self.headers_not_captured.as_deref().filter(|_| has_body) {
            return Some(format!(
                "request headers were not captured ({note}): the content-type the body was sent \
                 with is unknown"
            ));
        }
        if let Some(content_type) = &self.content_type {
            if is_cut(content_type) {
                return Some("recorded content-type was truncated".to_owned());
            }
            if content_type.contains(marker) {
                return Some("recorded content-type was redacted".to_owned());
            }
        }
        None
    }
}

/// Whether `text` ends in the note of a value cut short (` …[truncated, N bytes total]`).
fn is_cut(text: &str) -> bool {
    text.ends_with(" bytes total]") && text.contains(" …[truncated, ")
}

/// How [`replay`] sends records.
///
/// | setting | default |
/// | --- | --- |
/// | `dry_run` | `false`: send |
/// | `rate` | unlimited (requests per second otherwise) |
/// | `stop_on_error` | `false`: go on after a failure |
/// | `header` | none added |
/// | `base_uri` | none: request URIs are path and query only |
/// | `redaction_marker` | `[REDACTED]` |
/// | `page_size` | 500 rows read per query |
/// | `timeout` | 30 s for each request's response head |
/// | `include_refused` | `false`: requests answered 401 or 403 are skipped |
/// | `request_id_header` | none besides `x-request-id`, `request-id` and `x-correlation-id` |
/// | `on_outcome` | none: the outcomes are in the report only |
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    dry_run: bool,
    /// The pause between two requests, from `rate`.
    interval: Option<Duration>,
    stop_on_error: bool,
    headers: Vec<(HeaderName, HeaderValue)>,
    base_uri: Option<Uri>,
    marker: String,
    page_size: u64,
    timeout: Duration,
    include_refused: bool,
    request_id_header: Option<HeaderName>,
    on_outcome: Option<OnOutcome>,
}

/// A function of a record and its outcome, which may stop the replay.
type OutcomeFn = dyn Fn(&ReplayRecord, &ReplayOutcome) -> ControlFlow<()> + Send + Sync;

/// What [`ReplayOptions::on_outcome`] calls.
#[derive(Clone)]
struct OnOutcome(std::sync::Arc<OutcomeFn>);

impl std::fmt::Debug for OnOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnOutcome(..)")
    }
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            dry_run: false,
            interval: None,
            stop_on_error: false,
            headers: Vec::new(),
            base_uri: None,
            marker: REDACTION_MARKER.to_owned(),
            page_size: 500,
            timeout: Duration::from_secs(30),
            include_refused: false,
            request_id_header: None,
            on_outcome: None,
        }
    }
}

impl ReplayOptions {
    /// The defaults above.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reports what would be sent, and sends nothing.
    #[must_use]
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Sends at most `per_second` requests per second (ignored unless positive and finite; more
    /// than one a nanosecond is no limit).
    #[must_use]
    pub fn rate(mut self, per_second: f64) -> Self {
        self.interval = (per_second > 0.0 && per_second.is_finite())
            .then(|| {
                // An interval too long for a `Duration` is as long as one can be (tokio waits
                // about 30 years at most); `tokio::time::interval` panics on a zero one.
                Duration::try_from_secs_f64(per_second.recip()).unwrap_or(Duration::MAX)
            })
            .filter(|interval| !interval.is_zero());
        self
    }

    /// Stops after the first failure or status that differs from the recorded one.
    #[must_use]
    pub fn stop_on_error(mut self, stop: bool) -> Self {
        self.stop_on_error = stop;
        self
    }

    /// Adds a header to every request, such as an `Authorization` valid on the target (the
    /// recorded credentials are not stored). It replaces a header of the same name (in any
    /// case) that the request would carry from the record (its `content-type`, or another
    /// recorded header: see [`ReplayRecord::headers`]); given several times under one name,
    /// the header is sent with each value.
    ///
    /// Recorded headers are sent as stored, but for a value redacted or cut, those of the
    /// connection and the body's framing (`host`, `content-length`, `transfer-encoding`, …),
    /// `user-agent`, `x-request-id` and `request-id`.
    #[must_use]
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Sends to absolute URIs on this scheme and authority (needed by HTTP clients).
    #[must_use]
    pub fn base_uri(mut self, uri: Uri) -> Self {
        self.base_uri = Some(uri);
        self
    }

    /// The text that marks a redacted value, if the redactor was configured with another.
    #[must_use]
    pub fn redaction_marker(mut self, marker: impl Into<String>) -> Self {
        self.marker = marker.into();
        self
    }

    /// Rows read per query while walking the range.
    #[must_use]
    pub fn page_size(mut self, rows: u64) -> Self {
        self.page_size = rows.max(1);
        self
    }

    /// How long a request may wait for its response's head (ready service, connection and
    /// all): past it, the record fails with a reason, and the replay goes on. A target that
    /// takes connections and never answers would otherwise hold the replay for ever.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends the requests the recorded server refused (401 or 403) too. They are skipped by
    /// default: sent with the [`header`](Self::header)s given, an operator's credentials,
    /// a request refused when it was made (an attacker's `DELETE`) could be carried out.
    #[must_use]
    pub fn include_refused(mut self, include: bool) -> Self {
        self.include_refused = include;
        self
    }

    /// The header that carried the request id (the layer's
    /// [`request_id_header`](crate::AuditLayerBuilder::request_id_header)), not sent as
    /// recorded: it would pass the replay off as the recorded request in the target's trail.
    #[must_use]
    pub fn request_id_header(mut self, name: HeaderName) -> Self {
        self.request_id_header = Some(name);
        self
    }

    /// Calls `f` with each record's outcome as soon as it is known, before the next record is
    /// sent: a replay that is interrupted (the process killed) has said what it sent. The
    /// report holds them all as well. `f` returning `ControlFlow::Break` ends the replay there
    /// ([`ReplayReport::interrupted`]): where the outcomes cannot be shown any more (the CLI's
    /// output closed), no request is sent unseen.
    ///
    /// ```
    /// use std::ops::ControlFlow;
    /// use tower_audit::store::ReplayOptions;
    ///
    /// let options = ReplayOptions::new().on_outcome(|record, outcome| {
    ///     println!("#{} {} {}: {outcome:?}", record.id, record.method, record.path);
    ///     ControlFlow::Continue(())
    /// });
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn on_outcome(
        mut self,
        f: impl Fn(&ReplayRecord, &ReplayOutcome) -> ControlFlow<()> + Send + Sync + 'static,
    ) -> Self {
        self.on_outcome = Some(OnOutcome(std::sync::Arc::new(f)));
        self
    }
}

/// What happened to one record.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplayOutcome {
    /// Sent; the target answered `status` (the recorded status is beside it).
    Sent {
        /// The target's answer.
        status: StatusCode,
        /// The status recorded for the original request.
        recorded: Option<i32>,
    },
    /// Would be sent (dry run).
    WouldSend,
    /// Not sent, because it cannot be replayed faithfully.
    Skipped {
        /// Why.
        reason: String,
    },
    /// Sending failed: the request could not be built or the service failed.
    Failed {
        /// What went wrong.
        error: String,
    },
}

impl ReplayOutcome {
    /// A failure, or an answer whose status differs from the recorded one.
    pub fn is_error(&self) -> bool {
        match self {
            ReplayOutcome::Failed { .. } => true,
            ReplayOutcome::Sent { status, recorded } => {
                recorded.is_some_and(|r| i32::from(status.as_u16()) != r)
            }
            ReplayOutcome::WouldSend | ReplayOutcome::Skipped { .. } => false,
        }
    }
}

/// The outcome of every record, in replay order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplayReport {
    /// One entry per record considered.
    pub entries: Vec<(ReplayRecord, ReplayOutcome)>,
    /// Whether [`ReplayOptions::stop_on_error`] ended the replay early.
    pub stopped_early: bool,
    /// Whether [`ReplayOptions::on_outcome`]'s function ended the replay early.
    pub interrupted: bool,
}

impl ReplayReport {
    /// Records sent.
    pub fn sent(&self) -> usize {
        self.count(|o| matches!(o, ReplayOutcome::Sent { .. }))
    }

    /// Records skipped.
    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, ReplayOutcome::Skipped { .. }))
    }

    /// Records that failed or got a different status (see [`ReplayOutcome::is_error`]).
    pub fn errors(&self) -> usize {
        self.count(ReplayOutcome::is_error)
    }

    fn count(&self, which: impl Fn(&ReplayOutcome) -> bool) -> usize {
        self.entries.iter().filter(|(_, o)| which(o)).count()
    }
}

/// Replays the state-changing requests (see [`REPLAYED_METHODS`]) matching `filter`, oldest
/// first, through `service`.
///
/// The methods of `filter` narrow the replay: with [`AuditFilter::method`]`("DELETE")` only the
/// recorded `DELETE`s are sent, and a filter that names only other methods (`GET`) sends
/// nothing. Methods are compared in any case.
///
/// Records whose stored body or query is not what the client sent — redacted, truncated,
/// summarized (multipart), decoded, or stored as a description — are skipped with the reason,
/// never sent altered (see [`ReplayRecord::unreplayable`]). So are records whose path or query
/// was stored cut (` …[truncated, N bytes total]`) or redacted, whose body lost its recorded
/// `content-type` (headers not captured, or the value cut or redacted), and gRPC calls, whose
/// messages are stored decoded or described rather than framed. A JSON body is sent as stored,
/// without the client's whitespace between tokens. The `content-type` is the recorded one when
/// `request_headers` has it, else `application/json` for a body that parses as JSON. Response
/// bodies are dropped unread.
///
/// A row holding a value its column cannot hold (SQLite checks no types; no writer stores one)
/// is skipped too, the reason naming the row, column and value; its record holds placeholders
/// for the values that do not read.
///
/// # Example
///
/// ```no_run
/// # async fn run(db: sea_orm::DatabaseConnection, app: axum::Router) -> Result<(), tower_audit::Error> {
/// use tower_audit::store::{self, AuditFilter, ReplayOptions};
///
/// let since = chrono::Utc::now() - chrono::Duration::hours(1);
/// let options = ReplayOptions::new()
///     .header(http::header::AUTHORIZATION, http::HeaderValue::from_static("Bearer t0ken"))
///     .rate(50.0);
/// let report = store::replay(&db, &AuditFilter::new().since(since), app, options).await?;
/// println!("{} sent, {} skipped", report.sent(), report.skipped());
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`Error::Database`] when reading the records fails. Failures of the service (any error that
/// converts into a boxed error, as tower's do) are reported per record, with their sources.
pub async fn replay<C, S, B>(
    db: &C,
    filter: &AuditFilter,
    mut service: S,
    options: ReplayOptions,
) -> Result<ReplayReport, Error>
where
    C: ConnectionTrait,
    S: Service<Request<Full<Bytes>>, Response = http::Response<B>>,
    S::Error: Into<BoxError>,
{
    let mut report = ReplayReport::default();
    let Some(filter) = filter.within_methods(&REPLAYED_METHODS) else {
        // The filter asks only for methods a replay never sends.
        return Ok(report);
    };
    let mut ticker = options.interval.map(|period| {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval
    });
    // The rows stored when the replay starts: a target that audits into the same table adds
    // a row for each request sent, which a later page would read and send again, for ever.
    let Some(last) = last_id(db).await? else {
        return Ok(report);
    };
    let filter = filter.up_to_id(last);
    let request = PageRequest::oldest_first(options.page_size);
    let mut after = None;
    loop {
        let (rows, next) = stored_page(db, &filter, request, after).await?;
        for row in rows {
            let (record, unreadable) = match row {
                Stored::Row(row) => (ReplayRecord::from(row), None),
                // What was sent cannot be known from it: skipped, as a redacted body is.
                Stored::Unreadable(row) => {
                    let reason = row.error(None).to_string();
                    (ReplayRecord::from(row.model), Some(reason))
                }
            };
            let refused = record
                .status
                .filter(|status| !options.include_refused && matches!(status, 401 | 403))
                .map(|status| {
                    format!(
                        "refused when recorded ({status}); sent with the replay's headers it \
                         could be carried out (include_refused to send it)"
                    )
                });
            let outcome = if let Some(reason) = unreadable
                .or_else(|| record.unreplayable(&options.marker))
                .or(refused)
            {
                ReplayOutcome::Skipped { reason }
            } else if options.dry_run {
                ReplayOutcome::WouldSend
            } else {
                if let Some(ticker) = &mut ticker {
                    ticker.tick().await;
                }
                send(&mut service, &record, &options).await
            };
            let stop = options.stop_on_error && outcome.is_error();
            let interrupted = options
                .on_outcome
                .as_ref()
                .is_some_and(|OnOutcome(f)| f(&record, &outcome).is_break());
            report.entries.push((record, outcome));
            if stop || interrupted {
                report.stopped_early = stop;
                report.interrupted = interrupted;
                return Ok(report);
            }
        }
        match next {
            Some(next) => after = Some(next),
            None => return Ok(report),
        }
    }
}

/// The largest id stored; `None` in an empty table.
async fn last_id<C: ConnectionTrait>(db: &C) -> Result<Option<i64>, Error> {
    use sea_orm::{ColumnTrait, EntityTrait, QuerySelect};

    use crate::entity::audit_log::{Column, Entity};
    let last = Entity::find()
        .select_only()
        .column_as(Column::Id.max(), "last")
        .into_tuple::<Option<i64>>()
        .one(db)
        .await?;
    Ok(last.flatten())
}

async fn send<S, B>(
    service: &mut S,
    record: &ReplayRecord,
    options: &ReplayOptions,
) -> ReplayOutcome
where
    S: Service<Request<Full<Bytes>>, Response = http::Response<B>>,
    S::Error: Into<BoxError>,
{
    let request = match build_request(record, options) {
        Ok(request) => request,
        Err(error) => return ReplayOutcome::Failed { error },
    };
    match tokio::time::timeout(options.timeout, call(service, request, record)).await {
        Ok(outcome) => outcome,
        Err(_) => ReplayOutcome::Failed {
            error: format!("no response within {:?}", options.timeout),
        },
    }
}

async fn call<S, B>(
    service: &mut S,
    request: Request<Full<Bytes>>,
    record: &ReplayRecord,
) -> ReplayOutcome
where
    S: Service<Request<Full<Bytes>>, Response = http::Response<B>>,
    S::Error: Into<BoxError>,
{
    if let Err(error) = std::future::poll_fn(|cx| service.poll_ready(cx)).await {
        return ReplayOutcome::Failed {
            error: chain(error.into()),
        };
    }
    match service.call(request).await {
        Ok(response) => ReplayOutcome::Sent {
            status: response.status(),
            recorded: record.status,
        },
        Err(error) => ReplayOutcome::Failed {
            error: chain(error.into()),
        },
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An error and its sources on one line: clients often say only "client error (Connect)".
fn chain(error: BoxError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn build_request(
    record: &ReplayRecord,
    options: &ReplayOptions,
) -> Result<Request<Full<Bytes>>, String> {
    let mut path_and_query = record.path.clone();
    if let Some(query) = record.query.as_deref().filter(|q| !q.is_empty()) {
        path_and_query.push('?');
        path_and_query.push_str(query);
    }
    let uri = match &options.base_uri {
        Some(base) => {
            let mut parts = base.clone().into_parts();
            parts.path_and_query = Some(path_and_query.parse().map_err(|e| format!("{e}"))?);
            Uri::from_parts(parts).map_err(|e| e.to_string())?
        }
        None => path_and_query.parse().map_err(|e| format!("{e}"))?,
    };
    let method = Method::from_bytes(record.method.as_bytes()).map_err(|e| e.to_string())?;
    let body = record.body.clone().unwrap_or_default();
    let mut builder = Request::builder().method(method).uri(uri);
    let content_type = record.content_type.clone().or_else(|| {
        serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .map(|_| "application/json".to_owned())
    });
    if let Some(content_type) = content_type {
        builder = builder.header(CONTENT_TYPE, content_type);
    }
    for (name, value) in &record.headers {
        if options
            .request_id_header
            .as_ref()
            .is_some_and(|id| id.as_str().eq_ignore_ascii_case(name))
        {
            continue;
        }
        if let Some((name, value)) = replayed_header(name, value, &options.marker) {
            builder = builder.header(name, value);
        }
    }
    let mut request = builder
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    // A header given replaces the recorded one of its name (`HeaderName` is lower case, so
    // any case): two `content-type`s leave the server to pick one.
    let headers = request.headers_mut();
    let mut given = Vec::new();
    for (name, value) in &options.headers {
        if given.contains(&name) {
            headers.append(name, value.clone());
        } else {
            headers.insert(name, value.clone());
            given.push(name);
        }
    }
    Ok(request)
}

/// Headers a replay never sends as recorded: those of the connection and the body's framing,
/// which the client sets for the request it sends, and the agent, the request ids, the trace
/// context and (in [`CLIENT_ADDRESS_HEADERS`](crate::client_ip::CLIENT_ADDRESS_HEADERS)) what
/// proxies and CDNs say of the client, which would pass the replay off as the recorded request
/// (its client, its id) in the target's own trail.
const NOT_REPLAYED: [&str; 24] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "user-agent",
    "x-request-id",
    "request-id",
    "x-correlation-id",
    "correlation-id",
    "x-amzn-trace-id",
    "x-cloud-trace-context",
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
];

/// A recorded header as a replay sends it: `None` for one it does not send (see
/// [`NOT_REPLAYED`]), a value redacted (holding `marker`) or cut, or one that is not a valid
/// header (a value the writer stored lossily).
fn replayed_header(name: &str, value: &str, marker: &str) -> Option<(HeaderName, HeaderValue)> {
    if NOT_REPLAYED
        .iter()
        .chain(&crate::client_ip::CLIENT_ADDRESS_HEADERS)
        .any(|n| n.eq_ignore_ascii_case(name))
        || value.contains(marker)
        || is_cut(value)
    {
        return None;
    }
    let name = HeaderName::try_from(name).ok()?;
    let value = HeaderValue::try_from(value).ok()?;
    Some((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(body: Option<&str>) -> ReplayRecord {
        ReplayRecord {
            id: 1,
            request_id: None,
            occurred_at: Utc::now(),
            method: "POST".into(),
            path: "/orders".into(),
            query: None,
            body: body.map(str::to_owned),
            body_truncated: false,
            body_altered: false,
            target_altered: false,
            body_bytes: body.map_or(0, |b| b.len() as i64),
            content_type: None,
            headers: Vec::new(),
            headers_not_captured: None,
            grpc: false,
            status: Some(201),
        }
    }

    #[test]
    fn altered_bodies_are_not_replayable() {
        assert_eq!(
            record(Some(r#"{"qty":2}"#)).unreplayable("[REDACTED]"),
            None
        );
        assert!(
            record(Some(r#"{"password":"[REDACTED]"}"#))
                .unreplayable("[REDACTED]")
                .is_some()
        );
        assert!(
            record(Some("[binary image/png, 10 bytes]"))
                .unreplayable("[REDACTED]")
                .is_some()
        );
        let mut cut = record(Some("{\"a\":"));
        cut.body_truncated = true;
        cut.body_bytes = 0;
        // Not "0 bytes sent": the client may have sent the whole body, unread.
        assert_eq!(
            cut.unreplayable("[REDACTED]").as_deref(),
            Some("request body was not read to its end (0 bytes read)")
        );
        // Nothing in the text gives these away: the writer's note, or the content type, does.
        let mut noted = record(Some(r#"{"password":"<gone>"}"#));
        noted.body_altered = true;
        assert!(noted.unreplayable("[REDACTED]").is_some());
        let mut parts = record(Some(r#"[{"name":"title","size":7,"value":"holiday"}]"#));
        parts.content_type = Some("Multipart/form-data; boundary=b".into());
        assert!(parts.unreplayable("[REDACTED]").is_some());
    }

    /// A header given replaces the recorded one of the same name, whatever its case: a
    /// `content-type` given was sent beside the recorded one. Given twice, both go.
    #[test]
    fn a_header_given_replaces_the_recorded_one() {
        let mut recorded = record(Some("a,b"));
        recorded.content_type = Some("text/plain".into());
        let options = ReplayOptions::new()
            .header(
                HeaderName::from_static("content-type"),
                HeaderValue::from_static("text/csv"),
            )
            .header(
                HeaderName::from_static("x-run"),
                HeaderValue::from_static("1"),
            )
            .header(
                HeaderName::from_static("x-run"),
                HeaderValue::from_static("2"),
            );
        let request = build_request(&recorded, &options).unwrap_or_default();
        let types: Vec<_> = request.headers().get_all(CONTENT_TYPE).iter().collect();
        assert_eq!(types, ["text/csv"]);
        let runs: Vec<_> = request.headers().get_all("x-run").iter().collect();
        assert_eq!(runs, ["1", "2"]);
        // The parser of `--header` makes names lower case: `Content-Type` is the same name.
        assert_eq!(
            HeaderName::try_from("Content-Type").ok(),
            Some(CONTENT_TYPE)
        );
    }

    /// Recorded headers are sent, but for those of the connection, the agent and request id,
    /// and values redacted or cut; a header given replaces them.
    #[test]
    fn recorded_headers_are_sent_but_redacted_cut_and_connection_ones() {
        let mut recorded = record(Some(r#"{"qty":2}"#));
        for (name, value) in [
            ("idempotency-key", "k-123"),
            ("x-tenant-id", "t1"),
            ("x-tenant-id", "t2"),
            ("authorization", "[REDACTED]"),
            ("if-match", "\"v1\" …[truncated, 9000 bytes total]"),
            ("host", "old.example.com"),
            ("content-length", "9"),
            ("user-agent", "curl/8"),
            ("x-run", "recorded"),
        ] {
            recorded.headers.push((name.into(), value.into()));
        }
        let options = ReplayOptions::new().header(
            HeaderName::from_static("x-run"),
            HeaderValue::from_static("given"),
        );
        let request = build_request(&recorded, &options).unwrap_or_default();
        let sent: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap_or_default()))
            .collect();
        assert_eq!(
            sent,
            [
                ("content-type", "application/json"),
                ("idempotency-key", "k-123"),
                ("x-tenant-id", "t1"),
                ("x-tenant-id", "t2"),
                ("x-run", "given"),
            ]
        );
    }

    #[test]
    fn json_bodies_get_a_content_type() {
        let request = build_request(&record(Some(r#"{"qty":2}"#)), &ReplayOptions::new());
        let request = request.unwrap_or_default();
        assert_eq!(request.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(request.uri(), "/orders");
    }
}
