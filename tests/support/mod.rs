//! Shared test support: a database per test on each backend, a real axum server, an HTTP client.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod proxy;

use std::future::Future;
use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, QueryOrder};
use tokio::sync::oneshot;
use tower_audit::entity::audit_log;

pub const POSTGRES_ENV: &str = "TOWER_AUDIT_TEST_POSTGRES_URL";
pub const MYSQL_ENV: &str = "TOWER_AUDIT_TEST_MYSQL_URL";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    pub const ALL: [Backend; 3] = [Backend::Sqlite, Backend::Postgres, Backend::MySql];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::MySql => "mysql",
        }
    }

    /// The variable that enables this backend; SQLite needs none.
    pub fn env(self) -> Option<&'static str> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => Some(POSTGRES_ENV),
            Backend::MySql => Some(MYSQL_ENV),
        }
    }

    /// Whether this build has the backend's driver (its crate feature).
    pub fn compiled(self) -> bool {
        match self {
            Backend::Sqlite => cfg!(feature = "sqlite"),
            Backend::Postgres => cfg!(feature = "postgres"),
            Backend::MySql => cfg!(feature = "mysql"),
        }
    }

    /// The backend's URL, when its variable is set and this build has its driver.
    pub fn base_url(self) -> Option<String> {
        if !self.compiled() {
            return None;
        }
        match self.env() {
            None => Some(String::new()),
            Some(var) => std::env::var(var).ok().filter(|v| !v.is_empty()),
        }
    }
}

/// A database of its own for one test: a SQLite file in a temporary directory, a PostgreSQL
/// schema, or a MySQL database. Dropped by `cleanup`.
pub struct TestDb {
    pub backend: Backend,
    url: String,
    schema: Option<String>,
    base_url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn create(backend: Backend, test: &str) -> TestDb {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let slug: String = test
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(30)
            .collect();
        let name = format!("ta_{slug}_{}_{nanos}", std::process::id());
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("audit.db");
                TestDb {
                    backend,
                    url: format!("sqlite://{}?mode=rwc", path.display()),
                    schema: None,
                    base_url: String::new(),
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let base = backend.base_url().expect("postgres url");
                let admin = tower_audit::connect(base.clone()).await.unwrap();
                admin
                    .execute_unprepared(&format!("CREATE SCHEMA \"{name}\""))
                    .await
                    .unwrap();
                TestDb {
                    backend,
                    url: base.clone(),
                    schema: Some(name),
                    base_url: base,
                    _dir: None,
                }
            }
            Backend::MySql => {
                let base = backend.base_url().expect("mysql url");
                let admin = tower_audit::connect(base.clone()).await.unwrap();
                admin
                    .execute_unprepared(&format!(
                        "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                    ))
                    .await
                    .unwrap();
                let (server, _) = base.rsplit_once('/').expect("mysql url with a database");
                TestDb {
                    backend,
                    url: format!("{server}/{name}"),
                    schema: Some(name),
                    base_url: base,
                    _dir: None,
                }
            }
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The PostgreSQL schema or MySQL database of this test.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// A new connection to this test's database.
    pub async fn connect(&self) -> DatabaseConnection {
        self.connect_via(&self.url).await
    }

    /// Connection options for this test's database at `url` (the real one, or a proxy's).
    pub fn options(&self, url: &str) -> sea_orm::ConnectOptions {
        let mut options = tower_audit::connect_options(url.to_owned());
        if let (Backend::Postgres, Some(schema)) = (self.backend, &self.schema) {
            options.set_schema_search_path(schema.clone());
        }
        options
    }

    /// A new connection at `url` (the real one, or a proxy's).
    pub async fn connect_via(&self, url: &str) -> DatabaseConnection {
        let mut options = tower_audit::connect_options(url.to_owned());
        if let (Backend::Postgres, Some(schema)) = (self.backend, &self.schema) {
            options.set_schema_search_path(schema.clone());
        }
        sea_orm::Database::connect(options).await.unwrap()
    }

    /// A connection with the table migrated.
    pub async fn migrated(&self) -> DatabaseConnection {
        let db = self.connect().await;
        tower_audit::migrate(&db).await.unwrap();
        db
    }

    pub async fn cleanup(self) {
        let Some(schema) = &self.schema else { return };
        let admin = tower_audit::connect(self.base_url.clone()).await.unwrap();
        let sql = match self.backend {
            Backend::Postgres => format!("DROP SCHEMA \"{schema}\" CASCADE"),
            Backend::MySql => format!("DROP DATABASE `{schema}`"),
            Backend::Sqlite => return,
        };
        if let Err(error) = admin.execute_unprepared(&sql).await {
            eprintln!("cleanup of {schema} failed: {error}");
        }
    }
}

/// Every row, in insertion order.
pub async fn rows(db: &DatabaseConnection) -> Vec<audit_log::Model> {
    audit_log::Entity::find()
        .order_by_asc(audit_log::Column::Id)
        .all(db)
        .await
        .unwrap()
}

/// A real axum server on a loopback port, with connect info; stopped when dropped.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    pub async fn start(app: Router) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Server {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Graceful stop: waits for in-flight requests.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

pub type ClientBody = BoxBody<Bytes, Infallible>;

pub fn client() -> Client<HttpConnector, ClientBody> {
    Client::builder(TokioExecutor::new()).build_http()
}

pub fn full(bytes: impl Into<Bytes>) -> ClientBody {
    Full::new(bytes.into()).boxed()
}

pub fn empty() -> ClientBody {
    full(Bytes::new())
}

/// Sends a request and reads the whole response.
pub async fn send(
    client: &Client<HttpConnector, ClientBody>,
    request: http::Request<ClientBody>,
) -> (http::StatusCode, Bytes) {
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body)
}

/// A streaming body of `chunks` chunks of `chunk_size` bytes with no declared length (chunked).
pub struct ChunkedBody {
    remaining: usize,
    chunk: Bytes,
}

impl ChunkedBody {
    pub fn new(chunks: usize, chunk_size: usize) -> ChunkedBody {
        let chunk: Vec<u8> = (0..chunk_size).map(|i| b'a' + (i % 26) as u8).collect();
        ChunkedBody {
            remaining: chunks,
            chunk: Bytes::from(chunk),
        }
    }
}

impl Body for ChunkedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        self.remaining -= 1;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.clone()))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::new()
    }
}

/// The scenarios of a matrix suite, named by their functions (attributes such as `#[cfg]`
/// are kept): `const SCENARIOS: &[(&str, Scenario)] = scenarios![a, b];`.
#[allow(unused_macros)] // each suite takes what it needs of this module
macro_rules! scenarios {
    ($($(#[$attr:meta])* $name:ident),* $(,)?) => {
        &[$($(#[$attr])* (stringify!($name), |db| Box::pin($name(db)))),*]
    };
}
#[allow(unused_imports)] // each suite takes what it needs of this module
pub(crate) use scenarios;

/// One scenario of a backend matrix: an async test, given a database of its own.
pub type Scenario = fn(Arc<TestDb>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// The `main` of a matrix suite: every scenario against every backend. A backend without its URL
/// variable says so on stderr and shows its trials as ignored.
pub fn run_matrix(suite: &str, scenarios: &'static [(&'static str, Scenario)]) {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    // Scenarios named `random_…` draw a new schedule each run: only when asked, so that CI
    // does not pass or fail at random (a seed replays one).
    let random_asked = std::env::var_os("TOWER_AUDIT_TEST_RANDOM").is_some()
        || std::env::var_os("TOWER_AUDIT_TEST_SEED").is_some();
    if !random_asked
        && scenarios
            .iter()
            .any(|(name, _)| name.starts_with("random_"))
    {
        eprintln!(
            "SKIPPED: the random {suite} schedules (set TOWER_AUDIT_TEST_RANDOM=1 to run them, \
             or TOWER_AUDIT_TEST_SEED to replay one)"
        );
    }
    for backend in Backend::ALL {
        let available = backend.base_url().is_some();
        if !backend.compiled() {
            eprintln!(
                "SKIPPED: the {} {suite} tests (this build has no `{}` feature: `cargo test \
                 --all-features` runs them)",
                backend.name(),
                backend.name()
            );
        } else if !available {
            eprintln!(
                "SKIPPED: the {} {suite} tests (set {} to run them)",
                backend.name(),
                backend.env().unwrap_or_default()
            );
        }
        for &(name, scenario) in scenarios {
            let trial = Trial::test(format!("{}::{name}", backend.name()), move || {
                run_scenario(backend, name, scenario)
            })
            .with_ignored_flag(!available || (name.starts_with("random_") && !random_asked));
            trials.push(trial);
        }
    }
    libtest_mimic::run(&args, trials).exit();
}

fn run_scenario(backend: Backend, name: &str, scenario: Scenario) -> Result<(), Failed> {
    if backend.base_url().is_none() {
        return Err(format!(
            "{} is not set: cannot run the {} tests",
            backend.env().unwrap_or_default(),
            backend.name()
        )
        .into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let db = Arc::new(TestDb::create(backend, name).await);
        let result = tokio::spawn(scenario(db.clone())).await;
        if let Ok(db) = Arc::try_unwrap(db) {
            db.cleanup().await;
        }
        result.map_err(|error| Failed::from(format!("{error}")))
    })
}

/// A row at `at` with everything else empty (a `GET /` answered 200); `edit` fills in the rest.
pub fn row(
    at: chrono::DateTime<chrono::Utc>,
    edit: impl FnOnce(&mut audit_log::Model),
) -> audit_log::ActiveModel {
    let mut model = audit_log::Model {
        id: 0,
        record_id: uuid::Uuid::now_v7().to_string(),
        occurred_at: at,
        request_id: None,
        method: "GET".into(),
        path: "/".into(),
        route: None,
        query: None,
        status: Some(200),
        grpc_status: None,
        grpc_messages_in: None,
        grpc_messages_out: None,
        latency_us: 100,
        client_ip: None,
        peer_ip: None,
        user_agent: None,
        user_id: None,
        tenant_id: None,
        action: None,
        resource: None,
        request_body: None,
        request_body_truncated: false,
        request_bytes: 0,
        response_bytes: 0,
        request_headers: None,
        extra: None,
        error: None,
        chain_id: None,
        chain_seq: None,
        prev_hash: None,
        row_hash: None,
        key_id: None,
    };
    edit(&mut model);
    let mut active = audit_log::ActiveModel::from(model);
    active.id = sea_orm::ActiveValue::NotSet;
    active
}

/// Waits up to 30 s for the writer's published stats to satisfy `done`; panics with `what`
/// and the stats if they do not.
pub async fn wait_stats(
    guard: &tower_audit::WriterGuard,
    what: &str,
    done: impl FnMut(&tower_audit::WriterStats) -> bool,
) {
    let mut stats = guard.watch_stats();
    if tokio::time::timeout(std::time::Duration::from_secs(30), stats.wait_for(done))
        .await
        .is_err()
    {
        panic!("{what}: {:?}", guard.stats());
    }
}
