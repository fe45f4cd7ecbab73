//! Optional station signing of the published chain heads (`…/chain`).
//!
//! A station with `[station] signing_key` set holds an Ed25519 key pair in that file
//! (PKCS#8 v2 DER, as `ring` writes it; mode 0600). It signs every head it publishes; the
//! public key goes out in the retained `meta` and with every head, so a copy held elsewhere
//! (the network collector) can show that a head came from the station that first announced
//! that key. The private key is never logged or published.
//!
//! The signed message is the canonical text of [`signed_message`]: ASCII lines, in this
//! order, each ending in `\n`:
//!
//! ```text
//! anemone-chain-head-v1
//! station=<station id>
//! batch=<batch number, decimal>
//! last_id=<last reading id, decimal>
//! hash=<the batch's SHA-256, 64 lowercase hex digits>
//! ```
//!
//! Signatures (64 bytes) and public keys (32 bytes) are written in lowercase hex.
//!
//! Ed25519 comes from `ring`, already a dependency (rustls and the board identity use
//! it), so no crate is added for it.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

/// Why a key file could not be used or written.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The file is readable or writable by its group or others.
    #[error("signing key {path}: mode {mode:04o} lets other users read it; it must be readable by the station's user only: run `chmod 600 {path}`")]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file could not be read, created or written.
    #[error("signing key {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a key this program wrote.
    #[error("signing key {path}: not an Ed25519 PKCS#8 key ({why}); move it away and create a new one with `anemone keygen`")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What `ring` said.
        why: String,
    },
    /// `keygen` found a file already there.
    #[error("signing key {path} already exists: a new key would break the link to the heads already published; remove it first if you really mean to replace it")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The system's random source failed.
    #[error("signing key {path}: the system random source failed")]
    Random {
        /// The file.
        path: PathBuf,
    },
}

/// A station's signing key, loaded from its file.
pub struct StationKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for StationKey {
    /// The public half only: the private key never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StationKey(public {})", self.public_key_hex())
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SigningError + '_ {
    move |source| SigningError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl StationKey {
    /// Writes a new key to `path` (mode 0600), refusing to replace an existing file. The
    /// key is written to a temporary file beside it first and linked into place, so a
    /// crash never leaves a partial key at `path`.
    pub fn generate(path: &Path) -> Result<StationKey, SigningError> {
        if path.exists() {
            return Err(SigningError::Exists {
                path: path.to_path_buf(),
            });
        }
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| {
            SigningError::Random {
                path: path.to_path_buf(),
            }
        })?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .map_or_else(|| "key".into(), |n| n.to_string_lossy().into_owned());
        let tmp = dir.join(format!(".{name}.new-{}", std::process::id()));
        let written = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(doc.as_ref())?;
            f.sync_all()?;
            // A hard link never replaces an existing file (create_new semantics).
            std::fs::hard_link(&tmp, path)
        })();
        let _ = std::fs::remove_file(&tmp);
        written.map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                SigningError::Exists {
                    path: path.to_path_buf(),
                }
            } else {
                io(path)(e)
            }
        })?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Self::from_pkcs8(path, doc.as_ref())
    }

    /// Reads the key in `path`, refusing a file its group or others may read or write.
    pub fn load(path: &Path) -> Result<StationKey, SigningError> {
        let meta = std::fs::metadata(path).map_err(io(path))?;
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(SigningError::Exposed {
                path: path.to_path_buf(),
                mode,
            });
        }
        let bytes = std::fs::read(path).map_err(io(path))?;
        Self::from_pkcs8(path, &bytes)
    }

    /// [`StationKey::load`], or [`StationKey::generate`] when there is no file yet (the
    /// first start with `signing_key` configured). The bool is true when it was created.
    pub fn load_or_create(path: &Path) -> Result<(StationKey, bool), SigningError> {
        match Self::load(path) {
            Err(SigningError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                match Self::generate(path) {
                    Ok(k) => Ok((k, true)),
                    // Another process created it meanwhile: use that one.
                    Err(SigningError::Exists { .. }) => Ok((Self::load(path)?, false)),
                    Err(e) => Err(e),
                }
            }
            other => other.map(|k| (k, false)),
        }
    }

    fn from_pkcs8(path: &Path, bytes: &[u8]) -> Result<StationKey, SigningError> {
        Ed25519KeyPair::from_pkcs8(bytes)
            .map(|pair| StationKey { pair })
            .map_err(|e| SigningError::Invalid {
                path: path.to_path_buf(),
                why: e.to_string(),
            })
    }

    /// The public key, 64 lowercase hex digits.
    pub fn public_key_hex(&self) -> String {
        to_hex(self.pair.public_key().as_ref())
    }

    /// The signature of `message`, 128 lowercase hex digits.
    pub fn sign_hex(&self, message: &[u8]) -> String {
        to_hex(self.pair.sign(message).as_ref())
    }

    /// The signature of a chain head (see [`signed_message`]).
    pub fn sign_head(&self, station: &str, batch: i64, last_id: i64, hash_hex: &str) -> String {
        self.sign_hex(signed_message(station, batch, last_id, hash_hex).as_bytes())
    }
}

/// The canonical text a head's signature covers (see the module docs). `hash_hex` is
/// lowercased.
pub fn signed_message(station: &str, batch: i64, last_id: i64, hash_hex: &str) -> String {
    format!(
        "anemone-chain-head-v1\nstation={station}\nbatch={batch}\nlast_id={last_id}\nhash={}\n",
        hash_hex.to_ascii_lowercase()
    )
}

/// True when `signature_hex` is `public_key_hex`'s signature of the head. Malformed hex
/// is simply not a valid signature.
pub fn verify_head(
    public_key_hex: &str,
    signature_hex: &str,
    station: &str,
    batch: i64,
    last_id: i64,
    hash_hex: &str,
) -> bool {
    let (Some(key), Some(sig)) = (from_hex(public_key_hex), from_hex(signature_hex)) else {
        return false;
    };
    if key.len() != 32 || sig.len() != 64 {
        return false;
    }
    let message = signed_message(station, batch, last_id, hash_hex);
    UnparsedPublicKey::new(&ED25519, key)
        .verify(message.as_bytes(), &sig)
        .is_ok()
}

/// True for 64 hex digits (the form of a public key).
pub fn is_public_key_hex(text: &str) -> bool {
    from_hex(text).is_some_and(|b| b.len() == 32)
}

/// Lowercase hex of `bytes` (hashes, keys, signatures: published with every chain head,
/// so a table lookup rather than a formatted write per byte, which cost ten times more).
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn a_signed_head_verifies_and_a_changed_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let key = StationKey::generate(&dir.path().join("chain.key")).unwrap();
        let pk = key.public_key_hex();
        let sig = key.sign_head("mast", 7, 1042, HASH);
        assert_eq!(sig.len(), 128);
        assert!(verify_head(&pk, &sig, "mast", 7, 1042, HASH));
        // Every signed field matters.
        assert!(!verify_head(&pk, &sig, "mast2", 7, 1042, HASH));
        assert!(!verify_head(&pk, &sig, "mast", 8, 1042, HASH));
        assert!(!verify_head(&pk, &sig, "mast", 7, 1041, HASH));
        let other_hash = format!("0{}", &HASH[1..]);
        assert!(!verify_head(&pk, &sig, "mast", 7, 1042, &other_hash));
        // Another key's signature, and garbage, do not verify.
        let other = StationKey::generate(&dir.path().join("other.key")).unwrap();
        assert!(!verify_head(
            &other.public_key_hex(),
            &sig,
            "mast",
            7,
            1042,
            HASH
        ));
        assert!(!verify_head(&pk, "zz", "mast", 7, 1042, HASH));
        assert!(!verify_head(&pk, &sig[..126], "mast", 7, 1042, HASH));
    }

    #[test]
    fn the_key_file_is_0600_and_reloads_as_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.key");
        let key = StationKey::generate(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = StationKey::load(&path).unwrap();
        assert_eq!(again.public_key_hex(), key.public_key_hex());
        // Only the key is left in the directory (the temporary file is gone).
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // Never replaced.
        assert!(matches!(
            StationKey::generate(&path),
            Err(SigningError::Exists { .. })
        ));
        let (same, created) = StationKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(same.public_key_hex(), key.public_key_hex());
        // Debug shows the public half only.
        assert_eq!(
            format!("{key:?}"),
            format!("StationKey(public {})", key.public_key_hex())
        );
    }

    #[test]
    fn a_key_file_others_can_read_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.key");
        StationKey::generate(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = StationKey::load(&path).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("0644"), "{err}");
        assert!(
            err.contains(&format!("chmod 600 {}", path.display())),
            "{err}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(StationKey::load(&path).is_ok());
    }

    #[test]
    fn first_start_creates_the_key_and_garbage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.key");
        let (_, created) = StationKey::load_or_create(&path).unwrap();
        assert!(created);
        let bad = dir.path().join("bad.key");
        std::fs::write(&bad, b"not a key").unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = StationKey::load(&bad).unwrap_err().to_string();
        assert!(err.contains("anemone keygen"), "{err}");
    }
}
