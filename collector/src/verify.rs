//! `anemone-collector verify`: the chain heads the collector received (`…/chain`, kept in
//! `chain_heads`) against a station's database, or against each other.
//!
//! A station's database holds a tamper-evident chain (the station's `store::chain`): every
//! commit batch's SHA-256 is chained over the previous one, and the station publishes its
//! newest batch number and hash. Someone who edits the database can recompute the chain,
//! so the station's own `anemone verify` passes, but cannot change the heads already
//! received here. A database copied from the station (or opened in place) is therefore
//! checked batch by batch against every head stored for it; the first batch that differs
//! is named. Without a database, the heads alone show a station that published two
//! different hashes for one batch (its chain was rewritten) or went back to an earlier
//! batch.

use std::path::Path;

use anemone::store::{hex, Store, StoreError};
use tokio_postgres::Client;

use crate::message::ChainHead;

/// The first batch of a station that no longer matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The batch number.
    pub batch: i64,
    /// What differs.
    pub what: String,
}

/// One station's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The station.
    pub station: String,
    /// Heads compared.
    pub heads: usize,
    /// `None` when everything matches.
    pub mismatch: Option<Mismatch>,
    /// Signed heads that do not verify against the station's first public key, or were
    /// signed with another key (one line each, by batch).
    pub bad_signatures: Vec<String>,
}

impl Verdict {
    /// True when the heads match and every signature verifies.
    pub fn ok(&self) -> bool {
        self.mismatch.is_none() && self.bad_signatures.is_empty()
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.mismatch {
            None => write!(
                f,
                "station {}: ok ({} published heads match)",
                self.station, self.heads
            ),
            Some(m) => write!(
                f,
                "station {}: batch {} does not match: {}",
                self.station, m.batch, m.what
            ),
        }?;
        for b in &self.bad_signatures {
            write!(f, "\nstation {}: {b}", self.station)?;
        }
        Ok(())
    }
}

/// Why verify could not run.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// PostgreSQL refused.
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// The station's database could not be read.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// No station id given or recorded.
    #[error("{0} records no station id: name the station with --station")]
    NoStation(String),
}

/// Every head stored for `station`, by batch (several per batch when the station
/// published different hashes for it).
pub async fn stored_heads(client: &Client, station: &str) -> Result<Vec<ChainHead>, VerifyError> {
    let rows = client
        .query(
            "SELECT station, batch, last_id, hash, public_key, signature FROM chain_heads WHERE station = $1
             ORDER BY batch, received_at",
            &[&station],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| ChainHead {
            station: r.get(0),
            batch: r.get(1),
            last_id: r.get(2),
            hash: r.get(3),
            public_key: r.get(4),
            signature: r.get(5),
        })
        .collect())
}

/// The stations with stored heads.
pub async fn stations(client: &Client) -> Result<Vec<String>, VerifyError> {
    let rows = client
        .query("SELECT DISTINCT station FROM chain_heads ORDER BY 1", &[])
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// What is wrong with a head's signature, given the first public key seen for its
/// station (`None`: the station never announced one). An unsigned head is not a problem
/// (signing is optional); a signed one must verify with the station's first key.
pub fn signature_problem(first_key: Option<&str>, h: &ChainHead) -> Option<String> {
    let sig = h.signature.as_deref()?;
    let Some(first) = first_key.or(h.public_key.as_deref()) else {
        return Some(format!(
            "batch {}: signed, but the station never announced a public key",
            h.batch
        ));
    };
    if let Some(k) = h.public_key.as_deref().filter(|k| *k != first) {
        return Some(format!(
            "batch {}: signed with public key {k}, not the key {first} first seen for the station (the key changed: a new key is never accepted silently)",
            h.batch
        ));
    }
    if !anemone::signing::verify_head(first, sig, &h.station, h.batch, h.last_id, &h.hash) {
        return Some(format!(
            "batch {}: BAD SIGNATURE: the head (hash {}) was not signed by the station's key {first}",
            h.batch, h.hash
        ));
    }
    None
}

/// Every signature problem of `heads` (see [`signature_problem`]).
pub fn check_signatures(first_key: Option<&str>, heads: &[ChainHead]) -> Vec<String> {
    heads
        .iter()
        .filter_map(|h| signature_problem(first_key, h))
        .collect()
}

/// The heads alone: two hashes for one batch, or a head whose reading ids go backwards.
pub fn check_heads(station: &str, heads: &[ChainHead]) -> Verdict {
    let mut mismatch = None;
    for pair in heads.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.batch == b.batch {
            mismatch = Some(Mismatch {
                batch: a.batch,
                what: format!(
                    "the station published two different hashes for it ({} and {}): its database was rewritten after the first",
                    a.hash, b.hash
                ),
            });
            break;
        }
        if b.last_id < a.last_id {
            mismatch = Some(Mismatch {
                batch: b.batch,
                what: format!(
                    "it ends at reading id {} though batch {} ended at {}: the chain was rebuilt",
                    b.last_id, a.batch, a.last_id
                ),
            });
            break;
        }
    }
    Verdict {
        station: station.to_string(),
        heads: heads.len(),
        mismatch,
        bad_signatures: Vec::new(),
    }
}

/// A station's database against the heads received from it; then the database's own
/// chain (`anemone verify`).
pub fn check_database(
    station: &str,
    heads: &[ChainHead],
    store: &Store,
) -> Result<Verdict, StoreError> {
    let anchor = store.chain_anchor()?;
    let db_head = store.chain_head()?;
    let mut mismatch = None;
    for h in heads {
        let what = match store.chain_link(h.batch)? {
            Some(link) if hex(&link.hash) != h.hash => Some(format!(
                "published with hash {}, the database now holds {} for it: it was changed after publication",
                h.hash,
                hex(&link.hash)
            )),
            Some(link) if link.last_id != h.last_id => Some(format!(
                "published ending at reading id {}, the database's ends at {}",
                h.last_id, link.last_id
            )),
            Some(_) => None,
            // Removed by retention: the anchor's hash covers it.
            None if anchor.as_ref().is_some_and(|a| h.batch < a.batch) => None,
            None if db_head.is_none_or(|d| h.batch > d.batch) => Some(format!(
                "it was published, but the database's chain ends at batch {}: its end was removed",
                db_head.map_or(-1, |d| d.batch)
            )),
            None => Some("it was published, but its record is missing from the database".into()),
        };
        if let Some(what) = what {
            mismatch = Some(Mismatch {
                batch: h.batch,
                what,
            });
            break;
        }
    }
    if mismatch.is_none() {
        if let Some(t) = store.verify_chain()?.tampered {
            mismatch = Some(Mismatch {
                batch: t.batch,
                what: format!("the database's own chain: {}", t.what),
            });
        }
    }
    Ok(Verdict {
        station: station.to_string(),
        heads: heads.len(),
        mismatch,
        bad_signatures: Vec::new(),
    })
}

/// `anemone-collector verify [--db PATH] [--station ID]`: one verdict per station checked.
pub async fn run(
    client: &Client,
    db: Option<&Path>,
    station: Option<&str>,
) -> Result<Vec<Verdict>, VerifyError> {
    if let Some(path) = db {
        let store = Store::open_read_only(path, chrono_tz::UTC)?;
        let station = match station {
            Some(s) => s.to_string(),
            None => store
                .station_id()?
                .ok_or_else(|| VerifyError::NoStation(path.display().to_string()))?,
        };
        let heads = stored_heads(client, &station).await?;
        let mut v = check_database(&station, &heads, &store)?;
        let key = crate::db::station_key(client, &station).await?;
        v.bad_signatures = check_signatures(key.as_deref(), &heads);
        return Ok(vec![v]);
    }
    let names = match station {
        Some(s) => vec![s.to_string()],
        None => stations(client).await?,
    };
    let mut out = Vec::new();
    for s in names {
        let heads = stored_heads(client, &s).await?;
        let mut v = check_heads(&s, &heads);
        let key = crate::db::station_key(client, &s).await?;
        v.bad_signatures = check_signatures(key.as_deref(), &heads);
        out.push(v);
    }
    Ok(out)
}
