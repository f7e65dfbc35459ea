//! [`AuditFilter`]: which rows of `audit_log` a query, an export, a purge or a replay sees.

use std::ops::RangeInclusive;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, LikeExpr, SimpleExpr};
use sea_orm::{ColumnTrait, Condition, DbBackend};

use crate::entity::audit_log::Column;

/// The escape character of the LIKE patterns built here. Not `\`, which MySQL string literals
/// also treat as an escape.
const LIKE_ESCAPE: char = '!';

/// A set of conditions on `audit_log` rows, all of which must hold.
///
/// Built with chained setters; an empty filter matches every row.
///
/// | setter | condition | index used |
/// | --- | --- | --- |
/// | [`since`](Self::since), [`until`](Self::until) | `since <= occurred_at < until` | `occurred_at` |
/// | [`user`](Self::user) | `user_id = ?` | `(user_id, occurred_at)` |
/// | [`tenant`](Self::tenant) | `tenant_id = ?` | `(tenant_id, occurred_at)` |
/// | [`route`](Self::route) | `route = ?` | `(route, occurred_at)` |
/// | [`status`](Self::status), [`status_range`](Self::status_range), [`status_class`](Self::status_class) | `status BETWEEN ? AND ?` | `(status, occurred_at)` |
/// | [`client_ip`](Self::client_ip) | `client_ip = ?` | `(client_ip, occurred_at)` |
/// | [`request_id`](Self::request_id) | `request_id = ?` | `request_id` |
/// | [`method`](Self::method), [`methods`](Self::methods) | `method IN (?)` | — |
/// | [`path_prefix`](Self::path_prefix) | `path LIKE 'prefix%'` | — |
/// | [`has_error`](Self::has_error) | `error IS [NOT] NULL` | — |
/// | [`body_contains`](Self::body_contains) | `request_body LIKE '%text%'` | — |
///
/// Conditions without an index of their own are checked row by row: while the query walks the
/// `occurred_at` index in its sort order where the planner chooses so, else over the table
/// (PostgreSQL pages by path prefix or body text that way, and counts and stats on them scan
/// on every backend).
///
/// The `=` and `IN` matches are exact on every backend: `user("alice")` never selects the
/// rows of `Alice`, `alicé` or `alice `. On MySQL/MariaDB, whose `utf8mb4_unicode_ci` columns
/// compare without case, accents or trailing spaces, each adds `column = CAST(? AS BINARY)`
/// beside `column = ?`, which still uses the index. Methods are matched in upper case (see
/// [`method`](Self::method)).
///
/// LIKE patterns are escaped, so `%` and `_` in the text match themselves; whether they match
/// case-insensitively follows the backend (SQLite: ASCII case-insensitive; MySQL's
/// `utf8mb4_unicode_ci`: without case or accents, `/é` matches `/E`; PostgreSQL:
/// case-sensitive), so a legal hold on a path prefix or body text keeps different rows per
/// backend. A NUL in any text is looked for as the writer stores it, U+FFFD.
///
/// # Example
///
/// ```
/// use tower_audit::store::AuditFilter;
///
/// let since = chrono::Utc::now() - chrono::Duration::hours(1);
/// let failed_orders = AuditFilter::new()
///     .since(since)
///     .route("/orders/{id}")
///     .status_class(5)
///     .user("alice");
/// # let _ = failed_orders;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    user: Option<String>,
    tenant: Option<String>,
    methods: Vec<String>,
    path_prefix: Option<String>,
    route: Option<String>,
    status: Option<(i32, i32)>,
    client_ip: Option<String>,
    request_id: Option<String>,
    has_error: Option<bool>,
    body_contains: Option<String>,
    /// Rows whose id is at most this: those stored when a replay started.
    max_id: Option<i64>,
}

impl AuditFilter {
    /// A filter that matches every row.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rows that occurred at or after `at`. Rows are kept to the microsecond: a bound between
    /// two is taken as the next one, so that every backend selects the same rows (PostgreSQL
    /// and MySQL would cut its nanoseconds, and take in the rows of the microsecond before).
    #[must_use]
    pub fn since(mut self, at: DateTime<Utc>) -> Self {
        self.since = Some(up_to_a_microsecond(at));
        self
    }

    /// Rows that occurred strictly before `at` (a bound between two microseconds is taken as
    /// the next one, as in [`since`](Self::since)).
    #[must_use]
    pub fn until(mut self, at: DateTime<Utc>) -> Self {
        self.until = Some(up_to_a_microsecond(at));
        self
    }

    /// Rows of this user (`user_id`).
    #[must_use]
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(as_stored(user.into()));
        self
    }

    /// Rows of this tenant (`tenant_id`).
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(as_stored(tenant.into()));
        self
    }

    /// Rows with this HTTP method (added to those already allowed).
    ///
    /// The method is upper-cased, so `method("post")` selects the `POST` rows, as
    /// `tower-audit --method post` does. The writer stores the method the server saw, and
    /// servers see the standard methods in upper case; a method is case-sensitive on the wire,
    /// so a lower-case one is another, nonstandard method, which this filter does not select.
    #[must_use]
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.methods
            .push(as_stored(method.into().to_ascii_uppercase()));
        self
    }

    /// Rows with any of these HTTP methods (added to those already allowed), upper-cased as
    /// with [`method`](Self::method).
    #[must_use]
    pub fn methods<I, M>(mut self, methods: I) -> Self
    where
        I: IntoIterator<Item = M>,
        M: Into<String>,
    {
        self.methods.extend(
            methods
                .into_iter()
                .map(|m| as_stored(m.into().to_ascii_uppercase())),
        );
        self
    }

    /// Rows whose path starts with `prefix`.
    #[must_use]
    pub fn path_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.path_prefix = Some(as_stored(prefix.into()));
        self
    }

    /// Rows of this matched route template, such as `/orders/{id}`.
    #[must_use]
    pub fn route(mut self, route: impl Into<String>) -> Self {
        self.route = Some(as_stored(route.into()));
        self
    }

    /// Rows with exactly this status.
    #[must_use]
    pub fn status(self, status: u16) -> Self {
        self.status_range(status..=status)
    }

    /// Rows with a status in `range` (inclusive).
    #[must_use]
    pub fn status_range(mut self, range: RangeInclusive<u16>) -> Self {
        self.status = Some((i32::from(*range.start()), i32::from(*range.end())));
        self
    }

    /// Rows whose status is in a class: `5` for 5xx, `4` for 4xx, and so on.
    #[must_use]
    pub fn status_class(self, class: u8) -> Self {
        let first = u16::from(class) * 100;
        self.status_range(first..=first + 99)
    }

    /// Rows from this client address (`client_ip`).
    ///
    /// An address is matched in the form the writer stores it: `2001:DB8::1` and
    /// `2001:0db8:0:0:0:0:0:1` are `2001:db8::1`, the IPv4-mapped `::ffff:10.1.2.3` is
    /// `10.1.2.3`. Text that is not one address (a CIDR range, which the `=` lookup on its
    /// index cannot match, or a typo) is compared as given, so it matches no row the writer
    /// made; parse it first ([`std::net::IpAddr`]) to refuse it, as `tower-audit --client-ip`
    /// does.
    #[must_use]
    pub fn client_ip(mut self, ip: impl Into<String>) -> Self {
        let ip = ip.into();
        self.client_ip = Some(canonical_ip(&ip).unwrap_or(ip));
        self
    }

    /// The rows of this request id.
    #[must_use]
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(as_stored(id.into()));
        self
    }

    /// Rows with (`true`) or without (`false`) an `error`.
    #[must_use]
    pub fn has_error(mut self, present: bool) -> Self {
        self.has_error = Some(present);
        self
    }

    /// Rows whose stored request body contains `text`.
    #[must_use]
    pub fn body_contains(mut self, text: impl Into<String>) -> Self {
        self.body_contains = Some(as_stored(text.into()));
        self
    }

    /// The lower time bound, if any.
    pub fn since_bound(&self) -> Option<DateTime<Utc>> {
        self.since
    }

    /// The upper time bound (exclusive), if any.
    pub fn until_bound(&self) -> Option<DateTime<Utc>> {
        self.until
    }

    /// This filter with its methods limited to `allowed`: those of its own methods that are
    /// among them (in any case), or all of `allowed` when it names none; `None` when no method
    /// is left, as no row can match then.
    ///
    /// [`method`](Self::method) adds to the allowed methods, so a replay cannot narrow a filter
    /// with it: `DELETE` plus the state-changing methods would allow `POST` again.
    pub(crate) fn within_methods(&self, allowed: &[&str]) -> Option<AuditFilter> {
        let methods: Vec<String> = allowed
            .iter()
            .filter(|allowed| {
                self.methods.is_empty()
                    || self.methods.iter().any(|m| m.eq_ignore_ascii_case(allowed))
            })
            .map(|allowed| (*allowed).to_owned())
            .collect();
        (!methods.is_empty()).then(|| AuditFilter {
            methods,
            ..self.clone()
        })
    }

    /// The filter, kept to rows whose id is at most `id`.
    pub(crate) fn up_to_id(self, id: i64) -> AuditFilter {
        AuditFilter {
            max_id: Some(id),
            ..self
        }
    }

    /// Whether a condition has an index of its own (other than the time range's).
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    pub(crate) fn has_indexed_lookup(&self) -> bool {
        self.user.is_some()
            || self.tenant.is_some()
            || self.route.is_some()
            || self.status.is_some()
            || self.client_ip.is_some()
            || self.request_id.is_some()
    }

    /// The rows that match every condition but the time range, and fall outside it; `None`
    /// without a time range. An export with proof completes its chains with these.
    pub(crate) fn outside_time_range(&self, backend: DbBackend) -> Option<Condition> {
        let mut outside = Condition::any();
        if let Some(since) = self.since {
            outside = outside.add(Column::OccurredAt.lt(time(backend, since)));
        }
        if let Some(until) = self.until {
            outside = outside.add(Column::OccurredAt.gte(time(backend, until)));
        }
        if self.since.is_none() && self.until.is_none() {
            return None;
        }
        let others = AuditFilter {
            since: None,
            until: None,
            ..self.clone()
        };
        Some(others.condition(backend).add(outside))
    }

    /// The SQL condition of this filter on `backend`: on MySQL/MariaDB it has the binary
    /// comparisons that make the `=` and `IN` matches exact (see above).
    ///
    /// ```
    /// use sea_orm::{DbBackend, EntityTrait, QueryFilter, QueryTrait};
    /// use tower_audit::entity::audit_log::Entity;
    /// use tower_audit::store::AuditFilter;
    ///
    /// let filter = AuditFilter::new().user("alice");
    /// let sql = Entity::find()
    ///     .filter(filter.condition(DbBackend::MySql))
    ///     .build(DbBackend::MySql)
    ///     .to_string();
    /// assert!(sql.contains("`user_id` = CAST('alice' AS BINARY)"), "{sql}");
    /// ```
    pub fn condition(&self, backend: DbBackend) -> Condition {
        self.build(backend, false)
    }

    /// The condition, made two-valued: a row whose column is NULL does not match (rather than
    /// giving NULL), so that `NOT condition` holds for it. Used for legal holds.
    pub(crate) fn condition_not_null(&self, backend: DbBackend) -> Condition {
        self.build(backend, true)
    }

    fn build(&self, backend: DbBackend, two_valued: bool) -> Condition {
        let guard = |column: Column, expr: SimpleExpr| -> SimpleExpr {
            if two_valued {
                column.is_not_null().and(expr)
            } else {
                expr
            }
        };
        let mut all = Condition::all();
        if let Some(since) = self.since {
            all = all.add(Column::OccurredAt.gte(time(backend, since)));
        }
        if let Some(until) = self.until {
            all = all.add(Column::OccurredAt.lt(time(backend, until)));
        }
        if let Some(id) = self.max_id {
            all = all.add(Column::Id.lte(id));
        }
        let equals = [
            (Column::UserId, &self.user),
            (Column::TenantId, &self.tenant),
            (Column::Route, &self.route),
            (Column::ClientIp, &self.client_ip),
            (Column::RequestId, &self.request_id),
        ];
        let mysql = backend == DbBackend::MySql;
        for (column, value) in equals {
            if let Some(value) = value {
                let mut equal = column.eq(value.as_str());
                if mysql {
                    // The first comparison finds the candidates through the index, under the
                    // table's collation; the binary one keeps only the exact value.
                    equal = equal.and(Expr::col(column).eq(binary(value)));
                }
                all = all.add(guard(column, equal));
            }
        }
        if !self.methods.is_empty() {
            let methods = self.methods.iter().map(String::as_str);
            all = all.add(if mysql {
                // No index on `method`: the binary comparison alone.
                Expr::col(Column::Method).is_in(methods.map(binary))
            } else {
                Column::Method.is_in(methods)
            });
        }
        if let Some(prefix) = &self.path_prefix {
            let pattern = format!("{}%", escape_like(prefix));
            all = all.add(Column::Path.like(LikeExpr::new(pattern).escape(LIKE_ESCAPE)));
        }
        if let Some((low, high)) = self.status {
            all = all.add(guard(Column::Status, Column::Status.between(low, high)));
        }
        match self.has_error {
            Some(true) => all = all.add(Column::Error.is_not_null()),
            Some(false) => all = all.add(Column::Error.is_null()),
            None => {}
        }
        if let Some(text) = &self.body_contains {
            let pattern = format!("%{}%", escape_like(text));
            let like =
                Expr::col(Column::RequestBody).like(LikeExpr::new(pattern).escape(LIKE_ESCAPE));
            all = all.add(guard(Column::RequestBody, like));
        }
        all
    }
}

/// `text` as the writer stores text: a NUL as U+FFFD (no backend compares one alike: SQLite's
/// `LIKE` stops at it and matched every body, PostgreSQL refuses it, MariaDB matched none;
/// found by a probe).
fn as_stored(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

/// `text` as the writer stores a client address (`IpAddr`'s text form, an IPv4-mapped address as
/// IPv4), if it is one.
fn canonical_ip(text: &str) -> Option<String> {
    let ip: std::net::IpAddr = text.trim().parse().ok()?;
    Some(ip.to_canonical().to_string())
}

/// A time as a query binds it on `backend`: on MySQL/MariaDB as a `DATETIME`, which the
/// `occurred_at` column is. sqlx binds a `DateTime<Utc>` there as a `TIMESTAMP`, whose range
/// ends on 2038-01-19 and starts in 1970: a bound outside it (`until` 2100, `since` 1960)
/// compared as NULL, and the query matched nothing.
///
/// Kept within years 1 to 9999, which every backend can hold (found by a probe: a bound before
/// year 0, `--since 1000000d`, failed on MariaDB with a protocol error, errors on PostgreSQL,
/// and compared as text on SQLite): rows lie within them, so the same rows match.
pub(crate) fn time(backend: DbBackend, at: DateTime<Utc>) -> sea_orm::Value {
    let first = DateTime::<Utc>::from_naive_utc_and_offset(
        chrono::NaiveDate::from_ymd_opt(1, 1, 1)
            .and_then(|day| day.and_hms_opt(0, 0, 0))
            .unwrap_or_default(),
        Utc,
    );
    let last = DateTime::<Utc>::from_naive_utc_and_offset(
        chrono::NaiveDate::from_ymd_opt(9999, 12, 31)
            .and_then(|day| day.and_hms_micro_opt(23, 59, 59, 999_999))
            .unwrap_or_default(),
        Utc,
    );
    let at = at.clamp(first, last);
    match backend {
        DbBackend::MySql => at.naive_utc().into(),
        _ => at.into(),
    }
}

/// `at`, or the next whole microsecond when it falls between two: the same rows are at or
/// after either, and before either (rows are written to the microsecond). Not past the last
/// microsecond of 9999: SQLite compares times as text, and year 10000's sorted before 2026's
/// (`--until 9999-12-31T23:59:59.9999999Z` matched nothing).
pub(crate) fn up_to_a_microsecond(at: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::Datelike as _;
    let past = at.timestamp_subsec_nanos() % 1_000;
    if past == 0 {
        return at;
    }
    let up = at
        .checked_add_signed(chrono::TimeDelta::nanoseconds(i64::from(1_000 - past)))
        .unwrap_or(at);
    if up.year() > 9999 && at.year() <= 9999 {
        return at - chrono::TimeDelta::nanoseconds(i64::from(past));
    }
    up
}

/// `CAST(? AS BINARY)`: compared with it, a MySQL text column compares its bytes, so case,
/// accents and trailing spaces count.
fn binary(value: &str) -> SimpleExpr {
    Func::cast_as(value, Alias::new("BINARY")).into()
}

/// `text` with LIKE's wildcards and the escape character escaped.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_') || c == LIKE_ESCAPE {
            out.push(LIKE_ESCAPE);
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writer stores addresses in one form: a filter given another spelling of the same
    /// address matched nothing.
    #[test]
    fn client_addresses_are_matched_in_the_form_the_writer_stores() {
        for (given, stored) in [
            ("2001:DB8::1", "2001:db8::1"),
            ("2001:0db8:0:0:0:0:0:1", "2001:db8::1"),
            ("::ffff:10.1.2.3", "10.1.2.3"),
            (" 10.1.2.3 ", "10.1.2.3"),
            ("10.1.2.3", "10.1.2.3"),
        ] {
            assert_eq!(
                AuditFilter::new().client_ip(given),
                AuditFilter::new().client_ip(stored),
                "{given}"
            );
            assert_eq!(
                AuditFilter::new().client_ip(given).client_ip.as_deref(),
                Some(stored)
            );
        }
        // Not an address: kept as given, matching no row the writer made.
        let range = AuditFilter::new().client_ip("10.0.0.0/8");
        assert_eq!(range.client_ip.as_deref(), Some("10.0.0.0/8"));
    }

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(escape_like("50%_off!"), "50!%!_off!!");
    }

    #[test]
    fn within_methods_narrows_and_never_widens() {
        const ALLOWED: [&str; 2] = ["POST", "DELETE"];
        let methods = |filter: Option<AuditFilter>| filter.map(|f| f.methods);
        assert_eq!(
            methods(AuditFilter::new().within_methods(&ALLOWED)),
            Some(vec!["POST".to_owned(), "DELETE".to_owned()])
        );
        assert_eq!(
            methods(AuditFilter::new().method("delete").within_methods(&ALLOWED)),
            Some(vec!["DELETE".to_owned()])
        );
        assert_eq!(
            methods(AuditFilter::new().method("GET").within_methods(&ALLOWED)),
            None
        );
    }

    #[test]
    fn status_class_is_a_range() {
        let filter = AuditFilter::new().status_class(5);
        assert_eq!(filter.status, Some((500, 599)));
    }
}
