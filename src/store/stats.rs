//! Aggregates over a window: requests by route, status class and user, and latency percentiles.

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    Condition, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, IdenStatic,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::AuditFilter;
use super::stored::undecodable;
use crate::Error;
use crate::entity::audit_log::{Column, Entity};

/// What [`stats`] computes and how much it may fetch.
///
/// | setting | default |
/// | --- | --- |
/// | `top` | 20 routes and 20 users ([`MAX_ROWS`](super::MAX_ROWS) at most) |
/// | `max_samples` | 100 000 latencies fetched at most to compute percentiles in Rust |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatsOptions {
    top: u64,
    max_samples: u64,
}

impl Default for StatsOptions {
    fn default() -> Self {
        StatsOptions {
            top: 20,
            max_samples: 100_000,
        }
    }
}

impl StatsOptions {
    /// How many of the busiest routes and users to list.
    #[must_use]
    pub fn top(mut self, n: u64) -> Self {
        // A `LIMIT` binds as a signed 64-bit integer.
        self.top = Ord::min(n, super::MAX_ROWS);
        self
    }

    /// The most latencies fetched into memory when the backend has no percentile function.
    /// Above it, each percentile is read with one `ORDER BY latency_us LIMIT 2 OFFSET k` query.
    #[must_use]
    pub fn max_samples(mut self, n: u64) -> Self {
        self.max_samples = n;
        self
    }
}

/// A status class: `2` for 2xx, `5` for 5xx; `None` counts rows without a status.
pub type StatusClass = Option<u16>;

/// Latency percentiles in microseconds, interpolated like PostgreSQL's `percentile_cont`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatencyPercentiles {
    /// The median.
    pub p50: f64,
    /// The 95th percentile.
    pub p95: f64,
    /// The 99th percentile.
    pub p99: f64,
}

/// Aggregates of the rows matching a filter.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditStats {
    /// Matching rows.
    pub total: u64,
    /// The busiest routes with their request counts, busiest first (`None`: no route). Routes
    /// are told apart by their exact text on every backend (`/orders` and `/Orders` are two,
    /// on MySQL too); routes of equal counts come by their bytes, and no route after them.
    pub by_route: Vec<(Option<String>, u64)>,
    /// Requests per status class, by class.
    pub by_status_class: Vec<(StatusClass, u64)>,
    /// The busiest users with their request counts, busiest first (`None`: anonymous). Users
    /// are told apart, and ordered when their counts are equal, as routes are.
    pub by_user: Vec<(Option<String>, u64)>,
    /// Latency percentiles; `None` when no row matches.
    pub latency: Option<LatencyPercentiles>,
}

#[derive(Debug, FromQueryResult)]
struct Group {
    key: Option<String>,
    n: i64,
}

#[derive(Debug, FromQueryResult)]
struct StatusGroup {
    status: Option<i32>,
    n: i64,
}

/// Aggregates of the rows matching `filter` (give it a time range: the window).
///
/// Counts are `GROUP BY` queries; percentiles use `percentile_cont` on PostgreSQL and are
/// computed in Rust elsewhere (see [`StatsOptions::max_samples`]). A value its column cannot
/// hold (SQLite checks no types: `'abc'` planted in `status`; no writer stores one) counts in
/// `total` and in no group: not in a status class, route, user or the latencies.
///
/// # Example
///
/// ```no_run
/// # async fn run(db: sea_orm::DatabaseConnection) -> Result<(), tower_audit::Error> {
/// use tower_audit::store::{self, AuditFilter, StatsOptions};
///
/// let window = AuditFilter::new().since(chrono::Utc::now() - chrono::Duration::hours(24));
/// let stats = store::stats(&db, &window, StatsOptions::default()).await?;
/// println!("{} requests, p99 {:?}", stats.total, stats.latency.map(|l| l.p99));
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`Error::Database`] when a query fails.
pub async fn stats<C: ConnectionTrait>(
    db: &C,
    filter: &AuditFilter,
    options: StatsOptions,
) -> Result<AuditStats, Error> {
    let condition = filter.condition(db.get_database_backend());
    let total = Entity::find().filter(condition.clone()).count(db).await?;
    let by_route = top_groups(db, &condition, Column::Route, options.top).await?;
    let by_user = top_groups(db, &condition, Column::UserId, options.top).await?;

    let statuses = |condition: Condition| {
        Entity::find()
            .select_only()
            .column(Column::Status)
            .column_as(Expr::col(Column::Id).count(), "n")
            .filter(condition)
            .group_by(Column::Status)
            .into_model::<StatusGroup>()
    };
    let statuses = match statuses(condition.clone()).all(db).await {
        Ok(statuses) => statuses,
        Err(error) if undecodable(&error) => {
            let holding = holding(&condition, Column::Status, "'integer', 'null'");
            statuses(holding).all(db).await?
        }
        Err(error) => return Err(error.into()),
    };
    let mut by_status_class: Vec<(StatusClass, u64)> = Vec::new();
    for group in statuses {
        let class = group.status.map(|s| (s / 100) as u16);
        match by_status_class.iter_mut().find(|(c, _)| *c == class) {
            Some((_, n)) => *n += group.n as u64,
            None => by_status_class.push((class, group.n as u64)),
        }
    }
    by_status_class.sort();

    let latency = if total == 0 {
        None
    } else {
        match latency(db, &condition, total, options.max_samples).await {
            Ok(latency) => Some(latency),
            Err(Error::Database(error)) if undecodable(&error) => {
                let holding = holding(&condition, Column::LatencyUs, "'integer'");
                let total = Entity::find().filter(holding.clone()).count(db).await?;
                if total == 0 {
                    None
                } else {
                    Some(latency(db, &holding, total, options.max_samples).await?)
                }
            }
            Err(error) => return Err(error),
        }
    };
    Ok(AuditStats {
        total,
        by_route,
        by_status_class,
        by_user,
        latency,
    })
}

/// `condition`, narrowed to the rows whose `column` holds a value of one of `types` (SQLite's
/// `typeof` names), after a query failed to decode it: SQLite keeps any value in any column,
/// and one planted there that the column's type cannot hold (no writer stores one) then counts
/// in no group. Reached on SQLite only: other backends refuse such a value.
fn holding(condition: &Condition, column: Column, types: &str) -> Condition {
    let typeof_ = format!("typeof(\"{}\") IN ({types})", column.as_str());
    condition.clone().add(Expr::cust(typeof_))
}

async fn top_groups<C: ConnectionTrait>(
    db: &C,
    condition: &Condition,
    column: Column,
    top: u64,
) -> Result<Vec<(Option<String>, u64)>, Error> {
    // Groups are exact values on every backend, and ties in count come in one order: named
    // groups by their bytes, then the one without a value. MySQL's text columns compare without
    // case, accents or trailing spaces (`alice`, `Alice`, `alicé`, `alice ` would be one group,
    // where `query --user` tells them apart): there the group is the value's bytes, and its
    // name the group's one value. PostgreSQL orders text by the database's collation, and puts
    // NULL last where SQLite and MySQL put it first.
    let name = column.as_str();
    let (key, group, order) = match db.get_database_backend() {
        DbBackend::MySql => (
            format!("MIN(`{name}`)"),
            format!("CAST(`{name}` AS BINARY)"),
            format!("CAST(MIN(`{name}`) AS BINARY)"),
        ),
        DbBackend::Postgres => (
            format!("\"{name}\""),
            format!("\"{name}\""),
            format!("\"{name}\" COLLATE \"C\""),
        ),
        _ => (
            format!("\"{name}\""),
            format!("\"{name}\""),
            format!("\"{name}\""),
        ),
    };
    let groups = |condition: Condition, key: &str| {
        Entity::find()
            .select_only()
            .column_as(Expr::cust(key.to_owned()), "key")
            .column_as(Expr::col(Column::Id).count(), "n")
            .filter(condition)
            .group_by(Expr::cust(group.clone()))
            .order_by_desc(Expr::col(Column::Id).count())
            .order_by_asc(Expr::cust(format!("{key} IS NULL")))
            .order_by_asc(Expr::cust(order.clone()))
            .limit(top)
            .into_model::<Group>()
    };
    let groups = match groups(condition.clone(), &key).all(db).await {
        Ok(groups) => groups,
        Err(error) if undecodable(&error) => {
            // SQLite (no other backend stores such a value): a blob, a number, or text that is
            // no UTF-8 (found by a probe: one such row stopped `stats`). The groups' values are
            // read as hex, and those that are no UTF-8 text count in no group.
            let hex = format!("CASE WHEN \"{name}\" IS NULL THEN NULL ELSE hex(\"{name}\") END");
            let groups = groups(holding(condition, column, "'text', 'null'"), &hex)
                .all(db)
                .await?;
            return Ok(groups
                .into_iter()
                .filter_map(|g| match g.key {
                    None => Some((None, g.n as u64)),
                    Some(hex) => {
                        let bytes = super::stored::decode_hex(&hex)?;
                        Some((Some(String::from_utf8(bytes).ok()?), g.n as u64))
                    }
                })
                .collect());
        }
        Err(error) => return Err(error.into()),
    };
    Ok(groups.into_iter().map(|g| (g.key, g.n as u64)).collect())
}

const PERCENTILES: [f64; 3] = [0.50, 0.95, 0.99];

async fn latency<C: ConnectionTrait>(
    db: &C,
    condition: &Condition,
    total: u64,
    max_samples: u64,
) -> Result<LatencyPercentiles, Error> {
    let [p50, p95, p99] = if db.get_database_backend() == DbBackend::Postgres {
        postgres_percentiles(db, condition).await?
    } else if total <= max_samples {
        let mut samples: Vec<i64> = Entity::find()
            .select_only()
            .column(Column::LatencyUs)
            .filter(condition.clone())
            .limit(max_samples)
            .into_tuple()
            .all(db)
            .await?;
        samples.sort_unstable();
        PERCENTILES.map(|p| interpolate(p, samples.len() as u64, |i| samples[i as usize]))
    } else {
        let mut out = [0.0; 3];
        for (slot, p) in out.iter_mut().zip(PERCENTILES) {
            let (low, _) = rank(p, total);
            let pair: Vec<i64> = Entity::find()
                .select_only()
                .column(Column::LatencyUs)
                .filter(condition.clone())
                .order_by_asc(Column::LatencyUs)
                .limit(2)
                .offset(low)
                .into_tuple()
                .all(db)
                .await?;
            *slot = interpolate(p, total, |i| {
                let at = (i - low) as usize;
                pair.get(at).or(pair.last()).copied().unwrap_or_default()
            });
        }
        out
    };
    Ok(LatencyPercentiles { p50, p95, p99 })
}

/// PostgreSQL computes the three percentiles in one pass.
async fn postgres_percentiles<C: ConnectionTrait>(
    db: &C,
    condition: &Condition,
) -> Result<[f64; 3], Error> {
    let mut select = Entity::find().select_only().filter(condition.clone());
    for (i, p) in PERCENTILES.iter().enumerate() {
        // No builder for ordered-set aggregates: this backend needs the SQL text.
        select = select.column_as(
            Expr::cust(format!(
                "percentile_cont({p}) WITHIN GROUP (ORDER BY \"latency_us\")"
            )),
            format!("p{i}"),
        );
    }
    let row: Option<(Option<f64>, Option<f64>, Option<f64>)> = select.into_tuple().one(db).await?;
    let (a, b, c) = row.unwrap_or_default();
    Ok([a.unwrap_or(0.0), b.unwrap_or(0.0), c.unwrap_or(0.0)])
}

/// The two ranks (0-based) that `percentile_cont(p)` interpolates between, over `n` values.
fn rank(p: f64, n: u64) -> (u64, u64) {
    let position = p * (n.saturating_sub(1)) as f64;
    (position.floor() as u64, position.ceil() as u64)
}

/// `percentile_cont(p)` over `n` sorted values, the `i`-th given by `value(i)`.
fn interpolate(p: f64, n: u64, value: impl Fn(u64) -> i64) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let position = p * (n - 1) as f64;
    let (low, high) = rank(p, n);
    let (a, b) = (value(low) as f64, value(high) as f64);
    a + (b - a) * (position - low as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_matches_percentile_cont() {
        let values: Vec<i64> = (1..=10).collect();
        let at = |p| interpolate(p, 10, |i| values[i as usize]);
        assert_eq!(at(0.5), 5.5);
        assert!((at(0.95) - 9.55).abs() < 1e-9);
        assert_eq!(interpolate(0.99, 1, |_| 7), 7.0);
    }
}
