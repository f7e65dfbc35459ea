//! `tower-audit`: read, export, purge and replay an audit trail from a shell.
//!
//! ```sh
//! export DATABASE_URL='sqlite://audit.db?mode=rwc'
//! tower-audit query --user alice --status 5xx --since 2h
//! tower-audit tail -f
//! tower-audit stats --since 24h
//! tower-audit export --format csv --otel --output trail.csv --since 2026-11-01T00:00:00Z
//! tower-audit purge --older-than 90d --dry-run
//! tower-audit replay --target http://127.0.0.1:3000 --header 'authorization:Bearer t0ken' --rate 20
//! TOWER_AUDIT_HMAC_KEY=… TOWER_AUDIT_HMAC_KEY_ID=k2026 tower-audit verify --since 7d
//! tower-audit verify --export trail.ndjson   # an `export --with-proof`, offline (--anchor too)
//! ```
//!
//! Exit codes: 0 success, 1 runtime error (one line on stderr), 2 usage error, 3 `replay`
//! finished but some records failed or got a different status than recorded, 4 `verify` found a
//! break in a hash chain, 5 `verify` found no hash chain, none of the name `--chain` gives, or
//! no chained row in its time range.
//!
//! `verify` (feature `integrity`) reads its keys from the environment only, never from flags
//! that would end up in the shell history: `TOWER_AUDIT_HMAC_KEY` (hex) and
//! `TOWER_AUDIT_HMAC_KEY_ID` for the current key, and `TOWER_AUDIT_HMAC_KEYS` =
//! `id1:hex1,id2:hex2` for older keys after a rotation. Likewise `purge` signs its tombstones
//! with the Ed25519 secret key in `TOWER_AUDIT_SIGNING_KEY` (hex), the writers' checkpoint key,
//! which `verify --checkpoint-public-key` then requires.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use http::{HeaderName, HeaderValue, Uri};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tower_audit::entity::audit_log::{self, Model};
use tower_audit::store::{
    self, AuditFilter, AuditStats, Cursor, Export, ExportFormat, ExportReport, PageRequest,
    PurgeOptions, ReplayOptions, ReplayOutcome, ReplayReport, StatsOptions, printable,
};

/// The most rows `query --limit`, `tail -n` and `stats --top` ask for: they are held in memory
/// to be printed (`export` streams any number). `--help` says it as a number.
const MAX_SHOWN: u64 = 1_000_000;

/// Exit code: `replay` had failures.
const EXIT_REPLAY_FAILURES: u8 = 3;
/// Exit code: `verify` found a break in a hash chain.
#[cfg(feature = "integrity")]
const EXIT_CHAIN_BROKEN: u8 = 4;
/// Exit code: `verify --chain` names no chain of the database or export (a typo must not pass
/// for an intact chain), or there is no chain at all (every row deleted must not either), or
/// the time range holds no chained row (nothing was checked).
#[cfg(feature = "integrity")]
const EXIT_NO_SUCH_CHAIN: u8 = 5;

/// Read, export, purge and replay a tower-audit trail.
///
/// Exit codes: 0 success, 1 runtime error, 2 usage error, 3 replay had failures, 4 verify found a
/// break in a hash chain, 5 verify found no hash chain (or none of the name --chain gives, or no
/// chained row in its time range).
#[derive(Debug, Parser)]
#[command(name = "tower-audit", version)]
struct Cli {
    /// The audit database: sqlite://audit.db, postgres://user@host/db, mysql://user@host/db.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or update the audit_log table and its indexes.
    Migrate,
    /// List rows, newest first, one page at a time.
    Query {
        #[command(flatten)]
        filter: FilterArgs,
        /// Rows per page, 1 to 1000000.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=MAX_SHOWN))]
        limit: u64,
        /// Continue after this cursor (printed after a full page).
        #[arg(long)]
        cursor: Option<Cursor>,
        /// Oldest first.
        #[arg(long)]
        oldest_first: bool,
        /// NDJSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show the latest rows, and with -f keep printing new ones.
    Tail {
        #[command(flatten)]
        filter: FilterArgs,
        /// How many of the latest rows to show first, 0 to 1000000.
        #[arg(short = 'n', long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(..=MAX_SHOWN))]
        lines: u64,
        /// Follow: poll for new rows. A row committed after rows with higher ids (several
        /// writers on one PostgreSQL or MySQL database) shows when it lands, within 2 minutes.
        #[arg(short, long)]
        follow: bool,
        /// Polling interval with -f.
        #[arg(long, default_value = "1s", value_parser = parse_interval)]
        interval: Duration,
        /// NDJSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Requests by route, status class and user, and latency percentiles.
    Stats {
        #[command(flatten)]
        filter: FilterArgs,
        /// How many routes and users to list, 0 to 1000000.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(..=MAX_SHOWN))]
        top: u64,
    },
    /// Write the matching rows, oldest first, as NDJSON or CSV.
    Export {
        #[command(flatten)]
        filter: FilterArgs,
        /// Output format. In CSV, a text value starting with =, +, -, @ (or their fullwidth
        /// forms), tab or CR is quoted and prefixed with a single quote ('=…), so that a
        /// spreadsheet shows it instead of running it as a formula; NDJSON keeps values as
        /// stored.
        #[arg(long, value_enum, default_value_t = Format::Ndjson)]
        format: Format,
        /// OpenTelemetry attribute names (http.request.method, url.path, …).
        #[arg(long)]
        otel: bool,
        /// Write to this file instead of stdout.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
        /// Append the chains' checkpoints and purge tombstones, for `verify --export` (NDJSON
        /// with column names only; a time range, no other filter, as other filters leave holes).
        /// Rows chained among the exported ones but that arrived outside the range come after
        /// them.
        #[arg(long, conflicts_with = "otel")]
        with_proof: bool,
    },
    /// Check the hash chains: exit 0 when intact, 4 when a break is found, 5 when there is no
    /// chain, none of the name --chain gives, or no chained row in the --since/--until range.
    ///
    /// Keys come from the environment only: TOWER_AUDIT_HMAC_KEY (hex) and
    /// TOWER_AUDIT_HMAC_KEY_ID for the current key, TOWER_AUDIT_HMAC_KEYS=id1:hex1,id2:hex2 for
    /// older keys after a rotation.
    #[cfg(feature = "integrity")]
    Verify {
        /// Each chain from its first row that arrived at or after this time, with every row
        /// chained after it, whenever it arrived (the row before it is trusted as a start).
        #[arg(long, value_parser = parse_time, conflicts_with = "export")]
        since: Option<DateTime<Utc>>,
        /// Each chain up to its last row that arrived before this time, with every row chained
        /// before it (a truncated tail cannot be judged then).
        #[arg(long, value_parser = parse_time, conflicts_with = "export")]
        until: Option<DateTime<Utc>>,
        /// Only this chain; exit code 5 when there is none of that name (or none at all).
        #[arg(long)]
        chain: Option<String>,
        /// Check checkpoint signatures with this Ed25519 public key (hex), and those of purge
        /// tombstones (see `purge`).
        #[arg(long, value_parser = parse_public_key)]
        checkpoint_public_key: Option<[u8; 32]>,
        /// Take unsigned purge tombstones, for trails purged before tombstones were signed.
        /// Such a tombstone can hide the deletion of a chain's first rows.
        #[arg(long, requires = "checkpoint_public_key")]
        accept_unsigned_purges: bool,
        /// A position and hash kept outside the database, `chain@seq=hash` (repeatable): the
        /// chain must still hold that row, in the database or in the `--export` file (a tail
        /// cut from it with its checkpoint lines shows then). The writer logs one with each
        /// checkpoint (target `tower_audit::checkpoint`); an intact `--json` verdict's `anchor`
        /// is one too.
        #[arg(long, value_name = "CHAIN@SEQ=HASH")]
        anchor: Vec<tower_audit::integrity::Anchor>,
        /// Verify this file from `export --with-proof` instead of the database.
        #[arg(long, value_name = "FILE")]
        export: Option<std::path::PathBuf>,
        /// The `--export` file holds whole chains (exported with no time range): rows cut from
        /// its start are then a break, where otherwise a chain's first row in the file is
        /// taken as the start of a range.
        #[arg(long, requires = "export")]
        from_start: bool,
        /// One JSON object per chain instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete rows older than a retention period, in batches; records the purge in the trail.
    ///
    /// With TOWER_AUDIT_SIGNING_KEY (hex: the Ed25519 secret key the writers sign checkpoints
    /// with) in the environment, the purge tombstones of hash chains are signed, as `verify
    /// --checkpoint-public-key` requires.
    Purge {
        /// Delete rows older than this: 90d, 12w, 36h.
        #[arg(long, value_parser = parse_age)]
        older_than: Duration,
        /// Count what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Allow a period shorter than the 30-day minimum retention.
        #[arg(long)]
        allow_recent: bool,
        /// Rows per delete statement, 1 to 30000 (a batch's ids are the parameters of one
        /// statement).
        #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=PurgeOptions::MAX_BATCH_SIZE))]
        batch_size: u64,
        /// Keep the rows of this user (legal hold); repeat it for several users.
        #[arg(long, value_name = "USER")]
        hold_user: Vec<String>,
        /// Keep the rows of this tenant (legal hold); repeat it for several tenants, and with
        /// --hold-user: a row either keeps is kept.
        #[arg(long, value_name = "TENANT")]
        hold_tenant: Vec<String>,
        /// Recorded as the user_id of the purge's own row.
        #[arg(long)]
        requested_by: Option<String>,
    },
    /// Send the recorded POST/PUT/PATCH/DELETE requests again, oldest first, to a target.
    ///
    /// The filters choose which: --method DELETE sends only the DELETEs, --method GET nothing.
    Replay {
        #[command(flatten)]
        filter: FilterArgs,
        /// The server to send to: http://host:port.
        #[arg(long, value_parser = parse_target)]
        target: Uri,
        /// List what would be sent; send nothing.
        #[arg(long)]
        dry_run: bool,
        /// A header added to every request, as NAME:VALUE (repeatable). It replaces the
        /// recorded header of that name, in any case (the recorded content-type); repeated
        /// under one name, each value is sent.
        #[arg(long = "header", value_parser = parse_header)]
        headers: Vec<(HeaderName, HeaderValue)>,
        /// At most this many requests per second.
        #[arg(long, value_parser = parse_rate)]
        rate: Option<f64>,
        /// Stop at the first failure or status different from the recorded one.
        #[arg(long)]
        stop_on_error: bool,
        /// How long each request may wait for its response, such as 30s or 2m.
        #[arg(long, value_parser = parse_interval, default_value = "30s")]
        timeout: Duration,
        /// Send the requests the recorded server refused (401, 403) too: with --header's
        /// credentials, a request refused when it was made could be carried out.
        #[arg(long)]
        include_refused: bool,
        /// The text the layer's redactor put in place of secrets, if not [REDACTED]: recorded
        /// headers holding it are not sent.
        #[arg(long, value_name = "TEXT")]
        redaction_marker: Option<String>,
        /// The layer's request id header, if not x-request-id: it is not sent as recorded.
        #[arg(long, value_name = "NAME", value_parser = parse_header_name)]
        request_id_header: Option<HeaderName>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Ndjson,
    Csv,
}

/// The row filters shared by the reading commands.
#[derive(Debug, Args)]
struct FilterArgs {
    /// Rows at or after this time: RFC 3339, or an age such as 2h or 7d.
    #[arg(long, value_parser = parse_time)]
    since: Option<DateTime<Utc>>,
    /// Rows before this time: RFC 3339, or an age such as 30m.
    #[arg(long, value_parser = parse_time)]
    until: Option<DateTime<Utc>>,
    /// Rows of this user.
    #[arg(long)]
    user: Option<String>,
    /// Rows of this tenant.
    #[arg(long)]
    tenant: Option<String>,
    /// Rows with this method, in any case (repeatable).
    #[arg(long)]
    method: Vec<String>,
    /// Rows whose path starts with this.
    #[arg(long)]
    path_prefix: Option<String>,
    /// Rows of this route template, such as /orders/{id}.
    #[arg(long)]
    route: Option<String>,
    /// Rows with this status: 404, 4xx or 400-499.
    #[arg(long, value_parser = parse_status)]
    status: Option<(u16, u16)>,
    /// Rows from this client address, IPv4 or IPv6, in any of its spellings (not a CIDR range).
    #[arg(long, value_parser = parse_client_ip)]
    client_ip: Option<IpAddr>,
    /// The rows of this request id.
    #[arg(long)]
    request_id: Option<String>,
    /// Only rows with an error.
    #[arg(long)]
    errors: bool,
    /// Rows whose stored request body contains this text.
    #[arg(long)]
    body_contains: Option<String>,
}

impl FilterArgs {
    /// The first filter given other than the time range, as its flag.
    fn row_filter(&self) -> Option<&'static str> {
        [
            (self.user.is_some(), "--user"),
            (self.tenant.is_some(), "--tenant"),
            (!self.method.is_empty(), "--method"),
            (self.path_prefix.is_some(), "--path-prefix"),
            (self.route.is_some(), "--route"),
            (self.status.is_some(), "--status"),
            (self.client_ip.is_some(), "--client-ip"),
            (self.request_id.is_some(), "--request-id"),
            (self.errors, "--errors"),
            (self.body_contains.is_some(), "--body-contains"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }

    fn filter(&self) -> AuditFilter {
        let mut filter = AuditFilter::new().methods(&self.method);
        if let Some(at) = self.since {
            filter = filter.since(at);
        }
        if let Some(at) = self.until {
            filter = filter.until(at);
        }
        if let Some(user) = &self.user {
            filter = filter.user(user);
        }
        if let Some(tenant) = &self.tenant {
            filter = filter.tenant(tenant);
        }
        if let Some(prefix) = &self.path_prefix {
            filter = filter.path_prefix(prefix);
        }
        if let Some(route) = &self.route {
            filter = filter.route(route);
        }
        if let Some((low, high)) = self.status {
            filter = filter.status_range(low..=high);
        }
        if let Some(ip) = self.client_ip {
            // The library matches it in the form the writer stores it.
            filter = filter.client_ip(ip.to_string());
        }
        if let Some(id) = &self.request_id {
            filter = filter.request_id(id);
        }
        if self.errors {
            filter = filter.has_error(true);
        }
        if let Some(text) = &self.body_contains {
            filter = filter.body_contains(text);
        }
        filter
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} needs a unit: s, m, h, d or w (e.g. 90d)"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("unknown unit {unit:?}: use s, m, h, d or w")),
    };
    Ok(Duration::from_secs(number.saturating_mul(seconds)))
}

/// A polling interval: a duration that is not zero.
fn parse_interval(text: &str) -> Result<Duration, String> {
    Some(parse_duration(text)?)
        .filter(|interval| !interval.is_zero())
        .ok_or_else(|| format!("{text:?}: the interval must be 1s or longer"))
}

fn parse_header_name(text: &str) -> Result<HeaderName, String> {
    HeaderName::try_from(text.trim()).map_err(|_| format!("{text:?} is not a header name"))
}

/// A rate, in requests per second: a number above zero (`ReplayOptions::rate` takes any other
/// as no limit, which is not what `--rate 0` asks for).
fn parse_rate(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|rate| *rate > 0.0 && rate.is_finite())
        .ok_or_else(|| format!("{text:?} is not a rate above zero, such as 10 or 0.5"))
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let age = parse_duration(text)
        .map_err(|_| format!("{text:?} is neither an RFC 3339 time nor an age such as 2h"))?;
    ago(age).ok_or_else(|| format!("{text:?} reaches back before the earliest time there is"))
}

/// An age such as `--older-than` takes: one that reaches back to a time there is.
fn parse_age(text: &str) -> Result<Duration, String> {
    let age = parse_duration(text)?;
    ago(age).ok_or_else(|| format!("{text:?} reaches back before the earliest time there is"))?;
    Ok(age)
}

/// The time `age` ago; none before the earliest time a `DateTime` holds.
fn ago(age: Duration) -> Option<DateTime<Utc>> {
    Utc::now().checked_sub_signed(chrono::Duration::from_std(age).ok()?)
}

fn parse_status(text: &str) -> Result<(u16, u16), String> {
    let bad = || format!("{text:?} is not a status such as 404, 4xx or 400-499");
    // HTTP statuses are 100 to 599: anything else would match no row, silently.
    let status = |digits: &str| {
        digits
            .parse::<u16>()
            .ok()
            .filter(|s| (100..=599).contains(s))
            .ok_or_else(bad)
    };
    if let Some(class) = text.strip_suffix("xx").or_else(|| text.strip_suffix("XX")) {
        let class: u16 = class.parse().map_err(|_| bad())?;
        if !(1..=5).contains(&class) {
            return Err(bad());
        }
        return Ok((class * 100, class * 100 + 99));
    }
    if let Some((low, high)) = text.split_once('-') {
        let (low, high) = (status(low)?, status(high)?);
        if low > high {
            return Err(bad());
        }
        return Ok((low, high));
    }
    let status = status(text)?;
    Ok((status, status))
}

/// Only `http://host:port`: the client speaks plain HTTP, and each request keeps its recorded
/// path, so a path here would be dropped without a word.
fn parse_target(text: &str) -> Result<Uri, String> {
    let target: Uri = text.parse().map_err(|e| format!("{text:?}: {e}"))?;
    let no_path = matches!(
        target.path_and_query().map(|p| p.as_str()),
        None | Some("/")
    );
    if target.scheme_str() != Some("http") || target.authority().is_none() || !no_path {
        return Err(format!("{text:?}: give http://host:port"));
    }
    Ok(target)
}

#[cfg(feature = "integrity")]
fn parse_public_key(text: &str) -> Result<[u8; 32], String> {
    key_from_hex(text)
        .ok_or_else(|| format!("{text:?} is not an Ed25519 public key: 64 hex digits"))
}

/// 32 bytes from 64 hex digits.
#[cfg(feature = "integrity")]
fn key_from_hex(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        let digits = text.get(2 * i..2 * i + 2).ok_or(()).ok()?;
        *byte = u8::from_str_radix(digits, 16).ok()?;
    }
    Some(key)
}

/// One client address: anything else would match no row, silently (the column holds single
/// addresses, looked up with `=`).
fn parse_client_ip(text: &str) -> Result<IpAddr, String> {
    text.trim().parse().map_err(|_| {
        format!(
            "{text:?} is not an IP address such as 10.1.2.3 or 2001:db8::1 (a CIDR range is \
             not supported)"
        )
    })
}

fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not a header NAME:VALUE"))?;
    let name = HeaderName::try_from(name.trim()).map_err(|e| format!("{name:?}: {e}"))?;
    let value = HeaderValue::try_from(value.trim()).map_err(|e| format!("header value: {e}"))?;
    Ok((name, value))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = usage(&cli) {
        error.exit();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(&error),
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => fail(&*error),
    }
}

/// The usage errors clap's attributes cannot express (exit code 2, as clap's own).
fn usage(cli: &Cli) -> Result<(), clap::Error> {
    // With the usage line of the subcommand, as in clap's own errors.
    let error = |name: &str, message: String| {
        let mut command = Cli::command();
        command.build();
        let subcommand = command.find_subcommand(name).cloned();
        subcommand
            .unwrap_or(command)
            .error(clap::error::ErrorKind::ArgumentConflict, message)
    };
    if let Command::Export {
        format: Format::Csv,
        with_proof: true,
        ..
    } = cli.command
    {
        return Err(error(
            "export",
            "the argument '--with-proof' cannot be used with '--format csv': a proof is NDJSON"
                .to_owned(),
        ));
    }
    if let Command::Export {
        filter,
        with_proof: true,
        ..
    } = &cli.command
        && let Some(flag) = filter.row_filter()
    {
        // The rows it leaves out would verify as deleted: a proof that cannot hold.
        return Err(error(
            "export",
            format!(
                "the argument '--with-proof' cannot be used with '{flag}': a proof is of a time \
                 range (--since, --until), and other filters leave holes in the chains"
            ),
        ));
    }
    let (name, since, until) = match &cli.command {
        Command::Query { filter, .. } => ("query", filter.since, filter.until),
        Command::Tail { filter, .. } => ("tail", filter.since, filter.until),
        Command::Stats { filter, .. } => ("stats", filter.since, filter.until),
        Command::Export { filter, .. } => ("export", filter.since, filter.until),
        Command::Replay { filter, .. } => ("replay", filter.since, filter.until),
        #[cfg(feature = "integrity")]
        Command::Verify { since, until, .. } => ("verify", *since, *until),
        Command::Migrate | Command::Purge { .. } => return Ok(()),
    };
    if let (Some(since), Some(until)) = (since, until)
        && since >= until
    {
        // Nothing is at or after one time and before an earlier one: an empty answer, or an
        // intact chain of no rows, would hide the swapped times.
        let time = |at: DateTime<Utc>| at.to_rfc3339_opts(SecondsFormat::Secs, true);
        return Err(error(
            name,
            format!(
                "the time range is empty: '--since' ({}) is not before '--until' ({})",
                time(since),
                time(until)
            ),
        ));
    }
    Ok(())
}

/// Prints `error` and its sources on one line of stderr.
fn fail(error: &(dyn std::error::Error + 'static)) -> ExitCode {
    let line = one_line(error);
    let hint = if lacks_audit_tables(&line) {
        " (a database the audit tables are not in: check the URL, or create them with `tower-audit migrate`)"
    } else {
        ""
    };
    note(format_args!("tower-audit: error: {line}{hint}"));
    ExitCode::FAILURE
}

/// Whether `error` says that `audit_log` or `audit_checkpoint` is not there, as SQLite
/// (`no such table: audit_log`), PostgreSQL (`relation "audit_log" does not exist`) and
/// MySQL (`Table 'db.audit_log' doesn't exist`) say it.
fn lacks_audit_tables(error: &str) -> bool {
    ["audit_log", "audit_checkpoint"].iter().any(|table| {
        error.contains(&format!("no such table: {table}"))
            || error.contains(&format!("relation \"{table}\" does not exist"))
            || (error.contains(&format!(".{table}' doesn't exist")) && error.contains("Table '"))
    })
}

/// `error` and its sources on one line.
fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        // Some errors (sea-orm's, sqlx's) already print their source: say it once.
        let cause_text = cause.to_string();
        if !line.contains(&cause_text) {
            line.push_str(": ");
            line.push_str(&cause_text);
        }
        source = cause.source();
    }
    #[cfg(feature = "postgres")]
    if let Some((shown, meant)) = postgres_error(error) {
        line = line.replace(&shown, &meant);
    }
    line.replace('\n', " ")
}

/// A PostgreSQL error in `error`'s chain, as sqlx shows it (the server's message, then "at line
/// 948": the line of the server's own C source that raised it, which tells an operator nothing),
/// and as `psql` does: the message with its SQLSTATE, detail and hint.
#[cfg(feature = "postgres")]
fn postgres_error(error: &(dyn std::error::Error + 'static)) -> Option<(String, String)> {
    use sea_orm::sqlx::postgres::PgDatabaseError;
    use sea_orm::{DbErr, RuntimeErr};
    let mut next = Some(error);
    while let Some(cause) = next {
        // sea-orm's errors hold sqlx's without giving it as their source.
        let runtime = match cause.downcast_ref::<DbErr>() {
            Some(DbErr::Conn(e) | DbErr::Exec(e) | DbErr::Query(e)) => Some(e),
            _ => cause.downcast_ref::<RuntimeErr>(),
        };
        let sqlx = match runtime {
            Some(RuntimeErr::SqlxError(e)) => Some(&**e),
            _ => cause.downcast_ref::<sea_orm::sqlx::Error>(),
        };
        if let Some(pg) = sqlx
            .and_then(|e| e.as_database_error())
            .and_then(|e| e.try_downcast_ref::<PgDatabaseError>())
        {
            let mut meant = format!("{} (SQLSTATE {})", pg.message(), pg.code());
            if let Some(detail) = pg.detail() {
                meant.push_str(&format!("; detail: {detail}"));
            }
            if let Some(hint) = pg.hint() {
                meant.push_str(&format!("; hint: {hint}"));
            }
            return Some((pg.to_string(), meant));
        }
        next = cause.source();
    }
    None
}

/// Whether output went out: `false` when stdout is a pipe whose reader has gone (`tower-audit
/// query | head -1`). The reader has what it wanted, so the command stops there quietly, as
/// ripgrep does (exit 0; coreutils, killed by SIGPIPE, print nothing either); other write
/// errors (a full disk) stay errors. A command whose exit code is a verdict (`verify`,
/// `replay`) still exits with it.
fn written(result: std::io::Result<()>) -> std::io::Result<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(error) if closed(&error) => Ok(false),
        Err(error) => Err(error),
    }
}

/// The reader of the output went away.
fn closed(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::BrokenPipe
}

/// The report of a command that changed the database (`migrate`, `purge`), on stdout; when
/// stdout's reader has gone, on stderr, which may still be read (a job's log), rather than lost
/// after the work was done.
fn report_done(line: &str) -> std::io::Result<()> {
    if !written(writeln!(std::io::stdout().lock(), "{line}"))? {
        note(format_args!("{line}"));
    }
    Ok(())
}

/// Completes once stdout is a pipe whose reader has gone (`tail -f | head -1` after its line),
/// as coreutils' `tail -f` notices it between writes; never for a terminal or a file.
async fn output_closed() {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        use tokio::io::Interest;
        use tokio::io::unix::AsyncFd;
        // The write end of a pipe reports an error once the read end is closed; a regular file
        // or `/dev/null` cannot be watched at all. Watched through a duplicate that the
        // `AsyncFd` owns, so it stays open as long as it is registered: what makes the
        // deprecated (for descriptors it does not own) constructor sound here.
        let Ok(duplicate) = std::io::stdout().as_fd().try_clone_to_owned() else {
            return std::future::pending().await;
        };
        #[allow(deprecated)]
        let watched = AsyncFd::with_interest(duplicate, Interest::ERROR);
        if let Ok(stdout) = watched
            && stdout.ready(Interest::ERROR).await.is_ok()
        {
            return;
        }
    }
    std::future::pending().await
}

/// A line on stderr. `eprintln!` panics when stderr is a pipe nobody reads any more; the line
/// is then lost, as there is nowhere left to say so, and the exit code still tells.
fn note(line: std::fmt::Arguments<'_>) {
    // Errors and notes quote database values too (an unreadable row's).
    let _ = writeln!(std::io::stderr(), "{}", printable(&line.to_string()));
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Connects to the database `url` names; only `create` (`migrate`) makes a SQLite file that is
/// not there, whatever `mode=rwc` the URL holds.
async fn connect(url: Option<String>, create: bool) -> Result<DatabaseConnection, BoxError> {
    // An empty one (`DATABASE_URL=`) is none, not a URL that does not parse.
    let url = url
        .filter(|url| !url.trim().is_empty())
        .ok_or("no database: pass --database-url or set DATABASE_URL")?;
    let opened = if create {
        with_create(&url)
    } else {
        without_create(&url)
    };
    let error = match tower_audit::connect(opened.clone()).await {
        Ok(db) => return Ok(db),
        Err(error) => error,
    };
    // A SQLite file in a directory that cannot be written (a read-only mount, a copy kept for
    // a review): SQLite cannot make the `-shm` file it reads a WAL database with, nor turn a
    // copy in rollback mode (`VACUUM INTO` makes one) to WAL, as the connection's settings ask.
    let mut why = String::new();
    match read_only_file(&opened, &error.to_string()).filter(|_| !create) {
        Some(ReadOnly::Alone(immutable)) => {
            if let Ok(db) = tower_audit::connect(immutable).await {
                note(format_args!(
                    "tower-audit: the database's directory cannot be written: read as an unchanging file"
                ));
                return Ok(db);
            }
        }
        Some(ReadOnly::Beside(file)) => {
            why = format!(
                " (if its directory cannot be written: {file} beside it may hold rows, which \
                 SQLite reads only where it can write; copy the database to a directory that \
                 can be written, or make a copy of it alone with `sqlite3 … \".backup copy.db\"`)"
            );
        }
        None => {}
    }
    // A URL that does not parse, or names no driver, is quoted in the error without its
    // password (`tower_audit::connect` sees to that).
    let line = one_line(&error);
    // Only `migrate` creates a file here, whatever the URL says.
    Err(format!(
        "{}{why}",
        line.replace("`?mode=rwc` in the URL creates one; ", "")
    )
    .into())
}

/// What a SQLite file that could not be opened read-only can be read as (see
/// [`read_only_file`]).
enum ReadOnly {
    /// The file is alone: its URL, read-only and as an unchanging file.
    Alone(String),
    /// The name of the `-wal` or `-journal` file beside it.
    Beside(String),
}

/// The SQLite `url` that `said` could not be opened, or set up (`SQLITE_CANTOPEN`, code 14;
/// `SQLITE_READONLY`, code 8), opened read-only and as an unchanging file (`immutable=1`: no
/// locks, no `-shm` file, no change of journal mode), when its file is there alone. A `-wal`
/// or `-journal` file beside it may hold rows such a reading would skip, or a writer may have
/// it open (the crate's writers keep their `-wal` file while they run): then only its name.
fn read_only_file(url: &str, said: &str) -> Option<ReadOnly> {
    if !said.contains("(code: 14)") && !said.contains("(code: 8)") {
        return None;
    }
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let path = base
        .strip_prefix("sqlite://")
        .or_else(|| base.strip_prefix("sqlite:"))?;
    if path.is_empty() || path.contains(":memory:") || !std::path::Path::new(path).is_file() {
        return None;
    }
    for suffix in ["-wal", "-journal"] {
        let beside = format!("{path}{suffix}");
        if std::path::Path::new(&beside).exists() {
            let name = std::path::Path::new(&beside)
                .file_name()
                .map_or(beside.clone(), |name| name.to_string_lossy().into_owned());
            return Some(ReadOnly::Beside(name));
        }
    }
    let mut pairs: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            !pair.is_empty() && !pair.starts_with("mode=") && !pair.starts_with("immutable=")
        })
        .collect();
    pairs.extend(["mode=ro", "immutable=1"]);
    Some(ReadOnly::Alone(format!("{base}?{}", pairs.join("&"))))
}

/// A SQLite `url` that says no `mode` given `mode=rwc`: `migrate` creates the file `--help`'s
/// `sqlite://audit.db` names (sqlx opens a file that is not there only with that mode).
fn with_create(url: &str) -> String {
    if !url.starts_with("sqlite:") || url.contains(":memory:") {
        return url.to_owned();
    }
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    if query.split('&').any(|pair| pair.starts_with("mode=")) {
        return url.to_owned();
    }
    if query.is_empty() {
        format!("{base}?mode=rwc")
    } else {
        format!("{base}?{query}&mode=rwc")
    }
}

/// A SQLite `url` with `mode=rwc` made `mode=rw`: a mistyped path given to a command that reads
/// (the README's `DATABASE_URL` has `mode=rwc`, for the server) must not leave an empty file.
fn without_create(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    if !base.starts_with("sqlite:") {
        return url.to_owned();
    }
    let query: Vec<&str> = query
        .split('&')
        .map(|pair| if pair == "mode=rwc" { "mode=rw" } else { pair })
        .collect();
    format!("{base}?{}", query.join("&"))
}

async fn run(cli: Cli) -> Result<ExitCode, BoxError> {
    #[cfg(feature = "integrity")]
    if let Command::Verify {
        chain,
        checkpoint_public_key,
        accept_unsigned_purges,
        anchor,
        export: Some(path),
        from_start,
        json,
        ..
    } = &cli.command
    {
        // Offline: no database.
        let keys = keyring(*checkpoint_public_key, *accept_unsigned_purges)?;
        let file = std::fs::File::open(path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        // A read that fails (a directory opens, and only then says so) names the file, as
        // one that does not open does.
        let verify_export = if *from_start {
            tower_audit::integrity::verify_export_from_start
        } else {
            tower_audit::integrity::verify_export_with_anchors
        };
        let mut report = verify_export(std::io::BufReader::new(file), &keys, anchor).map_err(
            |error| -> BoxError {
                match error {
                    tower_audit::Error::Io(e) => {
                        format!("cannot read {}: {e}", path.display()).into()
                    }
                    other => other.into(),
                }
            },
        )?;
        if let Some(only) = chain {
            report.chains.retain(|c| &c.chain_id == only);
        }
        return print_verdict(&report, chain.as_deref(), false, *json);
    }
    let create = matches!(cli.command, Command::Migrate);
    let db = connect(cli.database_url, create).await?;
    let result = command(cli.command, &db).await;
    // Closed, the last connection to a SQLite file folds the WAL into it and removes it: the
    // file alone then holds what the command wrote (`migrate`'s table, `purge`'s deletions and
    // its row), as a copy of it for a review expects.
    // Bounded: a connection a failed statement left in a state the driver cannot read back
    // from (found by a probe on MariaDB) held the close, and the command, for ever.
    let _ = tokio::time::timeout(Duration::from_secs(5), db.close()).await;
    result
}

/// Runs `command` on the database `db`.
async fn command(command: Command, db: &DatabaseConnection) -> Result<ExitCode, BoxError> {
    let stdout = std::io::stdout();
    match command {
        Command::Migrate => {
            tower_audit::migrate(db).await?;
            report_done("audit_log is up to date")?;
        }
        Command::Query {
            filter,
            limit,
            cursor,
            oldest_first,
            json,
        } => {
            let request = if oldest_first {
                PageRequest::oldest_first(limit)
            } else {
                PageRequest::newest_first(limit)
            }
            .after(cursor);
            let page = store::page(db, &filter.filter(), request).await?;
            if !written(print_rows(&mut stdout.lock(), &page.rows, json))? {
                return Ok(ExitCode::SUCCESS);
            }
            if let Some(next) = page.next {
                // On stderr, so that --json output stays pure NDJSON.
                note(format_args!("more: --cursor {next}"));
            }
        }
        Command::Tail {
            filter,
            lines,
            follow,
            interval,
            json,
        } => {
            let filter = filter.filter();
            // Read before the rows shown: whatever lands after it is followed.
            let mut follower = match follow {
                true => Some(Follower::start(db).await?),
                false => None,
            };
            let mut rows = match lines {
                0 => Vec::new(),
                _ => {
                    store::page(db, &filter, PageRequest::newest_first(lines))
                        .await?
                        .rows
                }
            };
            rows.reverse();
            let Some(follower) = &mut follower else {
                written(print_rows(&mut stdout.lock(), &rows, json))?;
                return Ok(ExitCode::SUCCESS);
            };
            follower.shown(&rows);
            // Column widths change between polls, so following prints each row on its own.
            for row in &rows {
                if !written(print_row_line(&mut stdout.lock(), row, json))? {
                    return Ok(ExitCode::SUCCESS);
                }
            }
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut closed = std::pin::pin!(output_closed());
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    // The reader went while nothing was written: no write would tell.
                    () = &mut closed => return Ok(ExitCode::SUCCESS),
                }
                loop {
                    let (rows, more) = follower.poll(db, &filter).await?;
                    let mut out = stdout.lock();
                    let printed = rows
                        .iter()
                        .try_for_each(|row| print_row_line(&mut out, row, json))
                        .and_then(|()| out.flush());
                    if !written(printed)? {
                        return Ok(ExitCode::SUCCESS);
                    }
                    if !more {
                        break;
                    }
                }
            }
        }
        Command::Stats { filter, top } => {
            let stats =
                store::stats(db, &filter.filter(), StatsOptions::default().top(top)).await?;
            written(print_stats(&mut stdout.lock(), &stats))?;
        }
        Command::Export {
            filter,
            format,
            otel,
            output,
            with_proof,
        } => {
            let format = match format {
                Format::Ndjson => ExportFormat::Ndjson,
                Format::Csv => ExportFormat::Csv,
            };
            let export = Export::new(format).otel(otel).with_proof(with_proof);
            let filter = filter.filter();
            // With a proof, every page and the proof read in one snapshot: read in statements
            // of their own, the rows a purge deleted meanwhile were missing from the file, and
            // its proof did not verify (found by a probe).
            let exported = if with_proof {
                let snapshot = store::snapshot(db).await?;
                let exported = export_to(&snapshot, export, &filter, output).await?;
                snapshot.rollback().await?;
                exported
            } else {
                export_to(db, export, &filter, output).await?
            };
            // The reader of the output went away: as for any command's stdout.
            let Some(report) = exported else {
                return Ok(ExitCode::SUCCESS);
            };
            // Tampering, most likely (no writer stores such a value): said, not hidden.
            for value in &report.unreadable {
                note(format_args!("{value}, written as stored"));
            }
            note(format_args!("exported {} rows", report.rows));
        }
        #[cfg(feature = "integrity")]
        Command::Verify {
            since,
            until,
            chain,
            checkpoint_public_key,
            accept_unsigned_purges,
            anchor,
            json,
            ..
        } => {
            let keys = keyring(checkpoint_public_key, accept_unsigned_purges)?;
            let options = tower_audit::integrity::VerifyOptions {
                from: since,
                to: until,
                chain_id: chain.clone(),
                anchors: anchor,
            };
            let report = tower_audit::integrity::verify(db, &keys, options).await?;
            let ranged = since.is_some() || until.is_some();
            return print_verdict(&report, chain.as_deref(), ranged, json);
        }
        Command::Purge {
            older_than,
            dry_run,
            allow_recent,
            batch_size,
            hold_user,
            hold_tenant,
            requested_by,
        } => {
            let cutoff = ago(older_than).ok_or("--older-than reaches back too far")?;
            let mut options = PurgeOptions::new()
                .dry_run(dry_run)
                .allow_recent(allow_recent)
                .batch_size(batch_size);
            for user in hold_user {
                options = options.legal_hold(AuditFilter::new().user(user));
            }
            for tenant in hold_tenant {
                options = options.legal_hold(AuditFilter::new().tenant(tenant));
            }
            let who = requested_by.or_else(|| std::env::var("USER").ok());
            if let Some(who) = who {
                options = options.requested_by(who);
            }
            #[cfg(feature = "integrity")]
            if let Some(secret) = signing_key()? {
                options = options.sign_tombstones(secret);
            }
            let report = store::purge_before(db, cutoff, options).await?;
            let cutoff = report.cutoff.to_rfc3339_opts(SecondsFormat::Secs, true);
            let line = if report.dry_run {
                format!("would delete {} rows older than {cutoff}", report.deleted)
            } else {
                format!(
                    "deleted {} rows older than {cutoff} in {} batches (recorded as row {})",
                    report.deleted,
                    report.batches,
                    report.record_id.unwrap_or_default()
                )
            };
            // After the purge; its own row in the trail records it too.
            report_done(&line)?;
        }
        Command::Replay {
            filter,
            target,
            dry_run,
            headers,
            rate,
            stop_on_error,
            timeout,
            include_refused,
            redaction_marker,
            request_id_header,
        } => {
            let mut options = ReplayOptions::new()
                .dry_run(dry_run)
                .stop_on_error(stop_on_error)
                .timeout(timeout)
                .include_refused(include_refused)
                .base_uri(target);
            if let Some(marker) = redaction_marker {
                options = options.redaction_marker(marker);
            }
            if let Some(name) = request_id_header {
                options = options.request_id_header(name);
            }
            if let Some(rate) = rate {
                options = options.rate(rate);
            }
            for (name, value) in headers {
                options = options.header(name, value);
            }
            // Each line as its request is answered: an interrupted replay has said what it sent.
            // Output that cannot be written any more (a reader gone, a full disk) stops it
            // there: no request is sent unseen (found by a probe: `replay | head -1` sent every
            // row). The exit code tells what the replay did, whether or not its lines were read.
            let failed_output = std::sync::Arc::new(std::sync::Mutex::new(None));
            let failed = std::sync::Arc::clone(&failed_output);
            options = options.on_outcome(move |record, outcome| {
                let mut out = std::io::stdout().lock();
                match print_outcome(&mut out, record, outcome).and_then(|()| out.flush()) {
                    Ok(()) => std::ops::ControlFlow::Continue(()),
                    Err(error) => {
                        *failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
                        std::ops::ControlFlow::Break(())
                    }
                }
            });
            let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
            let report = store::replay(db, &filter.filter(), client, options).await?;
            let failed_output = failed_output
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            let code = if report.errors() > 0 {
                ExitCode::from(EXIT_REPLAY_FAILURES)
            } else {
                ExitCode::SUCCESS
            };
            match failed_output {
                // A reader gone: quietly, as every command.
                Some(error) if closed(&error) => return Ok(code),
                Some(error) => {
                    note(format_args!(
                        "cannot write the replay's lines ({error}): stopped after {} sent",
                        report.sent()
                    ));
                    return Ok(if report.errors() > 0 {
                        code
                    } else {
                        ExitCode::FAILURE
                    });
                }
                None => {}
            }
            written(print_replay_totals(&mut stdout.lock(), &report))?;
            return Ok(code);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Follows the trail for `tail -f`, by id. Several writers on one PostgreSQL or MySQL database
/// commit out of id order: an id passed over while later ones are committed is looked for
/// again at each poll, for `GAP_PATIENCE` (longer than a writer's transaction lasts: its
/// `insert_timeout` is 30 s by default), so that its row shows when it lands.
#[derive(Debug)]
struct Follower {
    /// The highest id committed, of any row, matching the filter or not.
    high: i64,
    /// Ids below `high` not committed yet, with when they were first passed over.
    gaps: BTreeMap<i64, Instant>,
}

/// Ids read per query while following.
const FOLLOW_PAGE: usize = 500;
/// How long an id passed over is looked for: a transaction that takes longer has failed, and
/// a rolled-back one leaves its ids unused.
const GAP_PATIENCE: Duration = Duration::from_secs(120);
/// The most ids looked for at once (a sequence that jumps far leaves no rows to wait for).
const MAX_GAPS: usize = 65_536;
/// How far below the highest id `tail -f` looks, when it starts, for ids not committed yet:
/// several writers' batches under way (a writer's backlog batch holds up to 8,192 rows).
const START_WINDOW: i64 = 16_384;

impl Follower {
    /// Follows what lands after the rows already there, and the ids of the last
    /// [`START_WINDOW`] below the highest that are not there yet: a transaction under way when
    /// `tail` starts commits them later (its row was missed).
    async fn start(db: &DatabaseConnection) -> Result<Self, BoxError> {
        let high = audit_log::Entity::find()
            .select_only()
            .column_as(audit_log::Column::Id.max(), "high")
            .into_tuple::<Option<i64>>()
            .one(db)
            .await?
            .flatten()
            .unwrap_or(0);
        let low = high.saturating_sub(START_WINDOW).max(0);
        let present: std::collections::HashSet<i64> = audit_log::Entity::find()
            .select_only()
            .column(audit_log::Column::Id)
            .filter(audit_log::Column::Id.gt(low))
            .filter(audit_log::Column::Id.lte(high))
            .into_tuple::<i64>()
            .all(db)
            .await?
            .into_iter()
            .collect();
        let now = Instant::now();
        let gaps = (low + 1..high)
            .filter(|id| !present.contains(id))
            .map(|id| (id, now))
            .collect();
        Ok(Follower { high, gaps })
    }

    /// Rows shown before following, which may have landed after `start`.
    fn shown(&mut self, rows: &[Model]) {
        self.high = rows.iter().map(|r| r.id).fold(self.high, i64::max);
        for row in rows {
            self.gaps.remove(&row.id);
        }
    }

    /// The rows matching `filter` that landed since the last poll, and whether more may be
    /// waiting (a full page of new ids).
    async fn poll(
        &mut self,
        db: &DatabaseConnection,
        filter: &AuditFilter,
    ) -> Result<(Vec<Model>, bool), BoxError> {
        let ids = || {
            audit_log::Entity::find()
                .select_only()
                .column(audit_log::Column::Id)
        };
        let now = Instant::now();
        self.gaps
            .retain(|_, since| now.duration_since(*since) < GAP_PATIENCE);
        let mut landed = Vec::new();
        let missed: Vec<i64> = self.gaps.keys().copied().collect();
        for chunk in missed.chunks(FOLLOW_PAGE) {
            let found: Vec<i64> = ids()
                .filter(audit_log::Column::Id.is_in(chunk.iter().copied()))
                .into_tuple()
                .all(db)
                .await?;
            for id in found {
                self.gaps.remove(&id);
                landed.push(id);
            }
        }
        let fresh: Vec<i64> = ids()
            .filter(audit_log::Column::Id.gt(self.high))
            .order_by_asc(audit_log::Column::Id)
            .limit(FOLLOW_PAGE as u64)
            .into_tuple()
            .all(db)
            .await?;
        let more = fresh.len() == FOLLOW_PAGE;
        for &id in &fresh {
            for passed in self.high.saturating_add(1)..id {
                if self.gaps.len() >= MAX_GAPS {
                    break;
                }
                self.gaps.insert(passed, now);
            }
            self.high = id;
        }
        landed.sort_unstable();
        landed.extend(fresh);
        let mut rows = Vec::with_capacity(landed.len());
        let condition = filter.condition(db.get_database_backend());
        for chunk in landed.chunks(FOLLOW_PAGE) {
            let page = audit_log::Entity::find()
                .filter(condition.clone())
                .filter(audit_log::Column::Id.is_in(chunk.iter().copied()))
                .order_by_asc(audit_log::Column::Id)
                .all(db)
                .await;
            match page {
                Ok(page) => rows.extend(page),
                Err(error) => {
                    // A row that does not decode is named (`store::get` says which and why),
                    // rather than the decoder's words.
                    for &id in chunk {
                        store::get(db, id).await?;
                    }
                    return Err(error.into());
                }
            }
        }
        Ok((rows, more))
    }
}

/// The file `export --output` writes: a new file beside it, renamed onto it once the export is
/// complete, so that an export that fails leaves the file it was to replace as it was. A path
/// that is not a regular file (`/dev/stdout`, a named pipe) is written directly.
#[derive(Debug)]
struct OutputFile {
    file: std::fs::File,
    /// The new file and the path it replaces; none when written directly.
    rename: Option<(PathBuf, PathBuf)>,
}

impl OutputFile {
    fn create(path: &Path) -> Result<Self, BoxError> {
        let cannot = |e: std::io::Error| format!("cannot create {}: {e}", path.display());
        let existing = std::fs::metadata(path).ok();
        let target = match &existing {
            Some(meta) if !meta.is_file() => {
                let file = std::fs::File::create(path).map_err(cannot)?;
                return Ok(OutputFile { file, rename: None });
            }
            // Through a symbolic link, the file it names is replaced, not the link.
            Some(_) => std::fs::canonicalize(path).map_err(cannot)?,
            None => path.to_owned(),
        };
        let mut name = std::ffi::OsString::from(".");
        name.push(target.file_name().unwrap_or(target.as_os_str()));
        name.push(format!(".{}.tmp", std::process::id()));
        let temp = target.with_file_name(name);
        let file = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
        {
            Ok(file) => file,
            // A file one may write, in a directory one may not add to: written in place, as
            // before, since nothing can be put beside it.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && existing.is_some() => {
                let file = std::fs::File::create(path).map_err(cannot)?;
                return Ok(OutputFile { file, rename: None });
            }
            Err(e) => return Err(cannot(e).into()),
        };
        let output = OutputFile {
            file,
            rename: Some((temp, target)),
        };
        if let (Some(meta), Some((temp, _))) = (existing, &output.rename) {
            std::fs::set_permissions(temp, meta.permissions()).map_err(cannot)?;
        }
        Ok(output)
    }

    /// Puts the complete file in place.
    fn persist(mut self) -> Result<(), BoxError> {
        if let Some((temp, target)) = &self.rename {
            // On disk before it replaces the previous file (a device or pipe has no disk).
            self.file.sync_all()?;
            std::fs::rename(temp, target)
                .map_err(|e| format!("cannot replace {}: {e}", target.display()))?;
            self.rename = None;
        }
        Ok(())
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if let Some((temp, _)) = &self.rename {
            // The export failed: its partial file goes, and the previous file stays. Failing to
            // remove it would only leave a dot file behind, after the error already reported.
            let _ = std::fs::remove_file(temp);
        }
    }
}

/// The verifier's keys: HMAC keys from the environment, the checkpoint key from the flag.
/// Writes `export` to the file named, or to stdout; `None` when the reader of the output went
/// away (a pipe closed by `head`).
async fn export_to<C: sea_orm::ConnectionTrait>(
    db: &C,
    export: Export,
    filter: &AuditFilter,
    output: Option<PathBuf>,
) -> Result<Option<ExportReport>, BoxError> {
    let Some(path) = output else {
        let mut out = tokio::io::stdout();
        return match export.to_async_writer(db, filter, &mut out).await {
            Ok(report) => Ok(Some(report)),
            Err(tower_audit::Error::Io(error)) if closed(&error) => Ok(None),
            Err(error) => Err(error.into()),
        };
    };
    let output = OutputFile::create(&path)?;
    let mut out = std::io::BufWriter::new(&output.file);
    let exported = match export.to_writer(db, filter, &mut out).await {
        Ok(report) => out.flush().map(|()| report).map_err(Into::into),
        Err(error) => Err(error),
    };
    match exported {
        Ok(report) => {
            drop(out);
            output.persist()?;
            Ok(Some(report))
        }
        // A pipe named as the file (`-o /dev/stdout | head -1`, a FIFO) whose reader has gone:
        // as for stdout. A regular file never says so.
        Err(tower_audit::Error::Io(error)) if closed(&error) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

#[cfg(feature = "integrity")]
fn keyring(
    checkpoint_public_key: Option<[u8; 32]>,
    accept_unsigned_purges: bool,
) -> Result<tower_audit::integrity::Keyring, BoxError> {
    // The library's `Config` error speaks of a layer's settings; here no layer is built.
    let plain = |error: tower_audit::Error| -> BoxError {
        match error {
            tower_audit::Error::Config(message) => message.into(),
            other => other.into(),
        }
    };
    let mut keys = tower_audit::integrity::Keyring::from_env().map_err(plain)?;
    if let Some(public) = checkpoint_public_key {
        keys = keys.checkpoint_key(public).map_err(plain)?;
    }
    if accept_unsigned_purges {
        keys = keys.accept_unsigned_purges();
    }
    Ok(keys)
}

/// The Ed25519 secret key that signs purge tombstones, from `TOWER_AUDIT_SIGNING_KEY` (hex).
#[cfg(feature = "integrity")]
fn signing_key() -> Result<Option<[u8; 32]>, BoxError> {
    let Ok(text) = std::env::var(SIGNING_KEY_ENV) else {
        return Ok(None);
    };
    let secret = key_from_hex(&text)
        .ok_or_else(|| format!("{SIGNING_KEY_ENV} is not an Ed25519 secret key: 64 hex digits"))?;
    Ok(Some(secret))
}

/// Where `purge` finds the key that signs its tombstones.
#[cfg(feature = "integrity")]
const SIGNING_KEY_ENV: &str = "TOWER_AUDIT_SIGNING_KEY";

/// One line per chain, as text or JSON; exit code 4 when a chain is broken, 5 when `chain` (the
/// one asked for) is not in the report, or when a time range (`ranged`) held no row to check.
#[cfg(feature = "integrity")]
fn print_verdict(
    report: &tower_audit::integrity::VerifyReport,
    chain: Option<&str>,
    ranged: bool,
    json: bool,
) -> Result<ExitCode, BoxError> {
    // The exit code is the verdict, whether or not the lines were read.
    written(write_verdict(&mut std::io::stdout().lock(), report, json))?;
    if let Some(name) = chain
        && !report.chains.iter().any(|c| c.chain_id == name)
    {
        note(format_args!("no hash chain named {name:?}"));
        return Ok(ExitCode::from(EXIT_NO_SUCH_CHAIN));
    }
    if report.chains.is_empty() {
        // Every row and checkpoint deleted looks like this too: not a success to report.
        note(format_args!("no hash chain found"));
        return Ok(ExitCode::from(EXIT_NO_SUCH_CHAIN));
    }
    if ranged && report.is_intact() && report.chains.iter().all(|c| c.rows == 0) {
        // A range before the first row, or one whose rows were all deleted: nothing was
        // checked, which must not pass for an intact trail.
        note(format_args!(
            "no chained row in the time range: nothing was verified (a wider range, or none, checks the chains)"
        ));
        return Ok(ExitCode::from(EXIT_NO_SUCH_CHAIN));
    }
    Ok(if report.is_intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_CHAIN_BROKEN)
    })
}

/// What `replay` sent, one line a record, and the totals.
fn print_outcome(
    out: &mut impl Write,
    record: &tower_audit::store::ReplayRecord,
    outcome: &ReplayOutcome,
) -> std::io::Result<()> {
    let what = match outcome {
        ReplayOutcome::Sent { status, recorded } => {
            let recorded = recorded.map_or("-".to_owned(), |s| s.to_string());
            let mark = if outcome.is_error() { "  MISMATCH" } else { "" };
            format!("sent {} (recorded {recorded}){mark}", status.as_u16())
        }
        ReplayOutcome::WouldSend => "would send".to_owned(),
        ReplayOutcome::Skipped { reason } => format!("skipped: {reason}"),
        ReplayOutcome::Failed { error } => format!("FAILED: {error}"),
        _ => "unknown outcome".to_owned(),
    };
    writeln!(
        out,
        "#{} {} {}: {}",
        record.id,
        printable(&record.method),
        printable(&record.path),
        printable(&what)
    )
}

/// The totals line after `replay`'s lines.
fn print_replay_totals(out: &mut impl Write, report: &ReplayReport) -> std::io::Result<()> {
    writeln!(
        out,
        "{} sent, {} skipped, {} failed or different{}",
        report.sent(),
        report.skipped(),
        report.errors(),
        if report.stopped_early {
            " (stopped at the first)"
        } else {
            ""
        }
    )?;
    out.flush()
}

/// The statistics, as `stats` prints them.
fn print_stats(out: &mut impl Write, stats: &AuditStats) -> std::io::Result<()> {
    writeln!(out, "requests: {}", stats.total)?;
    if let Some(latency) = stats.latency {
        writeln!(
            out,
            "latency:  p50 {} ms, p95 {} ms, p99 {} ms",
            latency_ms(latency.p50),
            latency_ms(latency.p95),
            latency_ms(latency.p99)
        )?;
    }
    writeln!(out, "by status class:")?;
    for (class, n) in &stats.by_status_class {
        let class = class.map_or("none".to_owned(), |c| format!("{c}xx"));
        writeln!(out, "  {class:<8} {n:>8}")?;
    }
    writeln!(out, "by route:")?;
    for (route, n) in &stats.by_route {
        writeln!(out, "  {:<30} {n:>8}", optional(route.as_deref()))?;
    }
    writeln!(out, "by user:")?;
    for (user, n) in &stats.by_user {
        writeln!(out, "  {:<30} {n:>8}", optional(user.as_deref()))?;
    }
    out.flush()
}

/// The verdict, one line (or JSON object) per chain.
#[cfg(feature = "integrity")]
fn write_verdict(
    out: &mut impl Write,
    report: &tower_audit::integrity::VerifyReport,
    json: bool,
) -> std::io::Result<()> {
    if json {
        for chain in &report.chains {
            let found = chain.first_break.as_ref().map(|b| {
                serde_json::json!({
                    "kind": format!("{:?}", b.kind),
                    "chain_seq": b.chain_seq,
                    "id": b.id,
                    "detail": b.detail,
                })
            });
            // The chain's end, to keep outside the database and give back as `--anchor`.
            let anchor = chain.anchor().map(|anchor| anchor.to_string());
            let line = serde_json::json!({
                "chain_id": chain.chain_id,
                "intact": chain.first_break.is_none(),
                "rows": chain.rows,
                "last_seq": chain.last_seq,
                "last_hash": chain.last_hash,
                "anchor": anchor,
                "checkpoint_seq": chain.checkpoint_seq,
                "break": found,
            });
            writeln!(out, "{line}")?;
        }
    } else {
        write!(out, "{report}")?;
    }
    out.flush()
}

/// Rows as NDJSON or as an aligned table.
fn print_rows(out: &mut impl Write, rows: &[Model], json: bool) -> std::io::Result<()> {
    if json {
        for row in rows {
            print_row_line(out, row, true)?;
        }
        return out.flush();
    }
    let cells: Vec<[String; 8]> = rows.iter().map(cells).collect();
    let header = [
        "id",
        "occurred_at",
        "method",
        "status",
        "ms",
        "user",
        "path",
        "error",
    ];
    let mut widths = header.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    write_cells(out, &header.map(str::to_owned), &widths)?;
    for row in &cells {
        write_cells(out, row, &widths)?;
    }
    out.flush()
}

fn print_row_line(out: &mut impl Write, row: &Model, json: bool) -> std::io::Result<()> {
    if json {
        let mut line = Vec::new();
        Export::new(ExportFormat::Ndjson).write_row(row, &mut line)?;
        return out.write_all(&line);
    }
    // Without the separators of empty cells at the end (a row without an error), which left
    // trailing spaces; the other cells are where they were.
    let cells = cells(row);
    let filled = cells
        .iter()
        .rposition(|cell| !cell.is_empty())
        .map_or(0, |i| i + 1);
    writeln!(out, "{}", cells[..filled].join("  "))
}

fn write_cells(
    out: &mut impl Write,
    cells: &[String; 8],
    widths: &[usize; 8],
) -> std::io::Result<()> {
    let mut line = String::new();
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if i + 1 == cells.len() {
            line.push_str(cell);
        } else {
            line.push_str(&format!("{cell:<width$}  "));
        }
    }
    writeln!(out, "{}", line.trim_end())
}

/// A latency in milliseconds: to a tenth, and under one to the microsecond (`0.042`), where a
/// tenth read `0.0` for most requests a fast service answers.
fn latency_ms(micros: impl Into<f64>) -> String {
    let micros = micros.into();
    let ms = micros / 1000.0;
    if micros < 1000.0 {
        format!("{ms:.3}")
    } else {
        format!("{ms:.1}")
    }
}

/// An optional value as a cell, [`printable`]: `-` for none, and a stored `-` as `\u{2d}`, so
/// that a user named `-` is not read as no user.
fn optional(value: Option<&str>) -> std::borrow::Cow<'_, str> {
    match value {
        None => "-".into(),
        Some("-") => "\\u{2d}".into(),
        Some(value) => printable(value),
    }
}

/// A row's table cells, each [`printable`]: a line break or escape sequence stored in a cell
/// would split the row or rewrite the screen.
fn cells(row: &Model) -> [String; 8] {
    let path = match &row.query {
        Some(query) if !query.is_empty() => format!("{}?{query}", row.path),
        _ => row.path.clone(),
    };
    let mut error = row.error.clone().unwrap_or_default();
    // Cut before it is escaped, so that no escape is cut in half.
    if error.chars().count() > 60 {
        error = error.chars().take(59).chain(['…']).collect();
    }
    let shown = |text: &str| printable(text).into_owned();
    [
        row.id.to_string(),
        row.occurred_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        shown(&row.method),
        row.status.map_or("-".to_owned(), |s| s.to_string()),
        latency_ms(row.latency_us as f64),
        optional(row.user_id.as_deref()).into_owned(),
        shown(&path),
        shown(&error),
    ]
}
