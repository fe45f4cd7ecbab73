//! The tamper-evident record: every commit batch is sealed by a SHA-256 hash chained over
//! the previous batch's hash, in a `chain` row written in the commit's own transaction.
//!
//! # What is hashed (the canonical encoding, version 1)
//! A batch covers the reading ids `first_id ..= last_id`: `first_id` is the previous
//! record's `last_id + 1`, so consecutive records tile the id space without gaps and a
//! row added anywhere falls into some batch's range. Its hash is SHA-256 over, in order:
//! 1. the 16 ASCII bytes `anemone-chain-1\n`;
//! 2. the previous record's hash (32 bytes; 32 zero bytes before the first record);
//! 3. every `readings` row with an id in the range, in id order, each column in table
//!    order as SQLite stores it: a one-byte type tag then the value —
//!    `0` NULL (nothing follows); `1` INTEGER, 8 bytes little-endian two's complement;
//!    `2` REAL, the 8 bytes little-endian of its IEEE-754 bits (`-0.0` written as `0.0`,
//!    which is what SQLite gives back for it); `3` TEXT and `4` BLOB, a 4-byte
//!    little-endian length then the bytes;
//! 4. a trailer of five fixed-width little-endian fields: the batch number (8 bytes), the
//!    record kind (1 byte: 0 batch, 1 genesis), `first_id` (8), `last_id` (8), the number
//!    of rows hashed (8), and the number of columns per row (4).
//!
//! The rows are read back inside the commit's transaction, so the hash is of the bytes
//! exactly as stored, and the one function [`hash_range`] serves sealing and verifying.
//! The encoding names no column, so a later change to the readings table's columns does
//! not need a new chain (rows written before it hash as they are stored).
//!
//! # Records
//! * **genesis** (kind 1): written once, when the chain starts (migration 5, or a new
//!   database): the readings already stored, in records of at most [`GENESIS_ROWS`] rows
//!   (so retention can later remove them in pieces), or one empty record.
//! * **batch** (kind 0): one per commit that stores readings. Commits that only move the
//!   publish cursor write none. It is one row (about 70 bytes) appended at the tail of a
//!   rowid table: the one extra page a commit touches.
//! * **anchor** (kind 2): retention removes whole batches, oldest first, and replaces
//!   their records by one anchor: the last removed record with its kind changed, keeping
//!   its batch number and hash (the chain's value over everything removed), `first_id`
//!   the first removed id and `rows` the rows removed in all. The next batch's hash is
//!   computed over the anchor's hash, so the chain stays checkable, and a head published
//!   earlier with that batch number can still be compared with it.
//!
//! # What `verify` finds
//! It walks the records in batch order, recomputes each hash from the rows and names the
//! first batch that no longer matches: a value edited or a row deleted or inserted inside
//! a batch (its hash or row count differ), a record deleted (a batch number missing),
//! records swapped or renumbered (a hash over the wrong predecessor, or ranges that no
//! longer tile), rows added after the head, rows left inside an anchored range, and a
//! truncated end where the aggregates show readings committed after the last record.
//!
//! Someone who can write the file can also recompute every hash: the chain alone shows
//! accidental and careless changes. What makes it evidence is a copy of the head held
//! elsewhere: it is published retained on MQTT (`anemone/<id>/chain`), optionally signed
//! with the station's key, and the network collector keeps every head it receives
//! (`anemone-collector verify`).

use ring::digest::{Context, SHA256};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::{schema, Store, StoreError};

/// Readings per genesis record (the records written when the chain starts).
pub const GENESIS_ROWS: i64 = 10_000;

/// The first bytes hashed for every record (encoding version 1).
const DOMAIN: &[u8; 16] = b"anemone-chain-1\n";

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// What a chain record stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// One commit's readings.
    Batch,
    /// Readings stored before the chain started.
    Genesis,
    /// Batches removed by retention, collapsed into the last one's hash.
    Anchor,
}

impl LinkKind {
    /// The stored code (also hashed in the trailer).
    pub fn code(self) -> u8 {
        match self {
            LinkKind::Batch => 0,
            LinkKind::Genesis => 1,
            LinkKind::Anchor => 2,
        }
    }

    fn from_code(code: i64) -> Option<LinkKind> {
        match code {
            0 => Some(LinkKind::Batch),
            1 => Some(LinkKind::Genesis),
            2 => Some(LinkKind::Anchor),
            _ => None,
        }
    }

    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            LinkKind::Batch => "batch",
            LinkKind::Genesis => "genesis",
            LinkKind::Anchor => "anchor",
        }
    }
}

/// One row of the `chain` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Batch number: 0 for the first genesis record, then one more per record.
    pub batch: i64,
    /// What the record stands for.
    pub kind: LinkKind,
    /// First reading id of the range the record covers.
    pub first_id: i64,
    /// Last reading id of the range.
    pub last_id: i64,
    /// Rows hashed (for an anchor: rows removed in all).
    pub rows: i64,
    /// The chained hash.
    pub hash: Hash,
}

/// The newest record: what is published on MQTT and kept by the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Its batch number.
    pub batch: i64,
    /// The last reading id it covers.
    pub last_id: i64,
    /// Its hash.
    pub hash: Hash,
}

/// Where the chain stopped matching the stored readings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tampered {
    /// The first batch that no longer matches.
    pub batch: i64,
    /// What differs, in words.
    pub what: String,
}

/// The outcome of [`Store::verify_chain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Records checked.
    pub records: u64,
    /// Readings hashed.
    pub rows: u64,
    /// The newest record.
    pub head: Option<Head>,
    /// The anchor the walk started from (batches before it were removed by retention).
    pub anchor: Option<i64>,
    /// `None` when every record matches.
    pub tampered: Option<Tampered>,
}

impl std::fmt::Display for ChainReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.tampered {
            Some(t) => write!(
                f,
                "CHANGED after it was written: batch {}: {}. Batches before it match their records; compare the published heads (`anemone-collector verify`) to see what was changed",
                t.batch, t.what
            ),
            None => {
                write!(f, "ok: {} chain records, {} readings match", self.records, self.rows)?;
                if let Some(a) = self.anchor {
                    write!(f, " (batches up to {a} were removed by retention; the anchor keeps their hash)")?;
                }
                if let Some(h) = &self.head {
                    write!(f, "; head: batch {}, reading id {}, sha256 {}", h.batch, h.last_id, hex(&h.hash))?;
                }
                Ok(())
            }
        }
    }
}

impl ChainReport {
    /// The report as JSON (`anemone verify --json`).
    pub fn to_json(&self, path: &std::path::Path) -> serde_json::Value {
        serde_json::json!({
            "database": path.display().to_string(),
            "ok": self.tampered.is_none(),
            "records": self.records,
            "readings": self.rows,
            "anchor": self.anchor,
            "head": self.head.map(|h| serde_json::json!({
                "batch": h.batch, "last_id": h.last_id, "hash": hex(&h.hash),
            })),
            "tampered": self.tampered.as_ref().map(|t| serde_json::json!({
                "batch": t.batch, "what": t.what,
            })),
        })
    }
}

/// Lowercase hex of a hash.
pub fn hex(hash: &Hash) -> String {
    // Published with every head: a table lookup, not a formatted String per byte.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(64);
    for b in hash {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// The hash of 64 hex digits, `None` for anything else.
pub fn parse_hex(text: &str) -> Option<Hash> {
    let t = text.as_bytes();
    if t.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in t.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// Canonical bytes gathered before they go to SHA-256: one `Context::update` per this
/// many bytes instead of two per column (a call cost more than the bytes it added).
const FEED_CHUNK: usize = 4096;

/// SHA-256 over bytes gathered in a fixed buffer. The hash is the same whether the bytes
/// arrive in one call or many; the buffer only saves the per-call cost.
struct Feed {
    ctx: Context,
    buf: [u8; FEED_CHUNK],
    len: usize,
}

impl Feed {
    fn new() -> Feed {
        Feed {
            ctx: Context::new(&SHA256),
            buf: [0; FEED_CHUNK],
            len: 0,
        }
    }

    fn flush(&mut self) {
        self.ctx.update(&self.buf[..self.len]);
        self.len = 0;
    }

    fn bytes(&mut self, b: &[u8]) {
        if self.len + b.len() > FEED_CHUNK {
            self.flush();
            if b.len() > FEED_CHUNK {
                self.ctx.update(b);
                return;
            }
        }
        self.buf[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
    }

    /// A tag byte and an 8-byte value: the common case, without a call per part.
    fn tagged(&mut self, tag: u8, v: [u8; 8]) {
        if self.len + 9 > FEED_CHUNK {
            self.flush();
        }
        self.buf[self.len] = tag;
        self.buf[self.len + 1..self.len + 9].copy_from_slice(&v);
        self.len += 9;
    }

    /// One stored value in the canonical encoding (see the module docs).
    fn value(&mut self, v: ValueRef<'_>) {
        match v {
            ValueRef::Null => self.bytes(&[0]),
            ValueRef::Integer(i) => self.tagged(1, i.to_le_bytes()),
            ValueRef::Real(f) => {
                let f = if f == 0.0 { 0.0 } else { f };
                self.tagged(2, f.to_bits().to_le_bytes());
            }
            ValueRef::Text(t) => {
                self.bytes(&[3]);
                self.bytes(&(t.len() as u32).to_le_bytes());
                self.bytes(t);
            }
            ValueRef::Blob(b) => {
                self.bytes(&[4]);
                self.bytes(&(b.len() as u32).to_le_bytes());
                self.bytes(b);
            }
        }
    }

    fn finish(mut self) -> Hash {
        self.flush();
        let mut out = [0u8; 32];
        out.copy_from_slice(self.ctx.finish().as_ref());
        out
    }
}

/// Hashes the readings with ids in `first ..= last` over `prev`: the record's hash and
/// how many rows it covered.
pub(super) fn hash_range(
    conn: &Connection,
    prev: &Hash,
    batch: i64,
    kind: LinkKind,
    first: i64,
    last: i64,
) -> rusqlite::Result<(Hash, i64)> {
    let mut feed = Feed::new();
    feed.bytes(DOMAIN);
    feed.bytes(prev);
    let mut stmt =
        conn.prepare_cached("SELECT * FROM readings WHERE id >= ?1 AND id <= ?2 ORDER BY id")?;
    let columns = stmt.column_count();
    let mut rows = stmt.query(params![first, last])?;
    let mut n: i64 = 0;
    while let Some(row) = rows.next()? {
        for c in 0..columns {
            feed.value(row.get_ref(c)?);
        }
        n += 1;
    }
    feed.bytes(&batch.to_le_bytes());
    feed.bytes(&[kind.code()]);
    feed.bytes(&first.to_le_bytes());
    feed.bytes(&last.to_le_bytes());
    feed.bytes(&n.to_le_bytes());
    feed.bytes(&(columns as u32).to_le_bytes());
    Ok((feed.finish(), n))
}

fn link_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Link, Vec<u8>)> {
    let kind: i64 = row.get(1)?;
    let hash: Vec<u8> = row.get(5)?;
    let mut h = [0u8; 32];
    if hash.len() == 32 {
        h.copy_from_slice(&hash);
    }
    Ok((
        Link {
            batch: row.get(0)?,
            // An unknown kind is reported by `verify`; here it reads as a batch.
            kind: LinkKind::from_code(kind).unwrap_or(LinkKind::Batch),
            first_id: row.get(2)?,
            last_id: row.get(3)?,
            rows: row.get(4)?,
            hash: h,
        },
        hash,
    ))
}

const LINK_COLUMNS: &str = "batch, kind, first_id, last_id, rows, hash";

/// The newest record, if any.
pub(super) fn head_link(conn: &Connection) -> rusqlite::Result<Option<Link>> {
    conn.prepare_cached(&format!(
        "SELECT {LINK_COLUMNS} FROM chain ORDER BY batch DESC LIMIT 1"
    ))?
    .query_row([], link_from_row)
    .optional()
    .map(|o| o.map(|(l, _)| l))
}

fn insert_link(conn: &Connection, l: &Link) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO chain (batch, kind, first_id, last_id, rows, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        l.batch,
        l.kind.code(),
        l.first_id,
        l.last_id,
        l.rows,
        &l.hash[..]
    ])?;
    Ok(())
}

/// Seals the readings just inserted in `tx` (ids up to `last`) as the next batch. The
/// commit path's one call into the chain.
pub(super) fn seal(tx: &Transaction<'_>, last: i64) -> rusqlite::Result<()> {
    let head = head_link(tx)?;
    let (batch, prev, first) = match &head {
        Some(h) => (h.batch + 1, h.hash, h.last_id + 1),
        None => (0, [0u8; 32], 1),
    };
    if last < first {
        // Rows below the head's range would be inside a sealed batch: refuse them.
        return Err(rusqlite::Error::ToSqlConversionFailure(Box::new(
            std::io::Error::other(format!(
                "reading id {last} is not above the tamper-evident chain's head (reading id {}): it would fall inside a sealed batch",
                first - 1
            )),
        )));
    }
    let (hash, rows) = hash_range(tx, &prev, batch, LinkKind::Batch, first, last)?;
    insert_link(
        tx,
        &Link {
            batch,
            kind: LinkKind::Batch,
            first_id: first,
            last_id: last,
            rows,
            hash,
        },
    )
}

/// Starts the chain when migration 5 asked for it (`meta` key
/// [`schema::META_CHAIN_PENDING`]): genesis records over the readings already stored, in
/// the same transaction that clears the request. A chain whose records were deleted
/// later is never restarted: `verify` reports it.
pub(super) fn start_if_pending(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    start_pending_in(&tx)?;
    tx.commit()
}

/// [`start_if_pending`] inside the caller's transaction (the migration's, so a new or
/// upgraded database gets its genesis records in the same commit as its schema).
pub(super) fn start_pending_in(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let pending: Option<i64> = tx
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [schema::META_CHAIN_PENDING],
            |r| r.get(0),
        )
        .optional()?;
    if pending.is_none() {
        return Ok(());
    }
    let max: Option<i64> = tx.query_row("SELECT max(id) FROM readings", [], |r| r.get(0))?;
    let min: Option<i64> = tx.query_row("SELECT min(id) FROM readings", [], |r| r.get(0))?;
    let mut prev = [0u8; 32];
    let mut first = min.unwrap_or(1).min(1);
    let mut batch = 0;
    let mut total = 0;
    loop {
        // The id of the GENESIS_ROWS-th row from `first` on closes the record.
        let end: Option<i64> = tx
            .query_row(
                "SELECT id FROM readings WHERE id >= ?1 ORDER BY id LIMIT 1 OFFSET ?2",
                params![first, GENESIS_ROWS - 1],
                |r| r.get(0),
            )
            .optional()?;
        let last = end.unwrap_or(max.unwrap_or(0).max(first - 1));
        let (hash, rows) = hash_range(tx, &prev, batch, LinkKind::Genesis, first, last)?;
        insert_link(
            tx,
            &Link {
                batch,
                kind: LinkKind::Genesis,
                first_id: first,
                last_id: last,
                rows,
                hash,
            },
        )?;
        total += rows;
        prev = hash;
        batch += 1;
        first = last + 1;
        if end.is_none() || Some(last) >= max {
            break;
        }
    }
    tx.execute(
        "DELETE FROM meta WHERE key = ?1",
        [schema::META_CHAIN_PENDING],
    )?;
    if total > 0 {
        tracing::info!(
            records = batch,
            readings = total,
            "Started the tamper-evident chain over the readings already stored."
        );
    }
    Ok(())
}

/// A run of whole batches retention may remove: the records and their rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// First batch number removed.
    pub first_batch: i64,
    /// Last batch number removed (now the anchor's).
    pub last_batch: i64,
    /// First reading id removed.
    pub first_id: i64,
    /// Last reading id removed.
    pub last_id: i64,
    /// Readings deleted.
    pub rows: u64,
}

/// Removes the oldest records whose ranges end at or below `max_id` and hold only
/// readings older than `older_than`, together with their readings, in one transaction,
/// stopping after about `max_rows` rows; an anchor takes their place. `None` when
/// nothing may go.
pub(super) fn remove_oldest(
    conn: &mut Connection,
    max_id: i64,
    older_than: i64,
    max_rows: u64,
) -> rusqlite::Result<Option<Removed>> {
    let tx = conn.transaction()?;
    let mut removed: Option<Removed> = None;
    let mut anchor: Option<Link> = None;
    {
        let mut oldest = tx.prepare_cached(&format!(
            "SELECT {LINK_COLUMNS} FROM chain WHERE batch > ?1 ORDER BY batch LIMIT 1"
        ))?;
        let mut newest_ts =
            tx.prepare_cached("SELECT max(ts) FROM readings WHERE id >= ?1 AND id <= ?2")?;
        let mut after = i64::MIN;
        let mut carried = 0u64;
        let mut anchored_from: Option<i64> = None;
        loop {
            let Some((link, _)) = oldest.query_row([after], link_from_row).optional()? else {
                break;
            };
            if link.kind == LinkKind::Anchor {
                // Batches removed before: the new anchor takes over what it covers.
                carried = u64::try_from(link.rows).unwrap_or(0);
                anchored_from = Some(link.first_id);
                after = link.batch;
                continue;
            }
            let has_next: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM chain WHERE batch > ?1)",
                [link.batch],
                |r| r.get(0),
            )?;
            // The head stays: the next commit chains over it.
            if !has_next || link.last_id > max_id {
                break;
            }
            let newest: Option<i64> =
                newest_ts.query_row([link.first_id, link.last_id], |r| r.get(0))?;
            if newest.is_some_and(|t| t >= older_than) {
                break;
            }
            let n = tx.execute(
                "DELETE FROM readings WHERE id >= ?1 AND id <= ?2",
                params![link.first_id, link.last_id],
            )? as u64;
            let r = removed.get_or_insert(Removed {
                first_batch: link.batch,
                last_batch: link.batch,
                first_id: link.first_id,
                last_id: link.last_id,
                rows: 0,
            });
            r.last_batch = link.batch;
            r.last_id = link.last_id;
            r.rows += n;
            after = link.batch;
            anchor = Some(link);
            if removed.as_ref().is_some_and(|r| r.rows >= max_rows) {
                break;
            }
        }
        if let (Some(r), Some(a)) = (&removed, &mut anchor) {
            tx.execute("DELETE FROM chain WHERE batch <= ?1", [r.last_batch])?;
            a.kind = LinkKind::Anchor;
            a.first_id = anchored_from.unwrap_or(r.first_id).min(r.first_id);
            a.rows = i64::try_from(carried + r.rows).unwrap_or(i64::MAX);
            insert_link(&tx, a)?;
        }
    }
    tx.commit()?;
    Ok(removed)
}

impl Store {
    /// The newest chain record, `None` before the chain started.
    pub fn chain_head(&self) -> Result<Option<Head>, StoreError> {
        let l = self.db(head_link(&self.conn))?;
        Ok(l.map(|l| Head {
            batch: l.batch,
            last_id: l.last_id,
            hash: l.hash,
        }))
    }

    /// The record of batch `batch`, if it is stored (removed batches are inside an
    /// anchor; see [`Store::chain_anchor`]).
    pub fn chain_link(&self, batch: i64) -> Result<Option<Link>, StoreError> {
        let r = self
            .conn
            .query_row(
                &format!("SELECT {LINK_COLUMNS} FROM chain WHERE batch = ?1"),
                [batch],
                link_from_row,
            )
            .optional();
        Ok(self.db(r)?.map(|(l, _)| l))
    }

    /// The anchor record, if retention removed batches.
    pub fn chain_anchor(&self) -> Result<Option<Link>, StoreError> {
        let r = self
            .conn
            .query_row(
                &format!("SELECT {LINK_COLUMNS} FROM chain WHERE kind = 2 ORDER BY batch LIMIT 1"),
                [],
                link_from_row,
            )
            .optional();
        Ok(self.db(r)?.map(|(l, _)| l))
    }

    /// Walks the chain from its start (or anchor), recomputing every record's hash from
    /// the stored readings; names the first batch that no longer matches.
    pub fn verify_chain(&self) -> Result<ChainReport, StoreError> {
        self.db(verify(&self.conn))
    }
}

fn verify(conn: &Connection) -> rusqlite::Result<ChainReport> {
    let mut report = ChainReport {
        records: 0,
        rows: 0,
        head: None,
        anchor: None,
        tampered: None,
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT {LINK_COLUMNS}, kind FROM chain ORDER BY batch"
    ))?;
    let mut links = stmt.query([])?;
    let mut prev: Option<Link> = None;
    let mut prev_hash = [0u8; 32];
    let fail = |batch: i64, what: String| Some(Tampered { batch, what });
    let mut tampered: Option<Tampered> = None;
    while let Some(row) = links.next()? {
        let (link, raw_hash) = link_from_row(row)?;
        let raw_kind: i64 = row.get(6)?;
        report.records += 1;
        if raw_hash.len() != 32 || LinkKind::from_code(raw_kind).is_none() {
            tampered = fail(
                link.batch,
                "its chain record was altered (malformed hash or kind)".into(),
            );
            break;
        }
        match &prev {
            None => match link.kind {
                LinkKind::Anchor => {
                    report.anchor = Some(link.batch);
                    let inside: Option<i64> = conn.query_row(
                        "SELECT max(id) FROM readings WHERE id <= ?1",
                        [link.last_id],
                        |r| r.get(0),
                    )?;
                    if let Some(id) = inside {
                        tampered = fail(
                            link.batch,
                            format!("reading id {id} lies in the range retention removed (ids up to {}): it was inserted or put back afterwards", link.last_id),
                        );
                        break;
                    }
                    prev_hash = link.hash;
                    report.head = Some(Head {
                        batch: link.batch,
                        last_id: link.last_id,
                        hash: link.hash,
                    });
                    prev = Some(link);
                    continue;
                }
                _ if link.batch != 0 => {
                    tampered = fail(
                        0,
                        format!(
                            "the chain starts at batch {}: batches 0 to {} were deleted",
                            link.batch,
                            link.batch - 1
                        ),
                    );
                    break;
                }
                _ => {
                    let below: Option<i64> = conn.query_row(
                        "SELECT min(id) FROM readings WHERE id < ?1",
                        [link.first_id],
                        |r| r.get(0),
                    )?;
                    if let Some(id) = below {
                        tampered = fail(0, format!("reading id {id} lies below the chain's first batch (ids from {}): it was inserted", link.first_id));
                        break;
                    }
                }
            },
            Some(p) => {
                if link.batch != p.batch + 1 {
                    tampered = fail(
                        p.batch + 1,
                        if link.batch > p.batch + 1 {
                            format!("batch {} is missing from the chain (deleted); the next record is batch {}", p.batch + 1, link.batch)
                        } else {
                            format!("batch number {} appears twice", link.batch)
                        },
                    );
                    break;
                }
                if link.kind == LinkKind::Anchor {
                    tampered = fail(
                        link.batch,
                        "an anchor after the chain's start: records before it were altered".into(),
                    );
                    break;
                }
                if link.first_id != p.last_id + 1 {
                    tampered = fail(
                        link.batch,
                        format!(
                            "its reading ids start at {} but the previous batch ends at {}: batches were reordered or renumbered",
                            link.first_id, p.last_id
                        ),
                    );
                    break;
                }
            }
        }
        let (hash, n) = hash_range(
            conn,
            &prev_hash,
            link.batch,
            link.kind,
            link.first_id,
            link.last_id,
        )?;
        report.rows += n as u64;
        if n != link.rows {
            tampered = fail(
                link.batch,
                format!(
                    "it held {} readings (ids {}–{}) when it was written and holds {n} now: readings were {}",
                    link.rows, link.first_id, link.last_id,
                    if n < link.rows { "deleted" } else { "inserted" }
                ),
            );
            break;
        }
        if hash != link.hash {
            tampered = fail(
                link.batch,
                format!(
                    "its readings (ids {}–{}) or its place in the chain changed after it was written: values were edited, or batches swapped",
                    link.first_id, link.last_id
                ),
            );
            break;
        }
        prev_hash = hash;
        report.head = Some(Head {
            batch: link.batch,
            last_id: link.last_id,
            hash,
        });
        prev = Some(link);
    }
    drop(links);
    if tampered.is_none() {
        let head_last = prev.as_ref().map_or(0, |p| p.last_id);
        let next = prev.as_ref().map_or(0, |p| p.batch + 1);
        let above: Option<i64> = conn.query_row(
            "SELECT min(id) FROM readings WHERE id > ?1",
            [head_last],
            |r| r.get(0),
        )?;
        let committed: Option<i64> =
            conn.query_row("SELECT max(last_id) FROM aggregates", [], |r| r.get(0))?;
        if prev.is_none() {
            let stored: i64 = conn.query_row("SELECT count(*) FROM readings", [], |r| r.get(0))?;
            if stored > 0 {
                tampered = fail(0, format!("the chain has no records but {stored} readings are stored: its records were deleted"));
            }
        } else if let Some(id) = above {
            tampered = fail(
                next,
                format!("reading id {id} is stored after the chain's head (batch {}, ids up to {head_last}): it was inserted", next - 1),
            );
        } else if let Some(id) = committed.filter(|id| *id > head_last) {
            tampered = fail(
                next,
                format!("the aggregates count readings up to id {id}, but the chain ends at batch {} (ids up to {head_last}): the end of the record was cut off", next - 1),
            );
        }
    }
    report.tampered = tampered;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The canonical encoding (version 1), written out by hand from the module docs, for
    /// a row of the test table below.
    fn canonical(
        out: &mut Vec<u8>,
        id: i64,
        ts: i64,
        value: Option<f64>,
        note: Option<&str>,
        raw: &[u8],
    ) {
        out.push(1);
        out.extend_from_slice(&id.to_le_bytes());
        out.push(1);
        out.extend_from_slice(&ts.to_le_bytes());
        match value {
            None => out.push(0),
            Some(v) => {
                out.push(2);
                let v = if v == 0.0 { 0.0f64 } else { v };
                out.extend_from_slice(&v.to_bits().to_le_bytes());
            }
        }
        match note {
            None => out.push(0),
            Some(t) => {
                out.push(3);
                out.extend_from_slice(&(t.len() as u32).to_le_bytes());
                out.extend_from_slice(t.as_bytes());
            }
        }
        out.push(4);
        out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        out.extend_from_slice(raw);
    }

    #[test]
    fn hex_is_lowercase_and_round_trips() {
        let h: Hash = std::array::from_fn(|i| (i * 37 + 5) as u8);
        let want: String = h.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&h), want);
        assert_eq!(parse_hex(&hex(&h)), Some(h));
    }

    /// `hash_range` hashes exactly the bytes the module docs define, whatever the number
    /// of rows (more than fill one buffer), the storage classes of their columns and the
    /// length of a value (longer than the buffer).
    #[test]
    fn hash_range_hashes_the_canonical_bytes() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE readings (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, value REAL, \
             note TEXT, raw BLOB)",
        )
        .unwrap();
        let row = |i: i64| {
            let value = match i % 5 {
                0 => None,
                1 => Some(-0.0),
                2 => Some(i as f64),
                _ => Some(i as f64 * -1.375e-3),
            };
            let note = (i % 3 != 0).then(|| "é".repeat((i % 7) as usize));
            // Now and then a value longer than the hashing buffer.
            let len = if i % 97 == 0 { 5000 } else { i % 11 };
            let raw: Vec<u8> = (0..len).map(|b| b as u8).collect();
            (i, 1_780_272_000_000 + i * 1_000, value, note, raw)
        };
        for i in 1..=700 {
            let (id, ts, value, note, raw) = row(i);
            conn.execute(
                "INSERT INTO readings VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, ts, value, note, raw],
            )
            .unwrap();
        }
        let prev = [7u8; 32];
        for (first, last) in [(5, 650), (701, 700), (1, 1)] {
            let mut bytes = DOMAIN.to_vec();
            bytes.extend_from_slice(&prev);
            let mut n = 0i64;
            for i in first..=last {
                let (id, ts, value, note, raw) = row(i);
                canonical(&mut bytes, id, ts, value, note.as_deref(), &raw);
                n += 1;
            }
            bytes.extend_from_slice(&42i64.to_le_bytes());
            bytes.push(LinkKind::Batch.code());
            bytes.extend_from_slice(&first.to_le_bytes());
            bytes.extend_from_slice(&last.to_le_bytes());
            bytes.extend_from_slice(&n.to_le_bytes());
            bytes.extend_from_slice(&5u32.to_le_bytes());
            let want = ring::digest::digest(&SHA256, &bytes);
            let (got, rows) = hash_range(&conn, &prev, 42, LinkKind::Batch, first, last).unwrap();
            assert_eq!((&got[..], rows), (want.as_ref(), n), "ids {first}..={last}");
        }
    }
}
