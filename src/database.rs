//! Connecting to the audit database with settings that suit the writer.

use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr, RuntimeErr};

use crate::Error;

/// Connection options for an audit database at `url`, tuned for the writer.
///
/// - sqlx statement logging off: one log line per audited request would drown the application's
///   own logs (and could copy data past the sanitizer into them);
/// - SQLite: WAL journal, `synchronous=NORMAL` (durable across process crashes, the usual pairing
///   with WAL) and a 5 s busy timeout, so readers never block the writer and a briefly locked
///   file is waited for rather than failed; a WAL checkpoint every 16,384 pages (64 MiB) rather
///   than 1,000, so that index pages written by many transactions reach the database file once
///   (rows with users: 28% more rows/s together with the writer's backlog transactions);
///   `temp_store=MEMORY`, so the statement journal SQLite keeps for each of the writer's
///   multi-row inserts (a transaction holds several) stays in memory rather than in a temporary
///   file written with a system call per page: SQLite's thread spent 15–24% less CPU a row
///   while the writer kept up with a server, and the writer alone wrote rows with users 11–25%
///   faster (plain rows as fast as before). It holds the pages a statement changes that
///   existed before it, until the statement ends: the same bytes the temporary file kept in the
///   kernel's page cache, now in the process. Temporary tables and indices of other queries on
///   these connections are kept in memory too (large sorts still spill to temporary files);
///   the crate's own queries make small ones.
///
/// Adjust the returned options further (pool size, schema search path, …) and pass them to
/// `sea_orm::Database::connect`. SeaORM keeps one SQLite function: one of your own given to
/// `map_sqlx_sqlite_opts` replaces these settings, so start it with [`sqlite_settings`]:
///
/// ```
/// # async fn run() -> Result<(), sea_orm::DbErr> {
/// let mut options = tower_audit::connect_options("sqlite::memory:");
/// options.map_sqlx_sqlite_opts(|o| tower_audit::sqlite_settings(o).pragma("cache_size", "-65536"));
/// let db = sea_orm::Database::connect(options).await?;
/// # drop(db);
/// # Ok(())
/// # }
/// # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
/// ```
pub fn connect_options(url: impl Into<String>) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.into());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5));
    #[cfg(feature = "sqlite")]
    options.map_sqlx_sqlite_opts(sqlite_settings);
    options
}

/// The SQLite settings of [`connect_options`] applied to `options`: WAL, `synchronous=NORMAL`,
/// a 5 s busy timeout, a WAL checkpoint every 16,384 pages and temporary storage (the
/// statement journals of the writer's inserts) in memory. For a function of your own
/// given to `map_sqlx_sqlite_opts`, which replaces theirs.
#[cfg(feature = "sqlite")]
pub fn sqlite_settings(
    options: sea_orm::sqlx::sqlite::SqliteConnectOptions,
) -> sea_orm::sqlx::sqlite::SqliteConnectOptions {
    use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
    options
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5))
        .pragma("wal_autocheckpoint", "16384")
        .pragma("temp_store", "memory")
}

/// Connects to the audit database at `url` with [`connect_options`].
///
/// `sqlite://audit.db?mode=rwc`, `postgres://user@host/db` and `mysql://user@host/db` are
/// accepted, given the matching crate features.
///
/// # Errors
///
/// [`Error::Database`] when the database cannot be reached or the URL is not understood. A
/// PostgreSQL or MySQL server that cannot be reached is named with the cause (`cannot connect
/// to db:5432: Connection refused`), after the 5 s the pool waits for a connection. A URL no
/// backend of this build reads says which crate feature it needs. Where the error quotes the
/// URL, its password reads `***`.
pub async fn connect(url: impl Into<String>) -> Result<DatabaseConnection, Error> {
    let url = url.into();
    match Database::connect(connect_options(url.clone())).await {
        Ok(db) => Ok(db),
        Err(error) => {
            let error = no_driver(&url, sqlite_why_not(&url, why_not(&url, error).await));
            Err(without_password(&url, error).into())
        }
    }
}

/// `error` with the passwords of `url` replaced by `***` where it is quoted: sea-orm quotes a
/// URL it cannot parse or has no driver for whole, and such an error ends in a log or a
/// panic's message. Both places a URL carries one are read, however mistyped: the userinfo
/// (`scheme://user:password@host/…`, the password holding any character, `?`, `#`, `/` and
/// `@` included: up to each `@` after it) and a query parameter (`?password=…`, which sqlx
/// reads for PostgreSQL, and its kin).
fn without_password(url: &str, error: DbErr) -> DbErr {
    let said = said(&error);
    let mut quoted: Vec<(String, String)> = Vec::new();
    // A URL without its scheme (`app:pw@db/audit`) has its userinfo at its start.
    let rest = url.split_once("//").map_or(url, |(_, rest)| rest);
    for (at, _) in rest.match_indices('@') {
        if let Some((_, password)) = rest[..at].split_once(':').filter(|(_, p)| !p.is_empty()) {
            quoted.push((format!(":{password}@"), ":***@".to_owned()));
        }
    }
    if let Some((_, query)) = url.split_once('?') {
        for (key, value) in query
            .split(['&', '#'])
            .filter_map(|pair| pair.split_once('='))
        {
            let secret = ["password", "passwd", "pwd", "pass", "sslpassword"]
                .iter()
                .any(|name| key.eq_ignore_ascii_case(name));
            if secret && !value.is_empty() {
                quoted.push((format!("{key}={value}"), format!("{key}=***")));
            }
        }
    }
    // The longest first: a password holding `@` is quoted whole, not only up to its `@`.
    quoted.sort_by_key(|(secret, _)| std::cmp::Reverse(secret.len()));
    let mut text = said;
    let mut changed = false;
    for (secret, masked) in &quoted {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), masked);
            changed = true;
        }
    }
    if changed {
        DbErr::Conn(RuntimeErr::Internal(text))
    } else {
        error
    }
}

/// What `error` says, without the "Connection Error: " that `DbErr::Conn` puts before it.
fn said(error: &DbErr) -> String {
    match error {
        DbErr::Conn(inner) => inner.to_string(),
        other => other.to_string(),
    }
}

/// sea-orm says only "has no supporting driver" for a URL whose backend this build lacks (a
/// crate feature left out) or that no backend reads (`mariadb://`): which, and what to do, is
/// added.
fn no_driver(url: &str, error: DbErr) -> DbErr {
    let said = said(&error);
    if !said.contains("has no supporting driver") {
        return error;
    }
    let why = driver_hint(url, &BACKENDS);
    let said = said.trim_end_matches('.');
    DbErr::Conn(RuntimeErr::Internal(format!("{said}: {why}")))
}

/// Each backend's crate feature, and whether this build has it.
const BACKENDS: [(&str, bool); 3] = [
    ("sqlite", cfg!(feature = "sqlite")),
    ("postgres", cfg!(feature = "postgres")),
    ("mysql", cfg!(feature = "mysql")),
];

/// What to do about a URL that a build with `backends` (see [`BACKENDS`]) has no driver for:
/// enable the feature its scheme needs, or use a scheme the crate reads.
fn driver_hint(url: &str, backends: &[(&str, bool)]) -> String {
    let scheme = url
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let needs = match scheme.as_str() {
        "sqlite" => "sqlite",
        "postgres" | "postgresql" => "postgres",
        "mysql" => "mysql",
        _ => "",
    };
    if backends.contains(&(needs, false)) {
        return format!(
            "tower-audit was built without its `{needs}` feature, which this URL needs"
        );
    }
    let built: Vec<&str> = backends
        .iter()
        .filter_map(|&(feature, on)| on.then_some(feature))
        .collect();
    let built = match built.is_empty() {
        true => "none".to_owned(),
        false => built.join(", "),
    };
    format!(
        "tower-audit reads `sqlite:`, `postgres://` and `mysql://` URLs (MariaDB's too), each \
         with the crate feature of its name; this build has: {built}"
    )
}

/// sqlx says "unable to open database file" for a SQLite file that is not there (without
/// `mode=rwc`), a directory that is not there, and a file it may not open: which one, and what to
/// do, is added.
fn sqlite_why_not(url: &str, error: DbErr) -> DbErr {
    let said = said(&error);
    if !said.contains("unable to open database file") {
        return error;
    }
    let Some(path) = sqlite_path(url) else {
        return error;
    };
    let why = match path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        Some(dir) if !dir.is_dir() => format!("no directory {}", dir.display()),
        _ if !path.exists() => format!(
            "no SQLite file at {} (`?mode=rwc` in the URL creates one; `tower-audit migrate` \
             creates it with its table)",
            path.display()
        ),
        _ => format!(
            "{} cannot be opened: check its permissions, and its directory's (SQLite writes its \
             `-wal` and `-shm` files beside it)",
            path.display()
        ),
    };
    DbErr::Conn(RuntimeErr::Internal(format!("{said}: {why}")))
}

/// The file a SQLite URL names (`sqlite://audit.db`, `sqlite:///var/lib/a.db?mode=rwc`,
/// `sqlite:a.db`); `None` for other URLs and in-memory databases.
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split(['?', '#']).next()?;
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

/// sqlx reports a server it cannot reach (a wrong port, a host that is down) as "pool timed
/// out while waiting for an open connection" after its acquire timeout, without the cause
/// (launchbadge/sqlx#3808). One plain TCP connection to the URL's host and port says why.
async fn why_not(url: &str, error: DbErr) -> DbErr {
    if !error.to_string().contains("pool timed out") {
        return error;
    }
    let Some(address) = address(url) else {
        return error;
    };
    let reached = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(address.as_str()),
    )
    .await;
    let why = match reached {
        Ok(Ok(_)) => return error,
        Ok(Err(io)) => format!("cannot connect to {address}: {io}"),
        Err(_) => format!("no answer from {address} within 5 s"),
    };
    let said = said(&error);
    DbErr::Conn(RuntimeErr::Internal(format!("{said}: {why}")))
}

/// The `host:port` a PostgreSQL or MySQL URL names (its default port when it names none);
/// `None` for other URLs and for a socket given as a parameter.
fn address(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let default_port: u16 = match scheme {
        "postgres" | "postgresql" => 5432,
        "mysql" | "mariadb" => 3306,
        _ => return None,
    };
    let authority = rest.split(['/', '?']).next()?;
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, after)| after);
    let port = |text: Option<&str>| match text {
        None => Some(default_port),
        Some(port) => port.parse::<u16>().ok(),
    };
    if let Some(v6) = host_port.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = port(after.strip_prefix(':'))?;
        return Some(format!("[{host}]:{port}"));
    }
    let (host, port) = match host_port.split_once(':') {
        Some((host, text)) => (host, port(Some(text))?),
        None => (host_port, port(None)?),
    };
    (!host.is_empty()).then(|| format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A URL sea-orm cannot use is quoted in its error without its password, and the error
    /// says what to do: which feature the URL needs, or which URLs the crate reads.
    #[tokio::test]
    async fn a_url_without_a_driver_is_named_without_its_password() {
        for (url, hint) in [
            (
                "mariadb://app:hunter2@127.0.0.1:1/audit",
                "reads `sqlite:`, `postgres://` and `mysql://` URLs (MariaDB's too)",
            ),
            (
                "mssql://app:hunter2@db/audit",
                "this build has: sqlite, postgres, mysql",
            ),
            ("postgres://app:hunter2@[db/audit", "cannot be parsed"),
            // Found by a probe: a password holding `?`, `#`, `/` or `@`, quoted whole.
            ("postgres://app:hun?ter2@[db/audit", "cannot be parsed"),
            ("postgres://app:hun#ter2@[db/audit", "cannot be parsed"),
            ("postgres://app:hun@ter2@[db/audit", "cannot be parsed"),
            (
                "mssql://app:p@ss/hunter2@db/audit",
                "this build has: sqlite, postgres, mysql",
            ),
        ] {
            let error = connect(url).await.unwrap_err().to_string();
            assert!(!error.contains("hunter2"), "{error}");
            assert!(
                !error.contains("ter2") && !error.contains("ter/2"),
                "{error}"
            );
            assert!(error.contains(":***@"), "{error}");
            assert!(error.contains(hint), "{error}");
        }
        // Found by a probe: the password as a query parameter, which sqlx reads for
        // PostgreSQL.
        for (url, masked) in [
            ("postgres://app@[::1/db?password=hunter2", "?password=***"),
            (
                "mssql://app@db/audit?sslmode=require&Password=hunter2",
                "&Password=***",
            ),
        ] {
            let error = connect(url).await.unwrap_err().to_string();
            assert!(!error.contains("hunter2"), "{error}");
            assert!(error.contains(masked), "{error}");
        }
    }

    /// The hint of a build that lacks a URL's backend names its feature; other URLs get the
    /// schemes the crate reads and the backends the build has (this suite's build has all
    /// three, so builds with fewer are given as lists).
    #[test]
    fn a_missing_backend_is_named_by_its_feature() {
        let only_sqlite = [("sqlite", true), ("postgres", false), ("mysql", false)];
        let none = [("sqlite", false), ("postgres", false), ("mysql", false)];
        let without = |feature: &str| {
            format!("tower-audit was built without its `{feature}` feature, which this URL needs")
        };
        assert_eq!(
            driver_hint("postgres://app@db/audit", &only_sqlite),
            without("postgres")
        );
        assert_eq!(
            driver_hint("PostgreSQL://db/audit", &only_sqlite),
            without("postgres")
        );
        assert_eq!(
            driver_hint("mysql://db/test", &only_sqlite),
            without("mysql")
        );
        assert_eq!(driver_hint("sqlite::memory:", &none), without("sqlite"));
        let mariadb = driver_hint("mariadb://db/test", &only_sqlite);
        assert!(mariadb.ends_with("this build has: sqlite"), "{mariadb}");
        assert!(driver_hint("mssql://db", &none).ends_with("this build has: none"));
        assert!(driver_hint("mssql://db", &BACKENDS).ends_with("sqlite, postgres, mysql"));
    }

    #[test]
    fn the_address_a_url_names() {
        for (url, want) in [
            (
                "postgres://app:secret@db.internal:6432/audit",
                Some("db.internal:6432"),
            ),
            (
                "postgresql://db.internal/audit?sslmode=require",
                Some("db.internal:5432"),
            ),
            ("mysql://root@127.0.0.1/test", Some("127.0.0.1:3306")),
            ("mariadb://root@[::1]:3307/test", Some("[::1]:3307")),
            ("postgres://[fd00::7]/audit", Some("[fd00::7]:5432")),
            ("postgres:///audit?host=/run/postgresql", None),
            ("postgres://db:notaport/audit", None),
            ("sqlite://audit.db?mode=rwc", None),
            ("not a url", None),
        ] {
            assert_eq!(address(url).as_deref(), want, "{url}");
        }
    }

    /// A deployment's own SQLite setting (the README's page cache, under "Tuning") comes on top
    /// of the writer's: WAL, the busy timeout and the checkpoint interval stay.
    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn sqlite_settings_of_ones_own_keep_the_writers() {
        use sea_orm::{ConnectionTrait, Statement};
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
        let mut options = connect_options(url);
        options.map_sqlx_sqlite_opts(|o| sqlite_settings(o).pragma("cache_size", "-65536"));
        let db = Database::connect(options).await.unwrap();
        let pragma = |name: &'static str| {
            let db = db.clone();
            async move {
                let row = db
                    .query_one_raw(Statement::from_string(
                        db.get_database_backend(),
                        format!("PRAGMA {name}"),
                    ))
                    .await
                    .unwrap()
                    .unwrap();
                row.try_get_by_index::<String>(0)
                    .or_else(|_| row.try_get_by_index::<i64>(0).map(|n| n.to_string()))
                    .unwrap()
            }
        };
        assert_eq!(pragma("cache_size").await, "-65536");
        assert_eq!(pragma("journal_mode").await, "wal");
        assert_eq!(pragma("busy_timeout").await, "5000");
        assert_eq!(pragma("wal_autocheckpoint").await, "16384");
        // 2: MEMORY.
        assert_eq!(pragma("temp_store").await, "2");
    }

    /// sqlx's own words for a SQLite file that is not there ("unable to open database file")
    /// do not say what to do: the error names the path and the way to create it.
    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn a_missing_sqlite_file_is_named_with_the_way_to_create_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let error = connect(format!("sqlite://{}", path.display()))
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("unable to open database file"), "{error}");
        assert!(
            error.contains(&format!("no SQLite file at {}", path.display())),
            "{error}"
        );
        assert!(error.contains("?mode=rwc"), "{error}");
        assert!(!path.exists());
        // A directory that is not there is named as such.
        let deeper = dir.path().join("nope").join("audit.db");
        let error = connect(format!("sqlite://{}?mode=rwc", deeper.display()))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!(
                "no directory {}",
                dir.path().join("nope").display()
            )),
            "{error}"
        );
    }

    /// sqlx reports a server it cannot reach as a pool that timed out: the error now says which
    /// address refused, and never the URL's password.
    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn a_server_that_is_not_there_is_named_in_the_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let error = connect(format!("postgres://app:hunter2@127.0.0.1:{port}/audit"))
            .await
            .expect_err("no server there")
            .to_string();
        assert!(
            error.contains(&format!("cannot connect to 127.0.0.1:{port}")),
            "{error}"
        );
        assert!(!error.contains("hunter2"), "{error}");
    }
}
