//! The tamper-evident record: every commit batch is sealed by a SHA-256 hash chained over
//! the previous batch's hash, in a `chain` row written in the commit's own transaction.
//!
//! # What is hashed (the canonical encoding, version 2)
//! A batch covers the reading ids `first_id ..= last_id`: `first_id` is the previous
//! record's `last_id + 1`, so consecutive records tile the id space without gaps and a
//! row added anywhere falls into some batch's range. Its hash is SHA-256 over, in order:
//! 1. the 16 ASCII bytes `anemone-chain-2\n`;
//! 2. the previous record's hash (32 bytes; 32 zero bytes before the first record);
//! 3. every `readings` row with an id in the range, in id order, each column in table
//!    order as SQLite stores it, one value after the other:
//!    * NULL: the byte `0`;
//!    * INTEGER `v`: its change from the last integer before it in the same column
//!      (`d = v − last`, wrapping; `last` is 0 before the first row, and a NULL, REAL,
//!      TEXT or BLOB leaves it as it was), zigzag-mapped to
//!      `z = (d << 1) ^ (d >> 63)`: the one byte `0x10 + z` when `z < 240`, else the byte
//!      `1` then `z` as an unsigned LEB128 varint;
//!    * REAL: the byte `2` then the 8 bytes little-endian of its IEEE-754 bits (`-0.0`
//!      written as `0.0`, which is what SQLite gives back for it);
//!    * TEXT and BLOB: the byte `3` or `4`, the length as an unsigned LEB128 varint, then
//!      the bytes;
//! 4. a trailer of fixed-width little-endian fields: the batch number (8 bytes), the
//!    record kind (1 byte: 0 batch, 1 genesis), `first_id` (8), `last_id` (8), the number
//!    of rows hashed (8), and the number of columns per row (4).
//!
//! A reading is about 15 bytes in this form (ids, times, sensors, quantities and flags
//! mostly differ little from the row before), a third of version 1's fixed 54: SHA-256
//! in software (the Pi Zero 2 W, 3 and 4 have no SHA instructions) is most of what the
//! chain costs, so the bytes are what its CPU follows.
//!
//! **Version 1** (`anemone-chain-1\n`), written before version 2, differs only in item 3:
//! every value is a type byte (`0` NULL, `1` INTEGER, `2` REAL, `3` TEXT, `4` BLOB) and a
//! fixed-width value (8 bytes little-endian for integers and reals, a 4-byte
//! little-endian length then the bytes for text and blobs). `verify` accepts a record in
//! either version, so a database keeps its older records as they were written.
//!
//! A commit seals its batch from the values it inserts ([`Sealer`]), in the form SQLite
//! gives them back (the `readings` columns are typed: an integer stays an integer, a
//! REAL column hands back a REAL, NaN is stored as NULL); `verify` reads the rows back
//! and hashes them with the same encoder ([`Feed::value`]). A test checks that both
//! agree for every kind of value, and debug builds check it at every commit whose ids
//! come in order. Ids out of order make the commit hash its range read back; an id at or
//! below the head's is refused (it would fall inside a sealed batch). A row in the range
//! that the commit did not insert (written into the file above the head by something
//! else) is not in the hash, so `verify` names that batch: it is never sealed in.
//! [`Sealer`] hashes the six columns of [`READING_COLUMNS`] (a test checks them against
//! the schema): a change to the readings table's columns needs a new encoding version.
//!
//! # Records
//! * **genesis** (kind 1): written once, when the chain starts (migration 5, or a new
//!   database): the readings already stored, in records of at most [`GENESIS_ROWS`] rows
//!   (so retention can later remove them in pieces), or one empty record.
//! * **batch** (kind 0): one per commit that stores readings. Commits that only move the
//!   publish cursor write none. It is one row (about 70 bytes) appended at the tail of a
//!   rowid table: the one extra page a commit touches (two or three when that leaf
//!   splits, about every dozen commits with 1 KiB pages).
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

/// The columns of `readings`, in table order: what [`Sealer::row`] is given (a test
/// checks them against the schema).
pub(super) const READING_COLUMNS: [&str; 6] = ["id", "ts", "sensor", "quantity", "value", "flags"];

/// The versions of the canonical encoding (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    /// Fixed-width values (`anemone-chain-1`): records written before version 2.
    V1,
    /// Integers as varint changes from the row before (`anemone-chain-2`): what is
    /// written now.
    V2,
}

impl Encoding {
    /// What new records are written with.
    pub(super) const CURRENT: Encoding = Encoding::V2;

    /// The first bytes hashed for every record.
    fn domain(self) -> &'static [u8; 16] {
        match self {
            Encoding::V1 => b"anemone-chain-1\n",
            Encoding::V2 => b"anemone-chain-2\n",
        }
    }

    /// The other version, tried by `verify` when a record does not match in this one.
    fn other(self) -> Encoding {
        match self {
            Encoding::V1 => Encoding::V2,
            Encoding::V2 => Encoding::V1,
        }
    }
}

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
    crate::signing::to_hex(hash)
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

/// The canonical bytes of one record (see the module docs) on their way to SHA-256,
/// gathered in a fixed buffer. The hash is the same whether the bytes arrive in one call
/// or many; the buffer only saves the per-call cost.
struct Feed {
    ctx: Context,
    buf: [u8; FEED_CHUNK],
    len: usize,
    encoding: Encoding,
    /// Version 2: each column's integer in the row before (0 before the first row).
    last: Vec<i64>,
}

impl Feed {
    /// A record's bytes in `encoding`, over the previous record's hash, for rows of
    /// `columns` columns.
    fn new(encoding: Encoding, columns: usize, prev: &Hash) -> Feed {
        let mut feed = Feed {
            ctx: Context::new(&SHA256),
            buf: [0; FEED_CHUNK],
            len: 0,
            encoding,
            last: vec![0; columns],
        };
        feed.bytes(encoding.domain());
        feed.bytes(prev);
        feed
    }

    fn flush(&mut self) {
        self.ctx.update(&self.buf[..self.len]);
        self.len = 0;
    }

    /// Room for `n` more bytes in the buffer (`n` ≤ [`FEED_CHUNK`]).
    fn room(&mut self, n: usize) {
        if self.len + n > FEED_CHUNK {
            self.flush();
        }
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

    fn byte(&mut self, b: u8) {
        self.room(1);
        self.buf[self.len] = b;
        self.len += 1;
    }

    /// A tag byte and an 8-byte value: the common case, without a call per part.
    fn tagged(&mut self, tag: u8, v: [u8; 8]) {
        self.room(9);
        self.buf[self.len] = tag;
        self.buf[self.len + 1..self.len + 9].copy_from_slice(&v);
        self.len += 9;
    }

    /// An unsigned LEB128 varint: seven bits a byte, low first, the high bit set on every
    /// byte but the last.
    fn varint(&mut self, mut z: u64) {
        self.room(10);
        while z >= 0x80 {
            self.buf[self.len] = (z as u8) | 0x80;
            self.len += 1;
            z >>= 7;
        }
        self.buf[self.len] = z as u8;
        self.len += 1;
    }

    /// A text or blob: its tag, its length, its bytes.
    fn sized(&mut self, tag: u8, b: &[u8]) {
        self.byte(tag);
        match self.encoding {
            Encoding::V1 => self.bytes(&(b.len() as u32).to_le_bytes()),
            Encoding::V2 => self.varint(b.len() as u64),
        }
        self.bytes(b);
    }

    /// Column `column`'s value of the next row, in the record's encoding.
    fn value(&mut self, column: usize, v: ValueRef<'_>) {
        match v {
            ValueRef::Null => self.byte(0),
            ValueRef::Integer(i) => match self.encoding {
                Encoding::V1 => self.tagged(1, i.to_le_bytes()),
                Encoding::V2 => {
                    let d = i.wrapping_sub(self.last[column]);
                    self.last[column] = i;
                    let z = ((d << 1) ^ (d >> 63)) as u64;
                    if z < 240 {
                        self.byte(0x10 + z as u8);
                    } else {
                        self.byte(1);
                        self.varint(z);
                    }
                }
            },
            ValueRef::Real(f) => {
                let f = if f == 0.0 { 0.0 } else { f };
                self.tagged(2, f.to_bits().to_le_bytes());
            }
            ValueRef::Text(t) => self.sized(3, t),
            ValueRef::Blob(b) => self.sized(4, b),
        }
    }

    /// The trailer, then the hash.
    fn finish(mut self, batch: i64, kind: LinkKind, first: i64, last: i64, rows: i64) -> Hash {
        let columns = self.last.len() as u32;
        self.bytes(&batch.to_le_bytes());
        self.bytes(&[kind.code()]);
        self.bytes(&first.to_le_bytes());
        self.bytes(&last.to_le_bytes());
        self.bytes(&rows.to_le_bytes());
        self.bytes(&columns.to_le_bytes());
        self.flush();
        let mut out = [0u8; 32];
        out.copy_from_slice(self.ctx.finish().as_ref());
        out
    }
}

/// Hashes the readings with ids in `first ..= last` over `prev`, reading them back, in
/// `encoding`: the record's hash and how many rows it covered.
pub(super) fn hash_range(
    conn: &Connection,
    prev: &Hash,
    batch: i64,
    kind: LinkKind,
    first: i64,
    last: i64,
    encoding: Encoding,
) -> rusqlite::Result<(Hash, i64)> {
    let mut stmt =
        conn.prepare_cached("SELECT * FROM readings WHERE id >= ?1 AND id <= ?2 ORDER BY id")?;
    let columns = stmt.column_count();
    let mut feed = Feed::new(encoding, columns, prev);
    let mut rows = stmt.query(params![first, last])?;
    let mut n: i64 = 0;
    while let Some(row) = rows.next()? {
        for c in 0..columns {
            feed.value(c, row.get_ref(c)?);
        }
        n += 1;
    }
    Ok((feed.finish(batch, kind, first, last, n), n))
}

/// The next batch of a commit, hashed from the values the commit inserts as it inserts
/// them (in [`Encoding::CURRENT`]): reading the rows back cost more than hashing them.
pub(super) struct Sealer {
    batch: i64,
    prev: Hash,
    first: i64,
    feed: Feed,
    rows: i64,
    /// The highest id given so far.
    last_id: Option<i64>,
    /// The lowest id given so far.
    lowest: Option<i64>,
    /// Every row so far came in increasing id order, above the head: the feed holds the
    /// range's rows in id order. Otherwise `finish` reads the range back.
    in_order: bool,
}

impl Sealer {
    /// Starts the batch after the chain's head.
    pub(super) fn start(tx: &Transaction<'_>) -> rusqlite::Result<Sealer> {
        let head = head_link(tx)?;
        let (batch, prev, first) = match &head {
            Some(h) => (h.batch + 1, h.hash, h.last_id + 1),
            None => (0, [0u8; 32], 1),
        };
        Ok(Sealer {
            batch,
            prev,
            first,
            feed: Feed::new(Encoding::CURRENT, READING_COLUMNS.len(), &prev),
            rows: 0,
            last_id: None,
            lowest: None,
            in_order: true,
        })
    }

    /// One row the commit inserted, its columns in [`READING_COLUMNS`] order, as bound
    /// (a NaN `value` is stored as NULL, and hashed as one).
    pub(super) fn row(
        &mut self,
        id: i64,
        ts: i64,
        sensor: i64,
        quantity: i64,
        value: Option<f64>,
        flags: i64,
    ) {
        if self.last_id.is_some_and(|l| id <= l) {
            self.in_order = false;
        }
        self.last_id = Some(self.last_id.map_or(id, |l| l.max(id)));
        self.lowest = Some(self.lowest.map_or(id, |l| l.min(id)));
        if !self.in_order {
            return;
        }
        let value = value
            .filter(|v| !v.is_nan())
            .map_or(ValueRef::Null, ValueRef::Real);
        for (c, v) in [
            ValueRef::Integer(id),
            ValueRef::Integer(ts),
            ValueRef::Integer(sensor),
            ValueRef::Integer(quantity),
            value,
            ValueRef::Integer(flags),
        ]
        .into_iter()
        .enumerate()
        {
            self.feed.value(c, v);
        }
        self.rows += 1;
    }

    /// Writes the batch's record (ids up to the highest given); nothing when no row was.
    pub(super) fn finish(self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let (Some(last), Some(lowest)) = (self.last_id, self.lowest) else {
            return Ok(());
        };
        let first = self.first;
        if lowest < first {
            // A row at or below the head's last id would be inside a sealed batch.
            return Err(rusqlite::Error::ToSqlConversionFailure(Box::new(
                std::io::Error::other(format!(
                    "reading id {lowest} is not above the tamper-evident chain's head (reading id {}): it would fall inside a sealed batch",
                    first - 1
                )),
            )));
        }
        let (batch, prev) = (self.batch, self.prev);
        let read_back = || {
            hash_range(
                tx,
                &prev,
                batch,
                LinkKind::Batch,
                first,
                last,
                Encoding::CURRENT,
            )
        };
        let (hash, rows) = if self.in_order {
            let rows = self.rows;
            let hash = self.feed.finish(batch, LinkKind::Batch, first, last, rows);
            #[cfg(debug_assertions)]
            {
                // Every debug run checks the promise `verify` relies on: the values as
                // inserted hash like the rows read back. More rows read back than inserted
                // were written by something else: then the hashes differ, as they should.
                let back = read_back()?;
                assert!(
                    back.1 >= rows,
                    "batch {batch}: {} rows read back, {rows} inserted",
                    back.1
                );
                if back.1 == rows {
                    assert_eq!(
                        back.0, hash,
                        "batch {batch}: the inserted values hash unlike the stored rows"
                    );
                }
            }
            (hash, rows)
        } else {
            read_back()?
        };
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
        let (hash, rows) = hash_range(
            tx,
            &prev,
            batch,
            LinkKind::Genesis,
            first,
            last,
            Encoding::CURRENT,
        )?;
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
    let mut encoding = Encoding::CURRENT;
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
        // Each record is in one of the encodings; the one the record before matched is
        // tried first, so a database hashes its records twice only where the version
        // changed (and where a record matches neither).
        let rehash = |encoding| {
            hash_range(
                conn,
                &prev_hash,
                link.batch,
                link.kind,
                link.first_id,
                link.last_id,
                encoding,
            )
        };
        let (mut hash, n) = rehash(encoding)?;
        if hash != link.hash {
            let (other, _) = rehash(encoding.other())?;
            if other == link.hash {
                hash = other;
                encoding = encoding.other();
            }
        }
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

    /// A row of the test table below in the canonical encoding, written out by hand from
    /// the module docs: `last` holds each column's previous integer (version 2).
    fn canonical(
        out: &mut Vec<u8>,
        encoding: Encoding,
        last: &mut [i64; 5],
        row: (i64, i64, Option<f64>, Option<&str>, &[u8]),
    ) {
        let (id, ts, value, note, raw) = row;
        let leb = |out: &mut Vec<u8>, mut n: u64| {
            while n >= 0x80 {
                out.push((n as u8 & 0x7f) | 0x80);
                n >>= 7;
            }
            out.push(n as u8);
        };
        let int = |out: &mut Vec<u8>, last: &mut i64, v: i64| match encoding {
            Encoding::V1 => {
                out.push(1);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Encoding::V2 => {
                let d = v.wrapping_sub(*last);
                *last = v;
                let z = ((d << 1) ^ (d >> 63)) as u64;
                if z < 240 {
                    out.push(0x10 + z as u8);
                } else {
                    out.push(1);
                    leb(out, z);
                }
            }
        };
        let sized = |out: &mut Vec<u8>, tag: u8, b: &[u8]| {
            out.push(tag);
            match encoding {
                Encoding::V1 => out.extend_from_slice(&(b.len() as u32).to_le_bytes()),
                Encoding::V2 => leb(out, b.len() as u64),
            }
            out.extend_from_slice(b);
        };
        int(out, &mut last[0], id);
        int(out, &mut last[1], ts);
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
            Some(t) => sized(out, 3, t.as_bytes()),
        }
        sized(out, 4, raw);
    }

    #[test]
    fn hex_is_lowercase_and_round_trips() {
        let h: Hash = std::array::from_fn(|i| (i * 37 + 5) as u8);
        let want: String = h.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&h), want);
        assert_eq!(parse_hex(&hex(&h)), Some(h));
    }

    /// `hash_range` hashes exactly the bytes the module docs define, in both versions,
    /// whatever the number of rows (more than fill one buffer), the storage classes of
    /// their columns, the size of the changes between rows (backwards, wrapping, each
    /// varint length) and the length of a value (longer than the buffer).
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
            // Times that stand still, step back, step by every varint length, and wrap.
            let ts = match i % 9 {
                0 => i64::MIN + i,
                1 => i64::MAX - i,
                2 => -(1 << (i % 63)),
                3 => 1_780_272_000_000,
                4 => 1_780_272_000_000,
                _ => 1_780_272_000_000 + i * (1 << (i % 40)),
            };
            (i, ts, value, note, raw)
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
        for encoding in [Encoding::V1, Encoding::V2] {
            for (first, last) in [(5, 650), (701, 700), (1, 1)] {
                let mut bytes = encoding.domain().to_vec();
                bytes.extend_from_slice(&prev);
                let mut n = 0i64;
                let mut last_ints = [0i64; 5];
                for i in first..=last {
                    let (id, ts, value, note, raw) = row(i);
                    canonical(
                        &mut bytes,
                        encoding,
                        &mut last_ints,
                        (id, ts, value, note.as_deref(), &raw),
                    );
                    n += 1;
                }
                bytes.extend_from_slice(&42i64.to_le_bytes());
                bytes.push(LinkKind::Batch.code());
                bytes.extend_from_slice(&first.to_le_bytes());
                bytes.extend_from_slice(&last.to_le_bytes());
                bytes.extend_from_slice(&n.to_le_bytes());
                bytes.extend_from_slice(&5u32.to_le_bytes());
                let want = ring::digest::digest(&SHA256, &bytes);
                let (got, rows) =
                    hash_range(&conn, &prev, 42, LinkKind::Batch, first, last, encoding).unwrap();
                assert_eq!(
                    (&got[..], rows),
                    (want.as_ref(), n),
                    "{encoding:?}, ids {first}..={last}"
                );
            }
        }
    }

    fn open(path: &std::path::Path) -> Store {
        let opts = crate::store::StoreOptions {
            synchronous: crate::config::Synchronous::Normal,
            tz: chrono_tz::UTC,
            vfs: None,
        };
        Store::open(path, &opts).unwrap()
    }

    fn store(dir: &tempfile::TempDir) -> Store {
        open(&dir.path().join("a.db"))
    }

    /// `l`'s hash and rows over `prev`, read back in `encoding`.
    fn rehash(s: &Store, prev: &Hash, l: &Link, encoding: Encoding) -> (Hash, i64) {
        hash_range(
            &s.conn, prev, l.batch, l.kind, l.first_id, l.last_id, encoding,
        )
        .unwrap()
    }

    /// Every record, in batch order.
    fn links(s: &Store) -> Vec<Link> {
        let mut stmt = s
            .conn
            .prepare(&format!("SELECT {LINK_COLUMNS} FROM chain ORDER BY batch"))
            .unwrap();
        let l = stmt
            .query_map([], link_from_row)
            .unwrap()
            .map(|l| l.unwrap().0)
            .collect();
        l
    }

    /// The readings table's columns are the ones a commit's [`Sealer`] hashes, in order.
    #[test]
    fn the_sealer_hashes_the_readings_tables_columns() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        let mut stmt = s
            .conn
            .prepare("SELECT name FROM pragma_table_info('readings') ORDER BY cid")
            .unwrap();
        let names: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|n| n.unwrap())
            .collect();
        assert_eq!(names, READING_COLUMNS);
    }

    /// A commit hashes the values it inserts; `verify` hashes the rows read back: both
    /// agree for every kind of value SQLite might store differently from what was bound
    /// (`-0.0`, integral and huge reals, infinities, subnormals, NaN, missing values) and
    /// for times and ids that jump.
    #[test]
    fn values_as_inserted_hash_like_the_rows_read_back() {
        use crate::reading::{Flags, Quantity, Reading, SensorId};
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(&dir);
        let a: SensorId = std::sync::Arc::from("a");
        let b: SensorId = std::sync::Arc::from("b");
        let values = [
            Some(-0.0),
            Some(0.0),
            Some(5.0),
            Some(-7.0),
            Some(9_007_199_254_740_993.0),
            Some(1e300),
            Some(-1e-300),
            Some(f64::MAX),
            Some(f64::MIN_POSITIVE / 4.0),
            Some(f64::INFINITY),
            Some(f64::NEG_INFINITY),
            Some(f64::NAN),
            Some(21.37),
            None,
        ];
        let mut ts = 1_780_272_000_000i64;
        let mut next_id = 1;
        for batch in 0..6i64 {
            let mut rows = Vec::new();
            for (i, v) in values.iter().enumerate() {
                // Times forwards, still, and backwards (a clock set back).
                ts += [1_000, 0, -3_600_000, 86_400_000][(i + batch as usize) % 4];
                let sensor = if i % 3 == 0 { &a } else { &b };
                let mut r = Reading::new(ts, sensor, Quantity::ALL[i % Quantity::ALL.len()], 0.0);
                r.value = *v;
                r.flags = if i % 4 == 0 { Flags::SPIKE } else { Flags::OK };
                // Ids with gaps (ids reserved and lost in a crash).
                next_id += 1 + (i as i64 % 2) * 1_000;
                rows.push(crate::store::StoredReading {
                    id: next_id,
                    reading: r,
                });
            }
            s.commit_stored(&rows, None, None).unwrap();
        }
        let links = links(&s);
        assert_eq!(
            links.iter().filter(|l| l.kind == LinkKind::Batch).count(),
            6
        );
        let mut prev = [0u8; 32];
        for l in &links {
            let (hash, rows) = rehash(&s, &prev, l, Encoding::CURRENT);
            assert_eq!((hash, rows), (l.hash, l.rows), "batch {}", l.batch);
            prev = l.hash;
        }
        assert_eq!(s.verify_chain().unwrap().tampered, None);
    }

    /// A database whose records were written in version 1 keeps them: `verify` accepts
    /// them and the version-2 records chained after them, and still names a changed batch
    /// of either version.
    #[test]
    fn verify_accepts_version_1_records_and_names_changes_in_both_versions() {
        use crate::reading::{Quantity, Reading, SensorId};
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(&dir);
        let a: SensorId = std::sync::Arc::from("a");
        let commit = |s: &mut Store, n: i64| {
            let rows: Vec<Reading> = (0..5)
                .map(|i| {
                    Reading::new(
                        1_780_272_000_000 + (n * 5 + i) * 1_000,
                        &a,
                        Quantity::AirTemperature,
                        (n * 5 + i) as f64 / 8.0,
                    )
                })
                .collect();
            s.insert_batch(&rows).unwrap();
        };
        for n in 0..4 {
            commit(&mut s, n);
        }
        // Rewrite every record as version 1 would have written it.
        let links = links(&s);
        let mut prev = [0u8; 32];
        for l in &links {
            let (hash, _) = rehash(&s, &prev, l, Encoding::V1);
            assert_ne!(hash, l.hash, "the versions hash differently");
            s.conn
                .execute(
                    "UPDATE chain SET hash = ?1 WHERE batch = ?2",
                    params![&hash[..], l.batch],
                )
                .unwrap();
            prev = hash;
        }
        for n in 4..8 {
            commit(&mut s, n);
        }
        let report = s.verify_chain().unwrap();
        assert_eq!(report.tampered, None, "{report}");
        assert_eq!(report.rows, 40);
        let v1_batch = links[2].batch;
        let head = report.head.unwrap().batch;
        for (batch, id) in [(v1_batch, links[2].first_id), (head - 1, 32)] {
            let copy = dir.path().join(format!("b{batch}.db"));
            s.conn
                .execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
                .unwrap();
            let t = open(&copy);
            t.conn
                .execute(
                    "UPDATE readings SET value = value + 0.5 WHERE id = ?1",
                    [id],
                )
                .unwrap();
            let t = t.verify_chain().unwrap().tampered.unwrap();
            assert_eq!(t.batch, batch, "{}", t.what);
        }
    }

    /// Ids out of order are hashed from the rows read back; an id at or below the head's
    /// is refused with its number; a row written into the file above the head by something
    /// else is never sealed in: `verify` names the batch whose range took it.
    #[test]
    fn ids_out_of_order_below_the_head_and_foreign_rows() {
        use crate::reading::{Quantity, Reading, SensorId};
        use crate::store::StoredReading;
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(&dir);
        let a: SensorId = std::sync::Arc::from("a");
        let row = |id: i64| StoredReading {
            id,
            reading: Reading::new(
                1_780_272_000_000 + id * 1_000,
                &a,
                Quantity::AirTemperature,
                id as f64 / 4.0,
            ),
        };
        s.commit_stored(&[row(5), row(1), row(3)], None, None)
            .unwrap();
        assert_eq!(s.verify_chain().unwrap().tampered, None);
        let e = s
            .commit_stored(&[row(4), row(9)], None, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("reading id 4 is not above the tamper-evident chain's head (reading id 5)"),
            "{e}"
        );
        assert_eq!(
            s.verify_chain().unwrap().tampered,
            None,
            "the refused commit left nothing"
        );
        s.conn
            .execute(
                "INSERT INTO readings (id, ts, sensor, quantity, value, flags) VALUES (7, 0, 1, 1, 1.0, 0)",
                [],
            )
            .unwrap();
        s.commit_stored(&[row(6), row(8)], None, None).unwrap();
        let head = s.chain_head().unwrap().unwrap();
        let t = s.verify_chain().unwrap().tampered.unwrap();
        assert_eq!(t.batch, head.batch, "{}", t.what);
        assert!(t.what.contains("inserted"), "{}", t.what);
    }
}
