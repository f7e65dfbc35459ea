//! The chain itself: the canonical encoding of a row, its HMAC, and the writer's position.

use hmac::{Hmac, Mac};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use sha2::Sha256;
use std::time::Instant;

use super::Integrity;
use super::key::encode_hex;
use crate::entity::audit_checkpoint;
use crate::entity::audit_log::{self, Model};
use crate::writer::{DeadPlaces, JournaledPlaces, Place};

/// `prev_hash` of a chain's first row.
pub(crate) const GENESIS: &str = "v1:genesis";

/// The key of `extra` under which a row sealed again in the writer (the safe form of a refused
/// row, or a row relinked after it) keeps where it was first sealed: `{"seq": …, "hash": …}`,
/// covered by its own row hash. A row sealed again more than once (relinked after each of
/// several rows refused before it, or relinked and then replaced by its safe form) keeps the
/// first place: rows sealed after it were sealed to follow it there. A restarted writer whose
/// chain ends at such a row relinks the journaled rows sealed to follow the row as it was, as the
/// writer that sealed it would have.
pub const CHAIN_REPLACED: &str = "chain_replaced";
const VERSION: &str = "v1";

/// The bytes an Ed25519 checkpoint signature covers.
pub fn signed_message(
    chain_id: &str,
    chain_seq: i64,
    row_hash: &str,
    created_at: &chrono::DateTime<chrono::Utc>,
) -> Vec<u8> {
    message("checkpoint", chain_id, chain_seq, row_hash, created_at)
}

/// The bytes an Ed25519 signature of a purge tombstone covers: not those of a checkpoint, so
/// that a checkpoint's signature cannot be copied onto a tombstone at its position.
pub fn signed_purge_message(
    chain_id: &str,
    chain_seq: i64,
    row_hash: &str,
    created_at: &chrono::DateTime<chrono::Utc>,
) -> Vec<u8> {
    message("purge", chain_id, chain_seq, row_hash, created_at)
}

fn message(
    kind: &str,
    chain_id: &str,
    chain_seq: i64,
    row_hash: &str,
    created_at: &chrono::DateTime<chrono::Utc>,
) -> Vec<u8> {
    format!(
        "tower-audit {kind} v1\n{chain_id}\n{chain_seq}\n{row_hash}\n{}",
        created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    )
    .into_bytes()
}

/// Canonical encoding, version 1: every stored column but `id`, `chain_seq` and `row_hash`, in a
/// fixed order, each as presence byte + length + bytes. `chain_seq` is left out so that the
/// position is protected by the links alone: moved rows show up as reordered, not modified.
fn encode(row: &Model) -> Vec<u8> {
    let mut out = Vec::with_capacity(512 + row.request_body.as_ref().map_or(0, String::len));
    out.extend_from_slice(b"tower-audit row v1\n");
    let mut field = |value: Option<&[u8]>| match value {
        None => out.push(0),
        Some(bytes) => {
            out.push(1);
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(bytes);
        }
    };
    let text = |v: &Option<String>| v.as_deref().map(str::as_bytes).map(<[u8]>::to_vec);
    let number = |v: Option<i64>| v.map(|n| n.to_string().into_bytes());
    let json = |v: &Option<serde_json::Value>| v.as_ref().map(|j| j.to_string().into_bytes());
    let occurred_at = row
        .occurred_at
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let fields: [Option<Vec<u8>>; 29] = [
        text(&row.chain_id),
        text(&row.key_id),
        Some(row.record_id.clone().into_bytes()),
        Some(occurred_at.into_bytes()),
        text(&row.request_id),
        Some(row.method.clone().into_bytes()),
        Some(row.path.clone().into_bytes()),
        text(&row.route),
        text(&row.query),
        number(row.status.map(i64::from)),
        number(row.grpc_status.map(i64::from)),
        number(row.grpc_messages_in),
        number(row.grpc_messages_out),
        number(Some(row.latency_us)),
        text(&row.client_ip),
        text(&row.peer_ip),
        text(&row.user_agent),
        text(&row.user_id),
        text(&row.tenant_id),
        text(&row.action),
        text(&row.resource),
        text(&row.request_body),
        Some(vec![u8::from(row.request_body_truncated)]),
        number(Some(row.request_bytes)),
        number(Some(row.response_bytes)),
        json(&row.request_headers),
        json(&row.extra),
        text(&row.error),
        text(&row.prev_hash),
    ];
    for value in &fields {
        field(value.as_deref());
    }
    out
}

/// `v1:<hex of HMAC-SHA256(key, encode(row))>`.
pub(crate) fn row_hash(key: &[u8], row: &Model) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(&encode(row));
    format!("{VERSION}:{}", encode_hex(&mac.finalize().into_bytes()))
}

/// Where a row whose `extra` this is was first sealed, if it was sealed again: its
/// [`CHAIN_REPLACED`] note.
pub(crate) fn noted_first_place(extra: Option<&serde_json::Value>) -> Option<(i64, String)> {
    let note = extra?.get(CHAIN_REPLACED)?;
    Some((
        note.get("seq")?.as_i64()?,
        note.get("hash")?.as_str()?.to_owned(),
    ))
}

/// Notes in `row`'s `extra` where it was first sealed (see [`CHAIN_REPLACED`]), `seq` and `hash`,
/// before it is sealed again, unless it was sealed again before and notes its first place
/// already: the rows sealed after it follow it there, not where a relink left it since. An
/// `extra` that is no JSON object (never written so) is left without the note.
fn note_replaced(row: &mut Model, seq: i64, hash: &str) {
    if noted_first_place(row.extra.as_ref()).is_some() {
        return;
    }
    let extra = row
        .extra
        .get_or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    if extra.is_null() {
        *extra = serde_json::Value::Object(serde_json::Map::new());
    }
    if let Some(fields) = extra.as_object_mut() {
        fields.insert(
            CHAIN_REPLACED.to_owned(),
            serde_json::json!({ "seq": seq, "hash": hash }),
        );
    }
}

/// A writer's position in its chain.
#[derive(Debug)]
pub(crate) struct Chain {
    config: Integrity,
    /// The last row sealed: `(seq, hash)`; `None` until read from the database.
    head: Option<(i64, String)>,
    /// The last row known to be in the database.
    inserted: Option<(i64, String)>,
    checkpointed: i64,
    last_checkpoint: Instant,
    /// Rows sealed after a refused row, not yet written, that must follow what took its place.
    relink: Option<Relink>,
    /// The places of the rows an earlier process left in the journal, which the database may
    /// not hold yet (see [`journaled`](Self::journaled)).
    journaled: Option<JournaledPlaces>,
    /// The places of this chain's rows in the dead-letter journal (see
    /// [`dead_lettered`](Self::dead_lettered)).
    dead: DeadPlaces,
    /// The head is at the highest position there is, and that was logged.
    exhausted: bool,
    /// Another writer was found appending to this chain, and that was logged.
    shared: bool,
}

/// A refused row was replaced by its safe form, or left the chain (dead-lettered): the next
/// row, sealed to follow the row as it was, is sealed again to follow what took its place, and
/// so on down the rows sealed after it, as they come.
#[derive(Debug)]
struct Relink {
    /// The next row as it was sealed: its position and the hash it follows.
    expect: (i64, String),
    /// Its position and the hash it follows now.
    becomes: (i64, String),
    /// The rows it waits for hold their places in this writer's head: sealed by this process
    /// (the head is past them), they keep them. Not so for the rows an earlier process
    /// journaled after a row it replaced: records journaled unsealed among them are sealed
    /// first, so each takes the place after the head, following it, as it comes.
    reserved: bool,
}

/// The last of the dead-lettered rows that follow `head` one after the other, each linked to the
/// one before (`None` when no dead row follows it): its place and its hash. A row among them
/// that was relinked before it was refused (after the dead row before it) was first sealed
/// elsewhere (its `chain_replaced` note): when `awaited` says the journal's rows were sealed
/// to follow it there, that place and hash.
fn dead_after(
    dead: &DeadPlaces,
    head: &(i64, String),
    awaited: impl Fn(&(i64, String)) -> bool,
) -> Option<(i64, String)> {
    let mut last: Option<(i64, &String)> = None;
    let (mut seq, mut hash) = (head.0, &head.1);
    while let Some((prev, next, first)) = seq.checked_add(1).and_then(|at| dead.get(&at))
        && prev == hash
    {
        if let Some(first) = first.as_ref().filter(|first| awaited(first)) {
            return Some(first.clone());
        }
        seq += 1;
        hash = next;
        last = Some((seq, next));
    }
    last.map(|(seq, hash)| (seq, hash.clone()))
}

impl Chain {
    pub(crate) fn new(config: Integrity) -> Self {
        Self {
            config,
            head: None,
            inserted: None,
            checkpointed: 0,
            last_checkpoint: Instant::now(),
            relink: None,
            journaled: None,
            dead: DeadPlaces::new(),
            exhausted: false,
            shared: false,
        }
    }

    /// Gives every row that has no place in the chain yet the next one. Rows sealed earlier (a
    /// retried batch, rows replayed from the journal) keep theirs.
    pub(crate) async fn seal(
        &mut self,
        db: &DatabaseConnection,
        rows: &mut [Model],
    ) -> Result<(), DbErr> {
        if self.head.is_none() {
            // A restarted writer continues its chain from the database.
            let (last, from_row, mut head) = self.stored_head(db).await?;
            // A head sealed again after a refusal: the journal may hold rows sealed to follow
            // the row it replaced.
            let replaced = last
                .as_ref()
                .and_then(|row| self.replaced_by(row))
                .filter(|_| head == from_row);
            if let Some(relink) = self.restart_relink(&head, replaced) {
                self.relink = Some(relink);
            }
            self.checkpointed = head.0;
            self.inserted = Some(head.clone());
            // Rows sealed by an earlier process and still in the journal hold places past the
            // database's last: rows sealed now follow them, wherever replay meets them. Not
            // when the journal holds the rows a relink waits for (sealed to follow the replaced
            // row as it was): they take new places and hashes as they come. A relink pending
            // otherwise (the database's last row is a safe form, or a relinked row, and the
            // journaled rows follow it as it is) does not change their places.
            if let Some(JournaledPlaces { first, last }) = self.journaled.take()
                && last.0 > head.0
                && self.relink.as_ref().is_none_or(|relink| {
                    first.0 > head.0 && (first.0, &first.1) != (relink.expect.0, &relink.expect.1)
                })
            {
                head = last;
            }
            self.head = Some(head);
        }
        self.seal_rows(rows);
        Ok(())
    }

    /// The chain's last place in the database: its last row, that row's place, and the place
    /// to continue after, which is its last checkpoint's or tombstone's when that is past the
    /// row (retention may have removed every row).
    async fn stored_head(
        &self,
        db: &DatabaseConnection,
    ) -> Result<(Option<Model>, (i64, String), (i64, String)), DbErr> {
        let last = audit_log::Entity::find()
            .filter(audit_log::Column::ChainId.eq(self.config.chain_id.as_str()))
            .order_by_desc(audit_log::Column::ChainSeq)
            .limit(1)
            .one(db)
            .await?;
        let mark = audit_checkpoint::Entity::find()
            .filter(audit_checkpoint::Column::ChainId.eq(self.config.chain_id.as_str()))
            .order_by_desc(audit_checkpoint::Column::ChainSeq)
            .limit(1)
            .one(db)
            .await?;
        let row = last.as_ref().map_or_else(
            || (0, GENESIS.to_owned()),
            |row| {
                let hash = row.row_hash.clone();
                (
                    row.chain_seq.unwrap_or(0),
                    hash.unwrap_or_else(|| GENESIS.to_owned()),
                )
            },
        );
        let head = match mark {
            Some(mark) if mark.chain_seq > row.0 => (mark.chain_seq, mark.row_hash),
            _ => row.clone(),
        };
        Ok((last, row, head))
    }

    /// Another writer took the places `rows` (not yet written, in order) were sealed at: two
    /// writers were given this chain id (replicas started with one configuration). Seals them
    /// again after the chain's last place as the database now holds it, so that no row is lost
    /// and the chain, which both now extend, still links; says so once. `false`, touching
    /// nothing, while a relink is pending or a row was sealed again after a refusal (its note
    /// names its first place): those keep the refusal's path.
    pub(crate) async fn rebase(
        &mut self,
        db: &DatabaseConnection,
        rows: &mut [Model],
    ) -> Result<bool, DbErr> {
        if self.relink.is_some()
            || rows
                .iter()
                .any(|row| noted_first_place(row.extra.as_ref()).is_some())
        {
            return Ok(false);
        }
        let (_, _, head) = self.stored_head(db).await?;
        if !self.shared {
            self.shared = true;
            tracing::error!(
                chain_id = %self.config.chain_id,
                "tower-audit: another writer appends to this hash chain (two writers given one \
                 chain id): rows are sealed again after its rows, each time it takes a place \
                 first; give each writer (process) its own chain id"
            );
        }
        for row in rows.iter_mut().filter(|row| self.ours(row)) {
            row.chain_seq = None;
            row.prev_hash = None;
            row.row_hash = None;
        }
        self.head = Some(head);
        self.seal_rows(rows);
        Ok(true)
    }

    /// Gives every row of `rows` without a place the next one after the head (read already).
    fn seal_rows(&mut self, rows: &mut [Model]) {
        for row in rows.iter_mut() {
            // Rows journaled after a refused row reach the writer only now.
            self.follow(row);
            let Some(head) = &mut self.head else {
                return;
            };
            if let (Some(seq), Some(hash)) = (row.chain_seq, &row.row_hash) {
                if row.chain_id.as_deref() == Some(self.config.chain_id.as_str()) && seq > head.0 {
                    *head = (seq, hash.clone());
                }
                continue;
            }
            let Some(seq) = head.0.checked_add(1) else {
                // No place is left after the head: the row is kept, unsealed.
                if !self.exhausted {
                    self.exhausted = true;
                    tracing::error!(
                        chain_id = %self.config.chain_id,
                        "tower-audit: the chain's last row is at the highest position there is \
                         (a row forged there?): rows are written unsealed; `verify` reports it"
                    );
                }
                continue;
            };
            row.chain_id = Some(self.config.chain_id.clone());
            row.key_id = Some(self.config.key_id.clone());
            row.chain_seq = Some(seq);
            row.prev_hash = Some(head.1.clone());
            let hash = row_hash(&self.config.key, row);
            row.row_hash = Some(hash.clone());
            *head = (seq, hash);
        }
    }

    /// At restart, with `head` the database's last place (or its tombstone's) and `replaced`
    /// the row the head's safe form replaced, when it is the last row: the relink the rows an
    /// earlier process left in the journal need, if any.
    fn restart_relink(
        &mut self,
        head: &(i64, String),
        replaced: Option<(i64, String)>,
    ) -> Option<Relink> {
        // The row the journal's rows were sealed to follow is not the database's last as
        // they knew it: that row was sealed again (its safe form is the last row), or it
        // and every row between it and the last row were dead-lettered by a process that
        // stopped before it wrote the rows sealed after them. They follow what is there.
        // Not when the journal still holds dead rows (a process that stopped before it
        // noted them replayed): they are replayed in their places, the rows after them too.
        let awaited = |(seq, hash): &(i64, String)| {
            self.journaled.as_ref().is_some_and(|places| {
                Some(places.first.0) == seq.checked_add(1) && places.first.1 == *hash
            })
        };
        let dead = dead_after(&std::mem::take(&mut self.dead), head, awaited).filter(|(seq, _)| {
            self.journaled
                .as_ref()
                .is_none_or(|places| places.first.0 <= head.0 || places.first.0 > *seq)
        });
        // A dead row that follows a safe form at the head was sealed after it: when the
        // journal's first row follows that dead row, it is the one to relink after, not the
        // row the safe form replaced.
        let followed = if dead.as_ref().is_some_and(awaited) {
            dead
        } else {
            replaced.or(dead)
        };
        let (seq, hash) = followed?;
        Some(Relink {
            expect: (seq.checked_add(1)?, hash),
            becomes: (head.0.checked_add(1)?, head.1.clone()),
            reserved: false,
        })
    }

    /// Where the rows of this chain an earlier process left in the journal lie, before the head
    /// is read from the database: rows journaled unsealed ahead of them (the queue's overflow)
    /// are sealed past the last of them at replay rather than from the database's last row,
    /// which would give two rows one place.
    pub(crate) fn journaled(&mut self, places: Option<JournaledPlaces>) {
        self.journaled = places;
    }

    /// Where the rows of this chain the database refused in every form lie in the dead-letter
    /// journal. Rows placed one after the other right after the database's last row were
    /// refused by a process that stopped before it wrote the rows sealed after them, which are
    /// still in the journal: those are relinked to follow what the database holds, as that
    /// process would have.
    pub(crate) fn dead_lettered(&mut self, places: DeadPlaces) {
        self.dead = places;
    }

    /// The chain's id.
    pub(crate) fn id(&self) -> &str {
        &self.config.chain_id
    }

    /// Whether `row` has a place in this writer's chain.
    fn ours(&self, row: &Model) -> bool {
        row.chain_id.as_deref() == Some(self.config.chain_id.as_str())
            && row.chain_seq.is_some()
            && row.row_hash.is_some()
    }

    /// Seals again `row`, the safe form of `refused`: it keeps the row's place and link, but its
    /// content, and so its hash, differ. It notes where `refused` was first sealed: its own
    /// place, or, for a row relinked before it was refused, the place its note keeps (the safe
    /// form's `extra` starts afresh).
    pub(crate) fn reseal(&self, refused: &Model, row: &mut Model) {
        if let (true, Some(seq), Some(hash)) = (self.ours(row), row.chain_seq, row.row_hash.clone())
        {
            let (seq, hash) = noted_first_place(refused.extra.as_ref()).unwrap_or((seq, hash));
            note_replaced(row, seq, &hash);
            row.row_hash = Some(row_hash(&self.config.key, row));
        }
    }

    /// Where `row`, the last of this chain in the database, was first sealed, if it was sealed
    /// again (see [`CHAIN_REPLACED`]): only for a row of this chain and key whose hash is its
    /// own, so that no one without the key can have the writer relink rows.
    fn replaced_by(&self, row: &Model) -> Option<(i64, String)> {
        if !self.ours(row)
            || row.key_id.as_deref() != Some(self.config.key_id.as_str())
            || row.row_hash.as_deref() != Some(row_hash(&self.config.key, row).as_str())
        {
            return None;
        }
        noted_first_place(row.extra.as_ref())
    }

    /// `original` was refused, and `replacement` (its safe form, [resealed](Self::reseal)) was
    /// written in its place, or nothing was (dead-lettered): the rows sealed after it follow
    /// that instead, `later` (the rest of its batch, not yet written) at once, rows sealed
    /// earlier that come from the journal as [`seal`](Self::seal) meets them, and the head.
    /// Else the chain would break there, every row after it unverified.
    pub(crate) fn replaced(
        &mut self,
        original: &Model,
        replacement: Option<&Model>,
        later: &mut [Model],
    ) {
        if !self.ours(original) {
            return;
        }
        let (Some(seq), Some(hash), Some(prev)) = (
            original.chain_seq,
            original.row_hash.clone(),
            original.prev_hash.clone(),
        ) else {
            return;
        };
        let safe = replacement.and_then(|r| r.row_hash.clone());
        if self
            .head
            .as_ref()
            .is_some_and(|head| *head == (seq, hash.clone()))
        {
            // Nothing was sealed after it: the next row is sealed after what took its place.
            self.head = Some(match safe {
                Some(safe) => (seq, safe),
                None => (seq.saturating_sub(1), prev),
            });
            // A relink across a restart still waits for rows an earlier process journaled
            // after it: they follow the head as they come, whatever it is then.
            self.relink = self.relink.take().filter(|relink| !relink.reserved);
            return;
        }
        // Rows were sealed after it (so it is not at the highest position there is).
        let Some(next) = seq.checked_add(1) else {
            return;
        };
        let becomes = match safe {
            Some(safe) => (next, safe),
            None => (seq, prev),
        };
        let earlier = self.relink.replace(Relink {
            expect: (next, hash),
            becomes,
            reserved: true,
        });
        for row in later {
            self.follow(row);
        }
        match (earlier, &mut self.relink) {
            // A row refused earlier in the batch had its rows beyond it waiting to follow the
            // batch's last row as it then was: they follow it as it is now.
            (Some(earlier), Some(now)) if earlier.becomes == now.expect => {
                now.expect = earlier.expect;
            }
            // The batch's last row was the head and moved again, which ended the relink to the
            // rows after it: when those are an earlier process's, still in the journal (a
            // relink across a restart), they follow the head as they come.
            (Some(earlier), None) if !earlier.reserved => self.relink = Some(earlier),
            _ => {}
        }
    }

    /// Seals `row` again if it is the row a [`Relink`] waits for.
    fn follow(&mut self, row: &mut Model) {
        let Some(relink) = &self.relink else {
            return;
        };
        let (Some(seq), Some(prev), Some(hash)) =
            (row.chain_seq, row.prev_hash.as_ref(), row.row_hash.clone())
        else {
            return;
        };
        if !self.ours(row) || (seq, prev) != (relink.expect.0, &relink.expect.1) {
            return;
        }
        // A row read back from the journal is sealed again only as it was sealed: one changed
        // on disk keeps the hash it no longer matches, for `verify` to report.
        if row_hash(&self.config.key, row) != hash {
            return;
        }
        let (new_seq, new_prev) = match (&self.head, relink.reserved) {
            (Some(head), false) => match head.0.checked_add(1) {
                Some(next) => (next, head.1.clone()),
                // No place left after the head: the row keeps its own, a break `verify` reports.
                None => return,
            },
            _ => relink.becomes.clone(),
        };
        let reserved = relink.reserved;
        note_replaced(row, seq, &hash);
        row.chain_seq = Some(new_seq);
        row.prev_hash = Some(new_prev);
        let new_hash = row_hash(&self.config.key, row);
        row.row_hash = Some(new_hash.clone());
        if self
            .head
            .as_ref()
            .is_some_and(|head| *head == (seq, hash.clone()))
        {
            self.head = Some((new_seq, new_hash));
            self.relink = None;
        } else {
            // No row follows the highest position there is.
            self.relink = seq
                .checked_add(1)
                .zip(new_seq.checked_add(1))
                .map(|(next, new_next)| Relink {
                    expect: (next, hash),
                    becomes: (new_next, new_hash),
                    reserved,
                });
        }
    }

    /// Rows of this chain found in the database that this writer did not write (an insert an
    /// earlier process gave up on, committed after this writer read the head): their places are
    /// taken, so the rows sealed next follow the last of them. Before the head is read, the
    /// database's last row already says so.
    pub(crate) fn landed<'a>(&mut self, places: impl IntoIterator<Item = &'a Place>) {
        let Some(head) = &mut self.head else {
            return;
        };
        for (chain_id, seq, hash) in places {
            if *chain_id == self.config.chain_id && *seq > head.0 {
                *head = (*seq, hash.clone());
                if self.inserted.as_ref().is_none_or(|(s, _)| seq > s) {
                    self.inserted = Some((*seq, hash.clone()));
                }
            }
        }
    }

    /// Notes rows now in the database.
    pub(crate) fn inserted(&mut self, rows: &[Model]) {
        for row in rows {
            if let (Some(seq), Some(hash)) = (row.chain_seq, &row.row_hash)
                && row.chain_id.as_deref() == Some(self.config.chain_id.as_str())
                && self.inserted.as_ref().is_none_or(|(s, _)| seq > *s)
            {
                self.inserted = Some((seq, hash.clone()));
            }
        }
    }

    pub(crate) fn checkpoint_due(&self) -> bool {
        self.last_checkpoint.elapsed() >= self.config.checkpoint_every
    }

    /// Stores a checkpoint of the last inserted row, if the chain moved since the last one.
    pub(crate) async fn checkpoint(&mut self, db: &DatabaseConnection) -> Result<(), DbErr> {
        self.last_checkpoint = Instant::now();
        let Some((seq, hash)) = self.inserted.clone() else {
            return Ok(());
        };
        if seq <= self.checkpointed {
            return Ok(());
        }
        let created_at = crate::writer::now_micros();
        let signature = self.config.signing_key.as_ref().map(|key| {
            use ed25519_dalek::Signer;
            let message = signed_message(&self.config.chain_id, seq, &hash, &created_at);
            encode_hex(&key.sign(&message).to_bytes())
        });
        audit_checkpoint::ActiveModel {
            id: sea_orm::ActiveValue::NotSet,
            chain_id: sea_orm::ActiveValue::Set(self.config.chain_id.clone()),
            chain_seq: sea_orm::ActiveValue::Set(seq),
            row_hash: sea_orm::ActiveValue::Set(hash.clone()),
            kind: sea_orm::ActiveValue::Set("checkpoint".into()),
            created_at: sea_orm::ActiveValue::Set(created_at),
            signature: sea_orm::ActiveValue::Set(signature),
        }
        .insert(db)
        .await?;
        // An anchor for `verify`, for logs kept away from the database: the checkpoint row can
        // be deleted with the tail it vouches for, a line shipped elsewhere cannot.
        let anchor = super::Anchor {
            chain_id: self.config.chain_id.clone(),
            chain_seq: seq,
            row_hash: hash,
        };
        tracing::info!(
            target: "tower_audit::checkpoint",
            chain_id = %anchor.chain_id,
            chain_seq = anchor.chain_seq,
            row_hash = %anchor.row_hash,
            anchor = %anchor,
            "tower-audit: chain checkpoint stored"
        );
        self.checkpointed = seq;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    /// The dead rows a restart relinks after: those right after the head, one after the other,
    /// each linked to the one before; not a row at the next place sealed to follow another row,
    /// nor one further on.
    #[test]
    fn dead_rows_followed_are_the_linked_run_after_the_head() {
        let place = |prev: &str, hash: &str| (prev.to_owned(), hash.to_owned(), None);
        let head = (4, "h4".to_owned());
        let run = DeadPlaces::from([
            (2, place("h1", "other")),
            (5, place("h4", "h5")),
            (6, place("h5", "h6")),
            (8, place("h7", "h8")),
        ]);
        assert_eq!(
            dead_after(&run, &head, |_| false),
            Some((6, "h6".to_owned()))
        );
        let unlinked = DeadPlaces::from([(5, place("x4", "h5")), (6, place("h5", "h6"))]);
        assert_eq!(dead_after(&unlinked, &head, |_| false), None);
        let broken = DeadPlaces::from([(5, place("h4", "h5")), (6, place("x5", "h6"))]);
        assert_eq!(
            dead_after(&broken, &head, |_| false),
            Some((5, "h5".to_owned()))
        );
        assert_eq!(dead_after(&DeadPlaces::new(), &head, |_| false), None);
        // Row 6, relinked to follow row 4 before it was refused: where it was first sealed when
        // that is what the journal waits on, else where it stood.
        let first = (6, "h6".to_owned());
        let relinked = DeadPlaces::from([(
            5,
            ("h4".to_owned(), "h6-again".to_owned(), Some(first.clone())),
        )]);
        assert_eq!(
            dead_after(&relinked, &head, |at| *at == first),
            Some(first.clone())
        );
        assert_eq!(
            dead_after(&relinked, &head, |_| false),
            Some((5, "h6-again".to_owned()))
        );
    }

    /// A chain at its start, its head known, so that sealing needs no database.
    fn chain() -> Chain {
        let mut chain = Chain::new(Integrity::new("c1", "k1", KEY.to_vec()));
        chain.head = Some((0, GENESIS.to_owned()));
        chain
    }

    fn rows(paths: &[&str]) -> Vec<Model> {
        paths
            .iter()
            .map(|path| Model {
                record_id: format!("rec-{path}"),
                path: (*path).to_owned(),
                ..crate::writer::null_row()
            })
            .collect()
    }

    /// Whether `written` is a chain a verifier takes: positions 1, 2, ..., each row's hash its
    /// own, each linked to the one before.
    fn intact(written: &[Model]) -> bool {
        let mut prev = GENESIS.to_owned();
        written.iter().enumerate().all(|(i, row)| {
            let ok = row.chain_seq == Some(i as i64 + 1)
                && row.prev_hash.as_deref() == Some(prev.as_str())
                && row.row_hash.as_deref() == Some(row_hash(KEY, row).as_str());
            prev = row.row_hash.clone().unwrap_or_default();
            ok
        })
    }

    /// Each checkpoint is logged as an anchor (`chain@seq=hash`, target
    /// `tower_audit::checkpoint`) that `verify` takes: the position and hash of the last row
    /// written, kept wherever the logs go.
    #[tokio::test]
    async fn a_stored_checkpoint_is_logged_as_an_anchor() {
        let (lines, _logs) = crate::test_logs::capture();

        let db = crate::connect("sqlite::memory:").await.unwrap();
        crate::migrate(&db).await.unwrap();
        let mut chain = chain();
        let mut sealed = rows(&["/1", "/2", "/3"]);
        chain.seal(&db, &mut sealed).await.unwrap();
        chain.inserted(&sealed);
        chain.checkpoint(&db).await.unwrap();

        let logged = lines.text();
        let line = logged
            .lines()
            .find(|line| line.contains("tower_audit::checkpoint"))
            .unwrap_or_else(|| panic!("no checkpoint line in {logged:?}"));
        let anchor: crate::integrity::Anchor = line
            .split_whitespace()
            .find_map(|field| field.strip_prefix("anchor="))
            .unwrap_or_else(|| panic!("no anchor in {line:?}"))
            .parse()
            .unwrap();
        assert_eq!(
            (
                anchor.chain_id.as_str(),
                anchor.chain_seq,
                Some(&anchor.row_hash)
            ),
            ("c1", 3, sealed[2].row_hash.as_ref())
        );
    }

    /// Rows sealed after a refused row follow what took its place: the rest of its batch at
    /// once, rows sealed with it but kept elsewhere (the journal) when they are sealed again,
    /// and rows sealed afresh after the head. A safe form keeps the place; a dead-lettered row
    /// leaves it to the next row.
    #[tokio::test]
    async fn rows_after_a_refused_row_follow_what_took_its_place() {
        let db = DatabaseConnection::default();
        let mut chain = chain();
        let mut sealed = rows(&["/1", "/2", "/3", "/4", "/5", "/6"]);
        chain.seal(&db, &mut sealed).await.unwrap();
        // Written in batches of three, the second read back from the journal as sealed.
        let (mut first, mut second) = (sealed[..3].to_vec(), sealed[3..].to_vec());

        // `/2` refused, its safe form written.
        let mut safe = Model {
            request_body: Some("[safe]".into()),
            ..first[1].clone()
        };
        chain.reseal(&first[1], &mut safe);
        let (refused, later) = first[1..].split_at_mut(1);
        chain.replaced(&refused[0], Some(&safe), later);
        first[1] = safe;

        // The second batch is sealed again on its way in; `/5` is dead-lettered.
        chain.seal(&db, &mut second).await.unwrap();
        let (refused, later) = second[1..].split_at_mut(1);
        chain.replaced(&refused[0], None, later);
        second.remove(1);

        let mut next = rows(&["/7"]);
        chain.seal(&db, &mut next).await.unwrap();
        let written: Vec<Model> = [first, second, next].concat();
        assert!(intact(&written), "{written:#?}");
        assert_eq!(written.len(), 6);
    }

    /// A row sealed after a refused row and changed where it was kept (the journal, on disk) is
    /// not sealed again when it comes back: relinked, it would carry a hash of the changed
    /// content under the key, and `verify` would take it. A safe form notes where the row it
    /// replaces was sealed.
    #[tokio::test]
    async fn a_row_changed_before_it_is_relinked_keeps_its_hash() {
        let db = DatabaseConnection::default();
        let mut chain = chain();
        let mut sealed = rows(&["/1", "/2", "/3", "/4"]);
        chain.seal(&db, &mut sealed).await.unwrap();
        let (mut batch, mut journaled) = (sealed[..2].to_vec(), sealed[2..].to_vec());
        let original = batch[1].row_hash.clone().unwrap();
        let mut safe = Model {
            request_body: Some("[safe]".into()),
            ..batch[1].clone()
        };
        chain.reseal(&batch[1], &mut safe);
        assert_eq!(
            safe.extra.as_ref().and_then(|e| e.get(CHAIN_REPLACED)),
            Some(&serde_json::json!({"seq": 2, "hash": original}))
        );
        let (refused, later) = batch[1..].split_at_mut(1);
        chain.replaced(&refused[0], Some(&safe), later);

        journaled[0].path = "/changed".into();
        let before = journaled[0].clone();
        chain.seal(&db, &mut journaled).await.unwrap();
        assert_eq!(journaled[0], before, "not sealed again");
        assert_ne!(
            journaled[0].row_hash.as_deref(),
            Some(row_hash(KEY, &journaled[0]).as_str())
        );
    }

    /// A row relinked once for each of the rows refused before it in its batch notes where it
    /// was first sealed, as does its safe form (whose `extra` starts afresh): the rows sealed
    /// after the batch follow it there. The last relink's place was noted before.
    #[tokio::test]
    async fn a_row_sealed_again_several_times_notes_its_first_place() {
        let db = DatabaseConnection::default();
        let mut chain = chain();
        let mut batch = rows(&["/1", "/2", "/3", "/4"]);
        chain.seal(&db, &mut batch).await.unwrap();
        let first = (4, batch[3].row_hash.clone().unwrap());
        for at in 0..3 {
            let (refused, later) = batch[at..].split_at_mut(1);
            chain.replaced(&refused[0], None, later);
        }
        assert_eq!(batch[3].chain_seq, Some(1));
        assert_eq!(
            noted_first_place(batch[3].extra.as_ref()),
            Some(first.clone())
        );

        let mut safe = Model {
            request_body: Some("[safe]".into()),
            extra: None,
            ..batch[3].clone()
        };
        chain.reseal(&batch[3], &mut safe);
        assert_eq!(noted_first_place(safe.extra.as_ref()), Some(first));
        assert_eq!(safe.row_hash, Some(row_hash(KEY, &safe)));
    }

    /// A head at the highest position there is (a row forged there, or a chain that ran that
    /// far) leaves no place after it: the rows that come are written unsealed, and nothing
    /// overflows (a panic with overflow checks, a wrapped position without), also when the
    /// last row placed is refused and the rows after it would be relinked.
    #[tokio::test]
    async fn a_chain_at_the_highest_position_seals_no_further() {
        let db = DatabaseConnection::default();
        let mut chain = chain();
        chain.head = Some((i64::MAX - 1, "forged".to_owned()));
        let mut batch = rows(&["/1", "/2", "/3"]);
        chain.seal(&db, &mut batch).await.unwrap();
        assert_eq!(batch[0].chain_seq, Some(i64::MAX));
        assert_eq!(batch[0].prev_hash.as_deref(), Some("forged"));
        for row in &batch[1..] {
            assert_eq!(
                (&row.chain_id, row.chain_seq, &row.prev_hash, &row.row_hash),
                (&None, None, &None, &None),
                "{row:#?}"
            );
        }

        // The row at the last place refused, with its safe form and without.
        let mut safe = Model {
            request_body: Some("[safe]".into()),
            ..batch[0].clone()
        };
        chain.reseal(&batch[0], &mut safe);
        let (refused, later) = batch.split_at_mut(1);
        chain.replaced(&refused[0], Some(&safe), later);
        chain.replaced(&refused[0], None, later);
        let mut next = rows(&["/4"]);
        chain.seal(&db, &mut next).await.unwrap();
        assert_eq!(next[0].chain_seq, None);

        // Dead rows and a note read at restart, at the last place.
        let head = (i64::MAX, "h".to_owned());
        let dead = DeadPlaces::from([(i64::MAX, ("g".to_owned(), "h".to_owned(), None))]);
        assert_eq!(dead_after(&dead, &head, |_| true), None);
        chain.head = None;
        chain.journaled(Some(JournaledPlaces {
            first: (i64::MAX, "h".to_owned()),
            last: (i64::MAX, "h".to_owned()),
        }));
        assert!(
            chain
                .restart_relink(&head, Some((i64::MAX, "g".to_owned())))
                .is_none()
        );
    }

    /// Two rows refused in one batch, with rows sealed after the batch kept elsewhere: those
    /// follow the batch's last row as the second refusal left it.
    #[tokio::test]
    async fn two_refused_rows_in_a_batch_keep_the_rows_beyond_it_linked() {
        let db = DatabaseConnection::default();
        let mut chain = chain();
        let mut sealed = rows(&["/1", "/2", "/3", "/4", "/5", "/6"]);
        chain.seal(&db, &mut sealed).await.unwrap();
        let (mut batch, mut beyond) = (sealed[..4].to_vec(), sealed[4..].to_vec());

        let mut safe = Model {
            request_body: Some("[safe]".into()),
            ..batch[1].clone()
        };
        chain.reseal(&batch[1], &mut safe);
        let (refused, later) = batch[1..].split_at_mut(1);
        chain.replaced(&refused[0], Some(&safe), later);
        batch[1] = safe;
        let (refused, later) = batch[2..].split_at_mut(1);
        chain.replaced(&refused[0], None, later);
        batch.remove(2);

        chain.seal(&db, &mut beyond).await.unwrap();
        let mut next = rows(&["/7"]);
        chain.seal(&db, &mut next).await.unwrap();
        let written: Vec<Model> = [batch, beyond, next].concat();
        assert_eq!(written.len(), 6);
        assert!(intact(&written), "{written:#?}");
    }
}
