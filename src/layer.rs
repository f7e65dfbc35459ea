//! [`AuditLayer`] and its builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use http::request::Parts;
use sea_orm::DatabaseConnection;
use tokio::sync::oneshot;
use tower_layer::Layer;

use crate::Error;
use crate::Identity;
use crate::client_ip::TrustedProxies;
use crate::sanitize::Redactor;
use crate::service::Audit;
use crate::writer::{
    AuditWriter, Channel, ChannelConfig, FAR_FUTURE, FsyncPolicy, InsertMode, Intake, Journal,
    JournalConfig, Outage, Overflow, Sink, Worker, WriterConfig, WriterGuard,
};

/// A [`Layer`] that records every request into the `audit_log` table.
///
/// Build it with [`AuditLayer::builder`], which also starts the background writer and hands back
/// its [`WriterGuard`]. Cloning the layer is cheap; all clones feed the same writer.
///
/// # Where it goes
///
/// Put it **outside** the layers whose effect you want recorded (authentication that rejects,
/// timeouts, rate limits, panics caught by `CatchPanicLayer`) and **outside** authentication
/// middleware that sets the user through [`AuditContext`](crate::AuditContext), so that the
/// context already exists when they run. With axum, `Router::layer` applies it after routing,
/// which is what makes the matched route template available.
#[derive(Clone)]
pub struct AuditLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for AuditLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLayer")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for AuditLayer {
    type Service = Audit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Audit::new(inner, self.shared.clone())
    }
}

impl AuditLayer {
    /// Starts configuring a layer that writes into `db`.
    ///
    /// `db` must hold the `audit_log` table: run [`migrate`](crate::migrate) first.
    pub fn builder(db: DatabaseConnection) -> AuditLayerBuilder {
        AuditLayerBuilder {
            db,
            config: Config::default(),
            writer: WriterConfig::default(),
            journal: JournalSettings::default(),
        }
    }

    /// Starts configuring a layer for a gRPC server (like tower-http's `new_for_grpc`).
    ///
    /// On top of the [defaults](AuditLayerBuilder) it skips the health and reflection services
    /// (`/grpc.health.v1.Health/*`, `/grpc.reflection.v1.ServerReflection/*`,
    /// `/grpc.reflection.v1alpha.ServerReflection/*`) and records the `authorization` metadata,
    /// redacted, in `request_headers`. Every gRPC request is recorded with its `grpc_status`,
    /// `package.Service/Method` as the route, and its message counts each way.
    ///
    /// ```no_run
    /// use tower_audit::AuditLayer;
    ///
    /// # async fn run() -> Result<(), tower_audit::Error> {
    /// let db = tower_audit::connect("sqlite://audit.db?mode=rwc").await?;
    /// tower_audit::migrate(&db).await?;
    /// let (audit, guard) = AuditLayer::builder_for_grpc(db).build()?;
    /// // tonic::transport::Server::builder().layer(audit).add_service(..).serve(addr).await?;
    /// # let _ = (audit, guard);
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder_for_grpc(db: DatabaseConnection) -> AuditLayerBuilder {
        Self::builder(db)
            .skip_path_prefix("/grpc.health.v1.Health")
            .skip_path_prefix("/grpc.reflection.v1.ServerReflection")
            .skip_path_prefix("/grpc.reflection.v1alpha.ServerReflection")
            .record_headers([http::header::AUTHORIZATION])
    }
}

/// What the layer shares with every service and in-flight record.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) intake: Intake,
}

/// Per-request settings; one `Arc` of them serves every request.
pub(crate) struct Config {
    pub(crate) max_body_bytes: usize,
    pub(crate) body_read_timeout: Duration,
    pub(crate) skip_paths: Vec<String>,
    pub(crate) skip_prefixes: Vec<String>,
    pub(crate) skip_if: Option<SkipFn>,
    pub(crate) request_id_header: HeaderName,
    pub(crate) record_headers: Vec<HeaderName>,
    pub(crate) trusted_proxies: TrustedProxies,
    pub(crate) identify: Option<IdentifyFn>,
    pub(crate) echo_request_id: bool,
    pub(crate) context_on_response: bool,
    pub(crate) keep_authorization: bool,
    pub(crate) overflow: Overflow,
    #[cfg(feature = "grpc-reflect")]
    pub(crate) grpc_descriptors: Option<prost_reflect::DescriptorPool>,
}

type IdentifyFn = Arc<dyn Fn(&Parts) -> Identity + Send + Sync>;
type SkipFn = Arc<dyn Fn(&Parts) -> bool + Send + Sync>;

impl Default for Config {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            body_read_timeout: Duration::from_secs(1),
            skip_paths: Vec::new(),
            skip_prefixes: Vec::new(),
            skip_if: None,
            request_id_header: HeaderName::from_static("x-request-id"),
            record_headers: Vec::new(),
            trusted_proxies: TrustedProxies::none(),
            identify: None,
            echo_request_id: false,
            context_on_response: false,
            keep_authorization: false,
            overflow: Overflow::default(),
            #[cfg(feature = "grpc-reflect")]
            grpc_descriptors: None,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("skip_paths", &self.skip_paths)
            .field("skip_prefixes", &self.skip_prefixes)
            .field(
                "skip_if",
                &self.skip_if.as_ref().map(|_| "Fn(&Parts) -> bool"),
            )
            .field("request_id_header", &self.request_id_header)
            .field("record_headers", &self.record_headers)
            .field("trusted_proxies", &self.trusted_proxies)
            .field(
                "identify",
                &self.identify.as_ref().map(|_| "Fn(&Parts) -> Identity"),
            )
            .field("echo_request_id", &self.echo_request_id)
            .field("overflow", &self.overflow)
            .finish_non_exhaustive()
    }
}

impl Config {
    pub(crate) fn skips(&self, parts: &Parts) -> bool {
        // The path is looked up (in the extensions, under axum) only when a rule needs it.
        let skips_path = || {
            let path = crate::service::client_uri(parts).path();
            self.skip_paths.iter().any(|p| p == path)
                || self.skip_prefixes.iter().any(|p| path_has_prefix(path, p))
        };
        (!(self.skip_paths.is_empty() && self.skip_prefixes.is_empty()) && skips_path())
            || self.skip_if.as_ref().is_some_and(|skip| skip(parts))
    }
}

/// Paths are compared with the request's path, which starts with `/` (or is `*`, for
/// `OPTIONS *`) and holds no query: a rule that does not start with `/` (or is empty) would never
/// match, and an empty prefix would match every path.
/// The request id is stored as sent, in a column nothing redacts, and `echo_request_id` sets
/// it on the request and the response: a header that carries a credential, or the message's
/// framing or routing, cannot be the request id.
fn check_request_id_header(name: &HeaderName, redactor: &Redactor) -> Result<(), Error> {
    use http::header;
    const FRAMING: [HeaderName; 9] = [
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::CONTENT_TYPE,
        header::CONTENT_ENCODING,
        header::HOST,
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
    ];
    if redactor.is_sensitive_header(name) {
        return Err(Error::Config(format!(
            "request_id_header({name}): a credential's header; its value would be stored \
             unredacted as the request id"
        )));
    }
    if FRAMING.contains(name) {
        return Err(Error::Config(format!(
            "request_id_header({name}): the header frames or routes the message; give the \
             request id a header of its own (x-request-id)"
        )));
    }
    Ok(())
}

fn check_paths(setting: &str, paths: &[String]) -> Result<(), Error> {
    match paths
        .iter()
        .find(|p| *p != "*" && (!p.starts_with('/') || p.contains(['?', '#'])))
    {
        Some(path) => Err(Error::Config(format!(
            "{setting}({path:?}): a path starts with '/' (or is \"*\") and holds no query or \
             fragment"
        ))),
        None => Ok(()),
    }
}

/// `/health` is a prefix of `/health` and `/health/db`, not of `/healthz`.
fn path_has_prefix(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/'),
        None => false,
    }
}

/// The most records [`AuditLayerBuilder::capacity`] takes: their slots, 112 bytes each (136
/// with `grpc-reflect`), are allocated with the layer (1.75 GiB at this bound; 2.1 GiB).
pub(crate) const MAX_CAPACITY: usize = 1 << 24;

/// The smallest journal [`AuditLayerBuilder::build`] takes: room for one record with a whole
/// body of `max_body_bytes` and its head, within 64 KiB and three times the body: a body of
/// bytes that are no UTF-8 is stored with U+FFFD, three bytes, for each (twice, as first
/// thought, one such row did not fit an empty journal, which then refused every row after it:
/// found by a probe), and a quote or backslash escaped as JSON takes two.
fn min_journal_bytes(max_body_bytes: usize) -> u64 {
    (max_body_bytes as u64)
        .saturating_mul(3)
        .saturating_add(64 << 10)
}

/// Builds an [`AuditLayer`] and starts its writer.
///
/// | setting | default | |
/// | --- | --- | --- |
/// | [`max_body_bytes`](Self::max_body_bytes) | 64 KiB | request body bytes kept per request; at most `queue_body_bytes` |
/// | [`body_read_timeout`](Self::body_read_timeout) | 1 s | wait for a small JSON/form body the handler may never read |
/// | [`skip_path`](Self::skip_path), [`skip_path_prefix`](Self::skip_path_prefix), [`skip_if`](Self::skip_if) | nothing skipped | requests not recorded; a path must start with `/` (or be `*`, for `OPTIONS *`) and hold no `?` or `#` |
/// | [`request_id_header`](Self::request_id_header) | `x-request-id` | reused when present (cut to 128 bytes, invalid UTF-8 replaced), else a UUID v7 (also for an empty one) |
/// | [`record_headers`](Self::record_headers) | none | request headers stored (redacted, each value cut to 4 KiB) in `request_headers` |
/// | [`trusted_proxies`](Self::trusted_proxies) | none | proxies whose forwarding headers are believed |
/// | [`anonymize_ip`](Self::anonymize_ip) | off | store client and peer addresses cut to /24 (IPv4) or /48 (IPv6; an IPv4 inside one, mapped or 6to4, to its /24) |
/// | [`identify`](Self::identify) | none | user and tenant from the request head |
/// | `jwt` (feature `jwt`) | none | user and tenant from a verified bearer token |
/// | [`context_on_response`](Self::context_on_response) | off | the `AuditContext` in response extensions too |
/// | [`echo_request_id`](Self::echo_request_id) | off | generate the request id on the request path and set it on the request and the response; one the row could not store as sent is replaced |
/// | [`redactor`](Self::redactor) | [`Redactor::default`] | sanitizes bodies, queries, headers |
/// | `grpc_descriptors` (feature `grpc-reflect`) | none | gRPC request messages stored as redacted JSON rather than described by size |
/// | [`capacity`](Self::capacity) | 32,768 records | the writer's queue: 1 to 16,777,216 (2<sup>24</sup>) |
/// | [`queue_body_bytes`](Self::queue_body_bytes) | 64 MiB | request body bytes the queued records keep in all, with the copies of long request heads; past it a record is queued without its body, or its head cut |
/// | [`overflow`](Self::overflow) | `Spill` with a journal, else `DropNewest` | what a full queue does (see [`Overflow`]) |
/// | [`journal`](Self::journal) | none | local file that keeps records while the database is away |
/// | [`journal_max_bytes`](Self::journal_max_bytes) | 1 GiB | the journal's bound, at least 64 KiB and three times `max_body_bytes` (256 KiB with the default bodies); rows past it take the queue |
/// | [`journal_fsync`](Self::journal_fsync) | [`FsyncPolicy::Interval`] 1 s | when journal appends are forced to disk |
/// | [`insert_mode`](Self::insert_mode) | [`InsertMode::Fast`] | `COPY` on PostgreSQL, statements prepared once elsewhere; or SeaORM `insert_many` per batch |
/// | [`insert_timeout`](Self::insert_timeout) | 30 s | longest a database call of the writer's may take before it counts as failed (a stalled connection); not 0 |
/// | `integrity` (feature `integrity`) | off | keyed hash chain over the rows, checkpoints |
/// | `writer_name` (feature `metrics`) | none | the `writer` label of its metrics; unnamed writers' metrics are unlabelled, counted together |
/// | [`outage_alert`](Self::outage_alert) | 30 s | how long the database may fail before `tracing::error!` (then once per period); a missing table is logged at once |
/// | [`batch_size`](Self::batch_size) | 512 | records per transaction, at least 1, at most `capacity` (under a backlog up to 8,192, or four batches) |
/// | [`flush_interval`](Self::flush_interval) | 100 ms | longest a record waits for a batch to fill; not 0 |
/// | [`max_retry_backoff`](Self::max_retry_backoff) | 10 s | longest pause between retries of a failing batch; not 0 |
///
/// Memory: a queued record holds its request's state (under 1 KiB, with up to 128 bytes of its
/// head's text inline), up to 1 KiB more of its head's text (2 KiB more of recorded header
/// copies, with [`record_headers`](Self::record_headers)) and its capped body. The bodies, and
/// the head copies past those sizes, of all the records queued (and of the requests in
/// flight, whose head is counted when it is copied) stay within `queue_body_bytes`. So the
/// queue holds at most `capacity × 2 KiB + queue_body_bytes` (128 MiB by default; `capacity ×
/// 4 KiB + queue_body_bytes`, 192 MiB, with recorded headers), however long the heads clients
/// send (hyper takes up to about 400 KiB). The writer
/// holds up to two transactions' worth besides (the one being inserted and the next being
/// converted, each taken from the queue at once), so at most three times that in all, plus a
/// copy of those two batches' values encoded for the database and the rows written last until
/// the next conversion frees them. While the database is away, records go to the journal, so memory stays within those
/// bounds and disk within `journal_max_bytes`.
///
/// [`build`](Self::build) refuses a setting that cannot work with [`Error::Config`]: a
/// `capacity` of 0 or past 2<sup>24</sup> (its slots are allocated at once), a `batch_size` of
/// 0, a `flush_interval` of 0 (the writer would never pause), an `insert_timeout` or
/// `max_retry_backoff` of 0 (every insert would fail, or be retried at once), a
/// `journal_max_bytes` too small for one record with a whole body (under 64 KiB and twice
/// `max_body_bytes`), a skip
/// path that is empty, lacks its leading `/` or holds a query (it would match nothing, or, as an
/// empty prefix, everything), a `request_id_header` that carries a credential by the redactor's
/// rules (`authorization`, `x-api-key`, …: the id is stored unredacted) or frames or routes the
/// message (`content-length`, `host`, …). Durations past thirty years (`Duration::MAX`) count as
/// thirty years.
#[must_use]
pub struct AuditLayerBuilder {
    db: DatabaseConnection,
    config: Config,
    writer: WriterConfig,
    journal: JournalSettings,
}

/// The journal's settings as the builder gathers them: its bound and fsync policy may be set
/// before or after its path, and count only once a path is given.
#[derive(Debug)]
struct JournalSettings {
    path: Option<std::path::PathBuf>,
    max_bytes: u64,
    fsync: FsyncPolicy,
}

impl Default for JournalSettings {
    fn default() -> Self {
        Self {
            path: None,
            max_bytes: 1 << 30,
            fsync: FsyncPolicy::default(),
        }
    }
}

impl JournalSettings {
    fn config(self) -> Option<JournalConfig> {
        Some(JournalConfig {
            path: self.path?,
            max_bytes: self.max_bytes,
            fsync: self.fsync,
        })
    }
}

impl fmt::Debug for AuditLayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLayerBuilder")
            .field("config", &self.config)
            .field("writer", &self.writer)
            .field("journal", &self.journal)
            .finish_non_exhaustive()
    }
}

impl AuditLayerBuilder {
    /// Request body bytes kept per request; the rest is counted, not stored. At most
    /// [`queue_body_bytes`](Self::queue_body_bytes): a body past the queue's whole budget could
    /// never be queued, so a larger setting is cut to it.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.config.max_body_bytes = bytes;
        self
    }

    /// How long the layer waits for a JSON or form body of known, small length before calling the
    /// service, so that the body is recorded even when the handler rejects the request unread.
    /// When the wait runs out the request proceeds and the body streams to the handler as usual.
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        self.config.body_read_timeout = timeout;
        self
    }

    /// Does not record requests whose path is exactly `path`: the whole path the client sent,
    /// also on a router nested in axum, which sees it without its prefix. [`build`](Self::build)
    /// refuses a path that does not start with `/` (but `*`, for `OPTIONS *`) or holds a `?` or
    /// `#`: it would never match.
    pub fn skip_path(mut self, path: impl Into<String>) -> Self {
        self.config.skip_paths.push(path.into());
        self
    }

    /// Does not record requests under `prefix` (`/internal` covers `/internal` and `/internal/x`,
    /// not `/internals`): the whole path the client sent, as for [`skip_path`](Self::skip_path).
    /// `/` skips every request; an empty prefix is refused, as a path without its leading `/`.
    pub fn skip_path_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.skip_prefixes.push(prefix.into());
        self
    }

    /// Does not record requests for which `skip` returns true. It runs on every request, so keep it
    /// cheap. It sees the request as the layer gets it: on a router nested in axum, `parts.uri`
    /// without the nest's prefix; the client's whole URI is in the extensions as axum's
    /// `OriginalUri`.
    pub fn skip_if<F>(mut self, skip: F) -> Self
    where
        F: Fn(&Parts) -> bool + Send + Sync + 'static,
    {
        self.config.skip_if = Some(Arc::new(skip));
        self
    }

    /// The header that carries the request id (compatible with tower-http's `SetRequestIdLayer`).
    pub fn request_id_header(mut self, name: HeaderName) -> Self {
        self.config.request_id_header = name;
        self
    }

    /// Request headers to store, redacted, in the `request_headers` column; each value is cut to
    /// 4 KiB (in the writer, after it is redacted whole) with a ` …[truncated, N bytes total]`
    /// note. Copies past about 2 KiB per request count against
    /// [`queue_body_bytes`](Self::queue_body_bytes), and are left out when they do not fit.
    /// A name already listed (by a preset such as [`AuditLayer::builder_for_grpc`]) is kept once.
    pub fn record_headers<I: IntoIterator<Item = HeaderName>>(mut self, names: I) -> Self {
        for name in names {
            if !self.config.record_headers.contains(&name) {
                self.config.record_headers.push(name);
            }
        }
        self
    }

    /// Proxies trusted to report the client address in `Forwarded` / `X-Forwarded-For`.
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.config.trusted_proxies = proxies;
        self
    }

    /// Stores client and peer addresses anonymized: IPv4 cut to /24, IPv6 to /48, and an IPv4
    /// address inside an IPv6 one (IPv4-mapped, 6to4's `2002::/16`) to its /24.
    pub fn anonymize_ip(mut self, anonymize: bool) -> Self {
        self.writer.rows.anonymize_ip = anonymize;
        self
    }

    /// Finds the user and tenant in the request head when the request arrives (a header set by
    /// a gateway, claims an outer auth layer put into the extensions). It runs on every request,
    /// so keep it cheap; [`AuditContext`](crate::AuditContext) setters made later win.
    pub fn identify<F>(mut self, identify: F) -> Self
    where
        F: Fn(&Parts) -> Identity + Send + Sync + 'static,
    {
        self.config.identify = Some(Arc::new(identify));
        self
    }

    /// Takes the user (and tenant) from a bearer JWT, verified in the writer with `jwt`'s key.
    /// Used only when neither [`identify`](Self::identify) nor an
    /// [`AuditContext`](crate::AuditContext) named the user. [`build`](Self::build) refuses an
    /// HMAC secret shorter than its algorithm's hash (32 bytes for HS256).
    #[cfg(feature = "jwt")]
    pub fn jwt(mut self, jwt: crate::JwtIdentity) -> Self {
        self.config.keep_authorization = true;
        self.writer.rows.jwt = Some(Arc::new(jwt));
        self
    }

    /// When the request carries no request id, generates one (UUID v7) on the request path and
    /// sets it on the request, for the handler, and on the response, for the client; a request id
    /// the client sent is echoed on the response. An id the row could not store as sent (empty,
    /// longer than 128 bytes, or not UTF-8) is replaced by a generated one, on the request too, so
    /// that the id the client gets back finds its row. An id the service sets on the response
    /// itself is kept (as tower-http's `PropagateRequestId` keeps it); the row then notes it
    /// under `extra.response_request_id`. Off by default: the id is then generated in the
    /// writer, and only the row carries it.
    pub fn echo_request_id(mut self, echo: bool) -> Self {
        self.config.echo_request_id = echo;
        self
    }

    /// Decodes the captured request messages of gRPC calls into JSON with `pool`, then redacts
    /// them like a JSON body (so a `password` field is `[REDACTED]`).
    ///
    /// The input type is looked up from the route, `package.Service/Method`. Only whole messages
    /// within the capture cap are decoded; those compressed with `gzip` or `deflate` (the
    /// request's `grpc-encoding`) are inflated first, to the redactor's
    /// [`max_decoded_bytes`](crate::sanitize::RedactorBuilder::max_decoded_bytes) for all of a
    /// request's messages together. A unary request is stored as one JSON object, a stream as an
    /// array. When a call cannot be decoded (unknown method, malformed messages) its body is
    /// described by size as without descriptors; a compressed message that cannot be read
    /// (another encoding, corrupt, past the limit) ends the decoding, with the reason stored.
    /// Decoding happens in the writer, off the request path.
    #[cfg(feature = "grpc-reflect")]
    pub fn grpc_descriptors(mut self, pool: prost_reflect::DescriptorPool) -> Self {
        self.config.grpc_descriptors = Some(pool);
        self
    }

    /// Also puts the request's [`AuditContext`](crate::AuditContext) into the response's
    /// extensions, for outer layers (and services that cannot reach the request) to enrich the
    /// record until the response body ends. Off by default: it costs an allocation per response.
    pub fn context_on_response(mut self, enable: bool) -> Self {
        self.config.context_on_response = enable;
        self
    }

    /// The sanitizer for bodies, queries and headers.
    pub fn redactor(mut self, redactor: Redactor) -> Self {
        self.writer.rows.redactor = redactor;
        self
    }

    /// Records the writer's queue holds.
    ///
    /// The queue absorbs the writer's pauses: SQLite's WAL checkpoint holds the writer for
    /// tens of milliseconds, hundreds on a slow disk, and at 40,000 requests a second a queue of
    /// 8,192 records (the default before 2026-12-05) filled during them and dropped 0.9–1.8% of
    /// the records under `DropNewest`, where 32,768 dropped none (one core, the `load` bench).
    /// A queued record costs its slot (112 bytes, 136 with `grpc-reflect`, allocated with the
    /// layer) and its request's state (about 720 bytes); what its body keeps is bounded apart, by
    /// [`queue_body_bytes`](Self::queue_body_bytes).
    ///
    /// From 1 to 16,777,216 (2<sup>24</sup>, 1.75 GiB of slots, 2.1 GiB with `grpc-reflect`):
    /// [`build`](Self::build) refuses 0, which would drop every record, and more, which could
    /// not be allocated.
    pub fn capacity(mut self, records: usize) -> Self {
        self.writer.capacity = records;
        self
    }

    /// Bytes of request bodies the queued records may keep in all (64 MiB by default), with the
    /// copies of long request heads. A body's copy counts the memory it holds: it grows by
    /// doubling, never past `max_body_bytes`.
    ///
    /// A record finished while the queue's records already keep this much lets go of its body
    /// and is queued without it: its row is written with the body's size and
    /// `[body not captured, N bytes]` in `request_body`, and
    /// [`WriterStats::bodies_shed`](crate::WriterStats::bodies_shed) counts it. No record is
    /// dropped for it. With this bound the queue's memory no longer grows with
    /// `capacity × max_body_bytes`: a burst of large bodies costs bodies, not records or memory.
    ///
    /// A request's head counts too, when it arrives: its path, query, request id, user agent
    /// and kept header values past 1 KiB in all, and its recorded header copies past about
    /// 2 KiB, until the writer takes its record. A head that does not fit is cut: each of those
    /// parts keeps its first 128 bytes, and `path`, `query` and `user_agent` end in
    /// ` …[truncated, N bytes total]` (a cut path at its last whole `/`, a cut query without its
    /// last value's cut word, as neither can be checked for secrets whole); the recorded headers
    /// are left out, and `request_headers` holds the JSON string
    /// `"[headers not captured, N bytes]"`. A cut token is not verified (`jwt`).
    /// [`WriterStats::heads_cut`](crate::WriterStats::heads_cut) counts these requests, which
    /// keep their row.
    pub fn queue_body_bytes(mut self, bytes: usize) -> Self {
        self.writer.queue_body_bytes = bytes;
        self
    }

    /// What the request path does when the queue is full.
    pub fn overflow(mut self, policy: Overflow) -> Self {
        self.writer.overflow = Some(policy);
        self
    }

    /// Records written per transaction: the writer inserts once this many are queued, or once
    /// the [`flush_interval`](Self::flush_interval) has passed. When more are queued (a backlog),
    /// one transaction takes up to 8,192 records or four batches, whichever is more, but no
    /// more than the queue's capacity: each commit waits for the disk, so fewer and larger
    /// transactions catch up faster.
    ///
    /// [`build`](Self::build) refuses 0; a batch larger than the [`capacity`](Self::capacity)
    /// could never fill, and is cut to it.
    pub fn batch_size(mut self, records: usize) -> Self {
        self.writer.batch_size = records;
        self
    }

    /// Longest time a record waits in the queue for its batch to fill. Not 0, which would keep
    /// the writer awake without pause ([`build`](Self::build) refuses it): to write every record
    /// as soon as it is queued, use `batch_size(1)`. Past thirty years, thirty years.
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.writer.flush_interval = interval;
        self
    }

    /// Keeps records in an append-only journal at `path` while the database is away (and, under
    /// [`Overflow::Spill`], when the queue is full), and replays them in order once it is back —
    /// also after a crash or restart, before anything else. See the [`writer`](crate#the-writer)
    /// docs.
    ///
    /// One writer per journal: the writer holds a lock on the file, and building a second
    /// layer on a journal that a live writer holds (in this process or another) fails with
    /// [`Error::Journal`](crate::Error::Journal).
    ///
    /// [`build`](Self::build) reads a journal left from before (an outage, a crash) once through
    /// on the calling thread, to check its frames and cut a torn last one: about 0.3 s a GiB
    /// from the page cache on the machine of the crate's benchmarks, more from a cold disk.
    /// The journal is at most [`journal_max_bytes`](Self::journal_max_bytes).
    pub fn journal(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.journal.path = Some(path.into());
        self
    }

    /// The journal's size bound (default 1 GiB), on the file, replayed rows included (it is cut
    /// once replay reaches its end). Records past it take the queue, under the
    /// [`overflow`](Self::overflow) policy, and wait there for the database (tried within a
    /// second of each failure while the journal is full); past the queue's
    /// [`capacity`](Self::capacity) they are dropped and counted (or, under `Block` and
    /// `Reject`, waited for or refused). Once the database takes rows again, new records are
    /// queued and written beside the replay rather than journaled, so a journal an outage
    /// filled does not turn them away. Takes effect with
    /// [`journal`](Self::journal), before or after it. [`build`](Self::build) refuses a bound
    /// that could not hold one record with a whole body: under 64 KiB and three times
    /// [`max_body_bytes`](Self::max_body_bytes) (256 KiB with the default 64 KiB bodies; a body
    /// that is no UTF-8 is stored with three bytes for each of its bytes).
    pub fn journal_max_bytes(mut self, bytes: u64) -> Self {
        self.journal.max_bytes = bytes;
        self
    }

    /// When journal appends are forced to disk (default: within a second of an append, by the
    /// writer, off the request path). Appended rows survive the process being killed at once;
    /// `fsync` makes them survive a power loss. Takes effect with [`journal`](Self::journal),
    /// before or after it.
    pub fn journal_fsync(mut self, policy: FsyncPolicy) -> Self {
        self.journal.fsync = policy;
        self
    }

    /// How batches reach the database: [`InsertMode::Fast`] (the default: `COPY` on PostgreSQL,
    /// statements prepared once elsewhere) or [`InsertMode::Portable`] (SeaORM `insert_many`).
    pub fn insert_mode(mut self, mode: InsertMode) -> Self {
        self.writer.insert_mode = mode;
        self
    }

    /// Longest a database call of the writer's may take before it counts as failed: an insert,
    /// and with the `integrity` feature the chain's first read and its checkpoints.
    /// Catches connections that stall without breaking. At shutdown, the deadline cuts it
    /// shorter. Not 0, which would fail every call ([`build`](Self::build) refuses it).
    pub fn insert_timeout(mut self, timeout: Duration) -> Self {
        self.writer.insert_timeout = timeout;
        self
    }

    /// How long the database may fail before the writer logs at `error` level (and again once
    /// per period while it keeps failing). A failure for want of the table (the database was
    /// not migrated) is logged at `error` level at once, and flagged in
    /// [`WriterStats::schema_missing`](crate::WriterStats::schema_missing).
    pub fn outage_alert(mut self, after: Duration) -> Self {
        self.writer.outage_alert = after;
        self
    }

    /// Chains every row into a keyed hash chain and stores checkpoints; see
    /// [`integrity`](crate::integrity).
    #[cfg(feature = "integrity")]
    pub fn integrity(mut self, integrity: crate::integrity::Integrity) -> Self {
        self.writer.integrity = Some(integrity);
        self
    }

    /// Names the writer in its metrics (feature `metrics`): they carry the label
    /// `writer="<name>"` and count this writer alone (with any other of the same name). Without
    /// a name, a writer's metrics are unlabelled and counted with the process's other unnamed
    /// writers. Give each layer its own name to tell an HTTP from a gRPC server's writer.
    #[cfg(feature = "metrics")]
    pub fn writer_name(mut self, name: impl Into<String>) -> Self {
        self.writer.name = Some(name.into());
        self
    }

    /// Longest pause between two attempts at a failing batch. Not 0, which would retry without
    /// pause ([`build`](Self::build) refuses it).
    pub fn max_retry_backoff(mut self, max: Duration) -> Self {
        self.writer.retry_max = max;
        self
    }

    /// The first retry's pause (50 ms), for tests of a writer slow to try again.
    #[cfg(test)]
    pub(crate) fn retry_initial(mut self, initial: Duration) -> Self {
        self.writer.retry_initial = initial;
        self
    }

    /// Builds the layer and spawns its writer on the current Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::NoRuntime`] outside a Tokio runtime; use [`build_pair`](Self::build_pair) there.
    /// [`Error::Journal`] when the journal cannot be opened (a directory, in a file, not
    /// writable, held by another writer), [`Error::Config`] for [`Overflow::Spill`] without a
    /// journal, an integrity key shorter than 32 bytes, a JWT secret shorter than its algorithm's
    /// hash (feature `jwt`: 32 bytes for HS256), or a setting out of its range (see the
    /// [table](Self)).
    pub fn build(self) -> Result<(AuditLayer, WriterGuard), Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let (layer, guard, writer) = self.build_pair()?;
        runtime.spawn(writer);
        Ok((layer, guard))
    }

    /// Builds the layer and returns its writer for you to run, like `tower::buffer::Buffer::pair`.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build), but never [`Error::NoRuntime`].
    pub fn build_pair(self) -> Result<(AuditLayer, WriterGuard, AuditWriter), Error> {
        let Self {
            db,
            mut config,
            mut writer,
            mut journal,
        } = self;
        check_paths("skip_path", &config.skip_paths)?;
        check_paths("skip_path_prefix", &config.skip_prefixes)?;
        check_request_id_header(&config.request_id_header, &writer.rows.redactor)?;
        if writer.capacity == 0 || writer.capacity > MAX_CAPACITY {
            return Err(Error::Config(format!(
                "capacity({}): the queue takes 1 to {MAX_CAPACITY} records",
                writer.capacity
            )));
        }
        if writer.batch_size == 0 {
            return Err(Error::Config(
                "batch_size(0): a batch takes at least one record".into(),
            ));
        }
        // A body past the queue's whole budget would be buffered, then shed: keep what fits.
        config.max_body_bytes = config.max_body_bytes.min(writer.queue_body_bytes);
        writer.rows.max_body_bytes = config.max_body_bytes;
        writer.rows.batch_inflation = writer.queue_body_bytes;
        // A batch larger than the queue would never fill.
        writer.batch_size = writer.batch_size.min(writer.capacity);
        if writer.flush_interval.is_zero() {
            return Err(Error::Config(
                "flush_interval(0) would keep the writer awake without pause; use batch_size(1) \
                 to write each record as soon as it is queued"
                    .into(),
            ));
        }
        if writer.insert_timeout.is_zero() {
            return Err(Error::Config(
                "insert_timeout(0) would fail every insert: no database call completes at once"
                    .into(),
            ));
        }
        if writer.retry_max.is_zero() {
            return Err(Error::Config(
                "max_retry_backoff(0) would retry a failing database without pause".into(),
            ));
        }
        // Timers are set as now plus the setting: a year-scale setting means "never", and
        // one past the clock's range would overflow it.
        writer.flush_interval = writer.flush_interval.min(FAR_FUTURE);
        if let FsyncPolicy::Interval(every) = &mut journal.fsync {
            *every = (*every).min(FAR_FUTURE);
        }
        let floor = min_journal_bytes(config.max_body_bytes);
        if journal.path.is_some() && journal.max_bytes < floor {
            return Err(Error::Config(format!(
                "journal_max_bytes({}): the journal could not hold one record with a whole \
                 body; it needs at least {floor} bytes with max_body_bytes({}) (64 KiB and \
                 three times the body); leave out .journal() for none",
                journal.max_bytes, config.max_body_bytes
            )));
        }
        // The clock calibrates itself at its first reading (about half a millisecond here):
        // now, rather than on the first request; then the writer measures its rate against the
        // system's clock from here on.
        let _ = quanta::Instant::now();
        crate::writer::anchor_clocks();
        writer.journal = journal.config();
        #[cfg(feature = "integrity")]
        if let Some(integrity) = &writer.integrity
            && integrity.key.len() < crate::integrity::MIN_KEY_BYTES
        {
            // As `Integrity::from_env` refuses it: a short key makes a chain anyone can forge.
            return Err(Error::Config(format!(
                "the integrity key {:?} holds {} bytes; it needs at least {}",
                integrity.key_id,
                integrity.key.len(),
                crate::integrity::MIN_KEY_BYTES
            )));
        }
        // Every row carries them, in columns of 255 characters: one PostgreSQL or MariaDB
        // cannot hold refuses every row of the chain (SQLite, which checks no lengths, took
        // them), and a NUL every row on PostgreSQL.
        #[cfg(feature = "integrity")]
        if let Some(integrity) = &writer.integrity {
            for (what, id) in [
                ("chain id", &integrity.chain_id),
                ("key id", &integrity.key_id),
            ] {
                let chars = id.chars().count();
                if chars == 0
                    || chars > crate::migration::SHORT_TEXT_LEN as usize
                    || id.contains('\0')
                {
                    return Err(Error::Config(format!(
                        "the integrity {what} holds {chars} characters; it must hold 1 to {}, \
                         none of them NUL",
                        crate::migration::SHORT_TEXT_LEN
                    )));
                }
            }
        }
        #[cfg(feature = "jwt")]
        if let Some(problem) = writer.rows.jwt.as_ref().and_then(|jwt| jwt.weak_key()) {
            return Err(Error::Config(problem));
        }
        let overflow = match (writer.overflow, &writer.journal) {
            (Some(Overflow::Spill), None) => {
                return Err(Error::Config(
                    "Overflow::Spill needs a journal: call .journal(path)".into(),
                ));
            }
            (Some(policy), _) => policy,
            (None, Some(_)) => Overflow::Spill,
            (None, None) => Overflow::DropNewest,
        };
        config.overflow = overflow;
        let journal = match &writer.journal {
            None => None,
            Some(journal_config) => {
                let (journal, recovered) =
                    Journal::open(journal_config).map_err(|source| Error::Journal {
                        path: journal_config.path.clone(),
                        source,
                    })?;
                if recovered.cut_bytes > 0 {
                    tracing::warn!(
                        cut_bytes = recovered.cut_bytes,
                        path = %journal_config.path.display(),
                        "tower-audit: cut a torn or corrupt tail off the audit journal"
                    );
                }
                Some(journal)
            }
        };
        let channel = Channel::new(ChannelConfig {
            capacity: writer.capacity,
            body_budget: writer.queue_body_bytes,
            batch_size: writer.batch_size,
            overflow,
            journal,
            rows: Arc::new(writer.rows.clone()),
            #[cfg(feature = "metrics")]
            name: writer.name.clone(),
        });
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let (report_tx, report_rx) = oneshot::channel();
        #[cfg(feature = "integrity")]
        let mut chain = writer.integrity.clone().map(crate::integrity::Chain::new);
        // With the hash chain on, a journal an earlier process left may hold rows sealed before
        // they were journaled: new records must not take chain positions ahead of them, so they
        // wait behind the whole journal (see `Worker::sealed_until`), and rows sealed at replay
        // follow the last of them (`Chain::journaled`).
        #[cfg(feature = "integrity")]
        let sealed_until = match (&mut chain, &channel.journal) {
            (Some(chain), Some(journal)) => {
                let mut journal = crate::context::lock(journal);
                if journal.pending_bytes() > 0 {
                    let places =
                        journal
                            .sealed_places(chain.id())
                            .map_err(|source| Error::Journal {
                                path: writer
                                    .journal
                                    .as_ref()
                                    .map(|j| j.path.clone())
                                    .unwrap_or_default(),
                                source,
                            })?;
                    chain.journaled(places);
                    if let Some(config) = &writer.journal {
                        match crate::writer::Journal::dead_letter_places(config, chain.id()) {
                            Ok(places) => chain.dead_lettered(places),
                            Err(error) => tracing::warn!(
                                %error,
                                "tower-audit: cannot read the dead-letter journal; rows sealed \
                                 after a dead-lettered row keep their links"
                            ),
                        }
                    }
                    Some(journal.end())
                } else {
                    None
                }
            }
            _ => None,
        };
        #[cfg(not(feature = "integrity"))]
        let sealed_until = None;
        let worker = Worker {
            channel: channel.clone(),
            sink: Sink::new(db, writer.insert_mode),
            config: writer,
            shutdown: Some(shutdown_rx),
            report: Some(report_tx),
            deadline: None,
            outage: Outage::default(),
            converted: None,
            retired: None,
            #[cfg(feature = "integrity")]
            chain,
            dead_letters: None,
            sealed_until,
            unreplayed: None,
            slice: None,
        };
        let layer = AuditLayer {
            shared: Arc::new(Shared {
                config,
                intake: Intake::new(channel.clone()),
            }),
        };
        let guard = WriterGuard::new(channel, shutdown_tx, report_rx);
        Ok((layer, guard, worker.into_writer()))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use http::{Request, Response};
    use http_body_util::Full;
    use tower::{Layer, ServiceExt};

    use super::AuditLayer;
    use crate::{Error, FsyncPolicy, RequestBody};

    async fn db() -> sea_orm::DatabaseConnection {
        let db = sea_orm::Database::connect("sqlite::memory:")
            .await
            .expect("connect");
        crate::migrate(&db).await.expect("migrate");
        db
    }

    fn config_error<T>(result: Result<T, Error>, says: &str) {
        match result.err() {
            Some(Error::Config(message)) => assert!(message.contains(says), "{message}"),
            other => panic!("expected a configuration error saying {says:?}, got {other:?}"),
        }
    }

    /// Sends one request through `layer` and shuts its writer down: the rows it wrote.
    async fn one_request(layer: AuditLayer, guard: crate::WriterGuard, path: &str) -> u64 {
        let service = layer.layer(tower::service_fn(
            |_: Request<RequestBody<Full<Bytes>>>| async {
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
            },
        ));
        let request = Request::get(path)
            .body(Full::new(Bytes::new()))
            .expect("request");
        service.oneshot(request).await.expect("response");
        let report = guard
            .shutdown(Duration::from_secs(10))
            .await
            .expect("shutdown");
        report.written
    }

    /// A queue of no records, or of more than its slots could ever be allocated for, is refused
    /// rather than dropping every record or aborting the process.
    #[tokio::test]
    async fn a_capacity_of_none_or_past_the_limit_is_refused() {
        config_error(
            AuditLayer::builder(db().await).capacity(0).build_pair(),
            "capacity",
        );
        config_error(
            AuditLayer::builder(db().await)
                .capacity(usize::MAX)
                .build_pair(),
            "capacity",
        );
        config_error(
            AuditLayer::builder(db().await)
                .capacity(super::MAX_CAPACITY + 1)
                .build_pair(),
            "capacity",
        );
    }

    /// A batch of no records is refused; one larger than the queue is cut to the queue's
    /// capacity, and the writer (which allocates a batch) still writes.
    #[tokio::test]
    async fn a_batch_size_of_none_is_refused_and_a_huge_one_cut_to_the_capacity() {
        config_error(
            AuditLayer::builder(db().await).batch_size(0).build_pair(),
            "batch_size",
        );
        let (layer, guard) = AuditLayer::builder(db().await)
            .batch_size(usize::MAX)
            .build()
            .expect("layer");
        assert_eq!(one_request(layer, guard, "/a").await, 1);
    }

    /// A flush interval of zero would spin the idle writer; one past the clock's range used to
    /// panic in the writer, leaving it dead.
    #[tokio::test]
    async fn a_flush_interval_of_zero_is_refused_and_a_huge_one_is_no_panic() {
        config_error(
            AuditLayer::builder(db().await)
                .flush_interval(Duration::ZERO)
                .build_pair(),
            "flush_interval",
        );
        let (layer, guard) = AuditLayer::builder(db().await)
            .flush_interval(Duration::MAX)
            .max_retry_backoff(Duration::MAX)
            .insert_timeout(Duration::MAX)
            .outage_alert(Duration::MAX)
            .body_read_timeout(Duration::MAX)
            .build()
            .expect("layer");
        assert_eq!(one_request(layer, guard, "/a").await, 1);
    }

    /// An insert timeout of zero fails every insert (the writer would never write); a retry
    /// backoff of zero retries a failing database without pause.
    #[tokio::test]
    async fn an_insert_timeout_or_retry_backoff_of_zero_is_refused() {
        config_error(
            AuditLayer::builder(db().await)
                .insert_timeout(Duration::ZERO)
                .build_pair(),
            "insert_timeout",
        );
        config_error(
            AuditLayer::builder(db().await)
                .max_retry_backoff(Duration::ZERO)
                .build_pair(),
            "max_retry_backoff",
        );
    }

    /// An fsync interval past the clock's range used to panic in the writer at its first append.
    #[tokio::test]
    async fn a_huge_journal_fsync_interval_is_no_panic() {
        let dir = tempfile::tempdir().expect("dir");
        let (layer, guard, writer) = AuditLayer::builder(db().await)
            .journal(dir.path().join("audit.journal"))
            .journal_fsync(FsyncPolicy::Interval(Duration::MAX))
            .overflow(crate::Overflow::Spill)
            .capacity(1)
            .build_pair()
            .expect("layer");
        // The writer is not running yet: the first record fills the queue, the second is
        // appended to the journal, which then has a sync due.
        let service = layer.layer(tower::service_fn(
            |_: Request<RequestBody<Full<Bytes>>>| async {
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
            },
        ));
        let request = || {
            Request::get("/a")
                .body(Full::new(Bytes::new()))
                .expect("request")
        };
        service.clone().oneshot(request()).await.expect("response");
        service.oneshot(request()).await.expect("response");
        assert_eq!(guard.stats().spilled, 1);
        tokio::spawn(writer);
        let report = guard
            .shutdown(Duration::from_secs(10))
            .await
            .expect("shutdown");
        assert_eq!(report.written, 2);
    }

    /// A body larger than the queue's whole body budget could never be queued: the capture cap
    /// is cut to `queue_body_bytes`, so such a body keeps its first bytes rather than being
    /// buffered whole (`max_body_bytes(usize::MAX)`) and then shed.
    #[tokio::test]
    async fn the_capture_cap_is_cut_to_the_queues_body_budget() {
        let (layer, guard, _writer) = AuditLayer::builder(db().await)
            .max_body_bytes(usize::MAX)
            .queue_body_bytes(100)
            .build_pair()
            .expect("layer");
        let service = layer.layer(tower::service_fn(
            |request: Request<RequestBody<Full<Bytes>>>| async {
                use http_body_util::BodyExt;
                let body = request.into_body().collect().await.expect("body");
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(body.to_bytes())))
            },
        ));
        let request = Request::post("/upload")
            .header("content-type", "text/plain")
            .body(Full::new(Bytes::from(vec![b'a'; 1_000])))
            .expect("request");
        let response = service.oneshot(request).await.expect("response");
        drop(response);
        let record = layer
            .shared
            .intake
            .channel()
            .pop()
            .expect("a queued record");
        assert_eq!(record.body_bytes, 100);
        assert_eq!(guard.stats().bodies_shed, 0);
    }

    /// A journal path that cannot hold a file is a journal error from `build`, naming the path;
    /// missing directories are created.
    #[tokio::test]
    async fn a_journal_path_that_cannot_be_a_file_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("file");
        std::fs::write(&file, b"").expect("file");
        for path in [dir.path().to_path_buf(), file.join("audit.journal")] {
            match AuditLayer::builder(db().await).journal(&path).build_pair() {
                Err(Error::Journal { path: named, .. }) => assert_eq!(named, path),
                other => panic!("{path:?}: expected a journal error, got {:?}", other.err()),
            }
        }
        let nested = dir.path().join("a/b/audit.journal");
        let (layer, guard) = AuditLayer::builder(db().await)
            .journal(&nested)
            .build()
            .expect("layer");
        assert_eq!(one_request(layer, guard, "/a").await, 1);
        assert!(nested.is_file());
    }

    /// Two layers (two writers) on one SQLite file both write their rows.
    #[tokio::test]
    async fn two_layers_share_one_sqlite_file() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("audit.db").display()
        );
        let db = crate::connect(&url).await.expect("connect");
        crate::migrate(&db).await.expect("migrate");
        let second = crate::connect(&url).await.expect("connect");
        let (a, a_guard) = AuditLayer::builder(db.clone()).build().expect("layer");
        let (b, b_guard) = AuditLayer::builder(second).build().expect("layer");
        assert_eq!(one_request(a, a_guard, "/a").await, 1);
        assert_eq!(one_request(b, b_guard, "/b").await, 1);
        let rows = crate::store::count(&db, &crate::store::AuditFilter::default())
            .await
            .expect("count");
        assert_eq!(rows, 2);
    }

    /// The request id is stored unredacted and, with `echo_request_id`, set on the request and
    /// the response: a credential's header (by the redactor's own rules, the user's too) or one
    /// that frames or routes the message is refused; a header of its own is taken.
    #[tokio::test]
    async fn request_id_headers_that_hold_credentials_or_framing_are_refused() {
        use http::HeaderName;
        let user_sensitive = crate::sanitize::Redactor::builder()
            .sensitive_header(HeaderName::from_static("x-tenant-secret"))
            .build();
        for name in [
            "authorization",
            "cookie",
            "x-api-key",
            "x-auth-token",
            "x-session-token-bin",
            "x-tenant-secret",
        ] {
            config_error(
                AuditLayer::builder(db().await)
                    .redactor(user_sensitive.clone())
                    .request_id_header(HeaderName::from_static(name))
                    .build_pair(),
                "credential",
            );
        }
        for name in [
            "content-length",
            "host",
            "transfer-encoding",
            "content-type",
        ] {
            config_error(
                AuditLayer::builder(db().await)
                    .request_id_header(HeaderName::from_static(name))
                    .build_pair(),
                "frames or routes",
            );
        }
        for name in [
            "x-request-id",
            "x-correlation-id",
            "traceparent",
            "request-id",
        ] {
            let built = AuditLayer::builder(db().await)
                .request_id_header(HeaderName::from_static(name))
                .build_pair();
            assert!(built.is_ok(), "{name}: {:?}", built.err());
        }
    }

    /// A journal that can hold nothing is refused.
    #[tokio::test]
    async fn a_journal_of_no_bytes_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        config_error(
            AuditLayer::builder(db().await)
                .journal(dir.path().join("audit.journal"))
                .journal_max_bytes(0)
                .build_pair(),
            "journal_max_bytes",
        );
    }

    /// A journal too small for one record with a whole body (64 KiB, and three times
    /// `max_body_bytes`, for its head and a body of bytes that are no UTF-8, each stored as
    /// U+FFFD) is refused, whichever
    /// order the settings come in: `journal_max_bytes(1)` was taken, and the journal dropped
    /// every record an outage sent it.
    #[tokio::test]
    async fn a_journal_too_small_for_one_record_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.journal");
        let floor = (64 << 10) + 3 * (64 << 10);
        for bytes in [1, 4096, floor - 1] {
            config_error(
                AuditLayer::builder(db().await)
                    .journal(&path)
                    .journal_max_bytes(bytes)
                    .build_pair(),
                "journal_max_bytes",
            );
            config_error(
                AuditLayer::builder(db().await)
                    .journal_max_bytes(bytes)
                    .journal(&path)
                    .build_pair(),
                "journal_max_bytes",
            );
        }
        // Larger bodies need a larger journal; without bodies, 64 KiB will do.
        config_error(
            AuditLayer::builder(db().await)
                .max_body_bytes(1 << 20)
                .journal(&path)
                .journal_max_bytes(floor)
                .build_pair(),
            "journal_max_bytes",
        );
        for (body, bytes) in [
            (64 << 10, floor),
            (1 << 20, (64 << 10) + (3 << 20)),
            (0, 64 << 10),
        ] {
            let built = AuditLayer::builder(db().await)
                .max_body_bytes(body)
                .journal_max_bytes(bytes)
                .journal(&path)
                .build_pair();
            assert!(built.is_ok(), "{body} {bytes}: {:?}", built.err());
        }
        // Without a journal, the bound means nothing and is not checked.
        let built = AuditLayer::builder(db().await)
            .journal_max_bytes(1)
            .build_pair();
        assert!(built.is_ok(), "{:?}", built.err());
        // Bodies without bound: the floor is the most a journal can be, not a sum that
        // overflowed (a panic in a debug build, a floor of 64 KiB in a release one).
        let unbounded = |db| {
            AuditLayer::builder(db)
                .queue_body_bytes(usize::MAX)
                .max_body_bytes(usize::MAX)
        };
        assert!(unbounded(db().await).build_pair().is_ok());
        config_error(
            unbounded(db().await)
                .journal(&path)
                .journal_max_bytes(u64::MAX - 1)
                .build_pair(),
            "journal_max_bytes",
        );
        assert!(
            unbounded(db().await)
                .journal(&path)
                .journal_max_bytes(u64::MAX)
                .build_pair()
                .is_ok()
        );
    }

    /// Found by a probe: a chain id of 300 characters was taken, and PostgreSQL and MariaDB,
    /// whose column holds 255, refused every row of the chain (SQLite took them).
    #[cfg(feature = "integrity")]
    #[tokio::test]
    async fn chain_and_key_ids_that_no_column_holds_are_refused() {
        let key = vec![7u8; 32];
        let build = |chain: String, key_id: String| async {
            AuditLayer::builder(db().await)
                .integrity(crate::integrity::Integrity::new(chain, key_id, key.clone()))
                .build_pair()
        };
        for (chain, key_id, says) in [
            (
                "c".repeat(256),
                "k1".to_owned(),
                "chain id holds 256 characters",
            ),
            (
                String::new(),
                "k1".to_owned(),
                "chain id holds 0 characters",
            ),
            ("api\0".to_owned(), "k1".to_owned(), "none of them NUL"),
            (
                "api".to_owned(),
                "k".repeat(300),
                "key id holds 300 characters",
            ),
        ] {
            config_error(build(chain, key_id).await, says);
        }
        // 255 characters, four bytes each: what the columns hold.
        assert!(build("\u{1F600}".repeat(255), "k1".into()).await.is_ok());
    }

    /// Paths the layer compares with start with `/`: an empty one or one without it never
    /// matches (`skip_path`), or matches every path (`skip_path_prefix("")`).
    #[tokio::test]
    async fn skip_paths_that_match_nothing_or_everything_are_refused() {
        for bad in ["", "health", "/health?probe=1"] {
            config_error(
                AuditLayer::builder(db().await).skip_path(bad).build_pair(),
                "skip_path",
            );
            config_error(
                AuditLayer::builder(db().await)
                    .skip_path_prefix(bad)
                    .build_pair(),
                "skip_path_prefix",
            );
        }
        // Still taken: the root, and a prefix that ends in `/`.
        let (layer, guard) = AuditLayer::builder(db().await)
            .skip_path("/")
            .skip_path_prefix("/internal/")
            .build()
            .expect("layer");
        assert_eq!(one_request(layer, guard, "/a").await, 1);

        // `OPTIONS *`, whose path is `*`.
        let (layer, guard) = AuditLayer::builder(db().await)
            .skip_path("*")
            .build()
            .expect("layer");
        let service = layer.layer(tower::service_fn(
            |_: Request<RequestBody<Full<Bytes>>>| async {
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
            },
        ));
        let request = Request::options("*")
            .body(Full::new(Bytes::new()))
            .expect("request");
        service.oneshot(request).await.expect("response");
        assert_eq!(guard.stats().skipped, 1);
    }

    /// A shutdown timeout past the clock's range waits for the writer rather than panicking.
    #[tokio::test]
    async fn a_huge_shutdown_timeout_is_no_panic() {
        let (layer, guard) = AuditLayer::builder(db().await).build().expect("layer");
        drop(layer);
        let report = guard.shutdown(Duration::MAX).await.expect("shutdown");
        assert_eq!(report.written, 0);
    }
}
