//! Keys: the writer's [`Integrity`] settings and the verifier's [`Keyring`].

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use crate::Error;

/// The shortest HMAC key a writer takes: SHA-256's output size.
pub(crate) const MIN_KEY_BYTES: usize = 32;

/// Turns the hash chain on for a writer: its chain id, its HMAC key and how often it checkpoints.
///
/// | setting | default |
/// | --- | --- |
/// | chain id | required: unique per writer (process) on one database; 1 to 255 characters, no NUL |
/// | key id, key | required: the key never reaches the database; the id 1 to 255 characters, no NUL |
/// | [`checkpoint_every`](Self::checkpoint_every) | 60 s (and at shutdown) |
/// | [`sign_checkpoints`](Self::sign_checkpoints) | off |
#[derive(Clone)]
pub struct Integrity {
    pub(crate) chain_id: String,
    pub(crate) key_id: String,
    pub(crate) key: Vec<u8>,
    pub(crate) checkpoint_every: Duration,
    pub(crate) signing_key: Option<ed25519_dalek::SigningKey>,
}

impl fmt::Debug for Integrity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Integrity")
            .field("chain_id", &self.chain_id)
            .field("key_id", &self.key_id)
            .field("key", &"[REDACTED]")
            .field("checkpoint_every", &self.checkpoint_every)
            .field("signs_checkpoints", &self.signing_key.is_some())
            .finish()
    }
}

impl Integrity {
    /// A chain named `chain_id`, hashed with `key` (at least 32 random bytes) under `key_id`.
    ///
    /// A shorter key is refused when the layer is built
    /// ([`Error::Config`](crate::Error::Config) from `build`).
    pub fn new(chain_id: impl Into<String>, key_id: impl Into<String>, key: Vec<u8>) -> Self {
        Self {
            chain_id: chain_id.into(),
            key_id: key_id.into(),
            key,
            checkpoint_every: Duration::from_secs(60),
            signing_key: None,
        }
    }

    /// Reads the key from `TOWER_AUDIT_HMAC_KEY` (hex) and its id from
    /// `TOWER_AUDIT_HMAC_KEY_ID`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when a variable is missing or the key is not hex or shorter than 32
    /// bytes.
    pub fn from_env(chain_id: impl Into<String>) -> Result<Self, Error> {
        let var = |name: &str| {
            std::env::var(name).map_err(|_| Error::Config(format!("{name} is not set")))
        };
        let key = decode_hex(var("TOWER_AUDIT_HMAC_KEY")?.trim())
            .ok_or_else(|| Error::Config("TOWER_AUDIT_HMAC_KEY is not hex".into()))?;
        if key.len() < MIN_KEY_BYTES {
            return Err(Error::Config(format!(
                "TOWER_AUDIT_HMAC_KEY must hold at least {MIN_KEY_BYTES} bytes"
            )));
        }
        Ok(Self::new(
            chain_id,
            usable_key_id(var("TOWER_AUDIT_HMAC_KEY_ID")?)?,
            key,
        ))
    }

    /// How often the writer stores a checkpoint while its chain grows.
    #[must_use]
    pub fn checkpoint_every(mut self, every: Duration) -> Self {
        self.checkpoint_every = every;
        self
    }

    /// Signs checkpoints with this Ed25519 secret key, so they can be checked with the public key
    /// alone ([`verify`](super::verify) with [`Keyring::checkpoint_key`]).
    #[must_use]
    pub fn sign_checkpoints(mut self, secret: [u8; 32]) -> Self {
        self.signing_key = Some(ed25519_dalek::SigningKey::from_bytes(&secret));
        self
    }

    /// The Ed25519 public key of the checkpoint signatures, if they are signed.
    pub fn checkpoint_public_key(&self) -> Option<[u8; 32]> {
        self.signing_key
            .as_ref()
            .map(|key| key.verifying_key().to_bytes())
    }
}

/// `TOWER_AUDIT_HMAC_KEY_ID` as the rows name it: an empty one, or one with blanks around it
/// (an environment file's `KEY_ID=k2026 `), is refused rather than used. Used as given, it named
/// a key no row was hashed with, and `verify` reported every row of an intact chain as hashed
/// with an unknown key: a tamper alarm.
fn usable_key_id(id: String) -> Result<String, Error> {
    if id.is_empty() || id.trim() != id {
        return Err(Error::Config(format!(
            "TOWER_AUDIT_HMAC_KEY_ID {id:?} is empty or has blanks around it: give the key id \
             the rows were written with"
        )));
    }
    Ok(id)
}

/// The keys a verifier knows: HMAC keys by id (old ones too, after a rotation), and optionally
/// the public key of checkpoint signatures.
#[derive(Clone, Default)]
pub struct Keyring {
    pub(crate) keys: HashMap<String, Vec<u8>>,
    pub(crate) checkpoint_key: Option<ed25519_dalek::VerifyingKey>,
    pub(crate) accept_unsigned_purges: bool,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .field("checkpoint_key", &self.checkpoint_key.is_some())
            .field("accept_unsigned_purges", &self.accept_unsigned_purges)
            .finish()
    }
}

impl Keyring {
    /// An empty keyring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an HMAC key.
    ///
    /// A key shorter than the 32 bytes a writer takes sealed no row: verifying with one is
    /// refused ([`Error::Config`] from [`verify`](fn@super::verify) and
    /// [`verify_export`](super::verify_export)) rather than reported as tampering.
    #[must_use]
    pub fn key(mut self, key_id: impl Into<String>, key: Vec<u8>) -> Self {
        self.keys.insert(key_id.into(), key);
        self
    }

    /// Refuses a keyring holding a key no writer takes (see [`key`](Self::key)).
    pub(crate) fn check(&self) -> Result<(), Error> {
        let mut short: Vec<&str> = self
            .keys
            .iter()
            .filter(|(_, key)| key.len() < MIN_KEY_BYTES)
            .map(|(id, _)| id.as_str())
            .collect();
        if short.is_empty() {
            return Ok(());
        }
        short.sort_unstable();
        let ids = short
            .iter()
            .map(|id| crate::store::printable(id).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        let what = if short.len() == 1 {
            "the key of id"
        } else {
            "the keys of ids"
        };
        Err(too_short(&format!("{what} {ids}")))
    }

    /// Checks checkpoint signatures with this Ed25519 public key, and those of purge tombstones
    /// ([`PurgeOptions::sign_tombstones`](crate::store::PurgeOptions::sign_tombstones)): an
    /// unsigned tombstone is then a [`BadCheckpoint`](super::BreakKind::BadCheckpoint), since
    /// anyone who can write to the database could add one to pass off deleted rows as purged.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the bytes are not a valid public key.
    pub fn checkpoint_key(mut self, public: [u8; 32]) -> Result<Self, Error> {
        self.checkpoint_key = Some(
            ed25519_dalek::VerifyingKey::from_bytes(&public)
                .map_err(|e| Error::Config(format!("bad checkpoint public key: {e}")))?,
        );
        Ok(self)
    }
}

impl Keyring {
    /// Takes purge tombstones without a valid signature even with a
    /// [`checkpoint_key`](Self::checkpoint_key): for trails purged before tombstones were
    /// signed. Such a tombstone can hide the deletion of a chain's first rows, or of all of
    /// them; checkpoints must still be signed.
    #[must_use]
    pub fn accept_unsigned_purges(mut self) -> Self {
        self.accept_unsigned_purges = true;
        self
    }
}

impl Keyring {
    /// The verifier's keys from the environment, so they never appear on a command line:
    ///
    /// | variable | holds |
    /// | --- | --- |
    /// | `TOWER_AUDIT_HMAC_KEY` | the current key, hex (the writer's [`Integrity::from_env`] reads the same) |
    /// | `TOWER_AUDIT_HMAC_KEY_ID` | its id |
    /// | `TOWER_AUDIT_HMAC_KEYS` | optional: older keys after a rotation, `id1:hex1,id2:hex2` |
    ///
    /// At least one key is needed: the current key, or older keys alone. Each must hold 32
    /// bytes or more, as the writer requires: a shorter one (an empty variable) sealed no row,
    /// and every row would read as tampered with.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when no key is given, a key is not hex or shorter than 32 bytes, or
    /// the current key has no id. The message names the variable, never the key.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with the variables looked up by `var`.
    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let mut keyring = Self::new();
        if let Some(list) = var("TOWER_AUDIT_HMAC_KEYS") {
            for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                // On the last `:`: hex holds none, and a key id may (`vault:v1`).
                let (id, hex) = entry.rsplit_once(':').ok_or_else(|| {
                    Error::Config("TOWER_AUDIT_HMAC_KEYS must read id1:hex1,id2:hex2".into())
                })?;
                let key = decode_hex(hex.trim()).ok_or_else(|| {
                    Error::Config(format!(
                        "TOWER_AUDIT_HMAC_KEYS: the key of {:?} is not hex",
                        id.trim()
                    ))
                })?;
                if key.len() < MIN_KEY_BYTES {
                    return Err(too_short(&format!(
                        "TOWER_AUDIT_HMAC_KEYS: the key of {:?}",
                        id.trim()
                    )));
                }
                keyring = keyring.key(id.trim(), key);
            }
        }
        if let Some(hex) = var("TOWER_AUDIT_HMAC_KEY") {
            let key = decode_hex(hex.trim())
                .ok_or_else(|| Error::Config("TOWER_AUDIT_HMAC_KEY is not hex".into()))?;
            if key.len() < MIN_KEY_BYTES {
                return Err(too_short("TOWER_AUDIT_HMAC_KEY"));
            }
            let id = var("TOWER_AUDIT_HMAC_KEY_ID").ok_or_else(|| {
                Error::Config(
                    "TOWER_AUDIT_HMAC_KEY is set but TOWER_AUDIT_HMAC_KEY_ID is not".into(),
                )
            })?;
            keyring = keyring.key(usable_key_id(id)?, key);
        }
        if keyring.keys.is_empty() {
            return Err(Error::Config(
                "no HMAC key: set TOWER_AUDIT_HMAC_KEY and TOWER_AUDIT_HMAC_KEY_ID (and \
                 TOWER_AUDIT_HMAC_KEYS for older keys)"
                    .into(),
            ));
        }
        Ok(keyring)
    }
}

/// The error for a key of `what` shorter than a writer takes.
fn too_short(what: &str) -> Error {
    Error::Config(format!(
        "{what} must hold at least {MIN_KEY_BYTES} bytes ({} hex digits), as the writer's does",
        2 * MIN_KEY_BYTES
    ))
}

impl From<&Integrity> for Keyring {
    fn from(integrity: &Integrity) -> Self {
        Self {
            keys: HashMap::from([(integrity.key_id.clone(), integrity.key.clone())]),
            checkpoint_key: integrity
                .signing_key
                .as_ref()
                .map(ed25519_dalek::SigningKey::verifying_key),
            accept_unsigned_purges: false,
        }
    }
}

pub(crate) fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

pub(crate) use crate::store::decode_hex;

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn keyring_from_env_reads_the_current_and_older_keys() {
        let (k0, k1, k2) = ("0a".repeat(32), "0c".repeat(33), "ff".repeat(32));
        let keyring = Keyring::from_vars(vars(&[
            ("TOWER_AUDIT_HMAC_KEY", k2.as_str()),
            ("TOWER_AUDIT_HMAC_KEY_ID", "k2"),
            (
                "TOWER_AUDIT_HMAC_KEYS",
                format!("k0:{k0}, k1:{k1},").as_str(),
            ),
        ]))
        .expect("valid keys");
        assert_eq!(keyring.keys.get("k2"), Some(&vec![0xff; 32]));
        assert_eq!(keyring.keys.get("k1"), Some(&vec![0x0c; 33]));
        assert_eq!(keyring.keys.get("k0"), Some(&vec![0x0a; 32]));
        assert_eq!(keyring.keys.len(), 3);
        // Found by a probe: a key id holding a `:` (`vault:v1`), which the writer takes, was
        // split there, and the old key could not be given to `verify`.
        let keyring = Keyring::from_vars(vars(&[(
            "TOWER_AUDIT_HMAC_KEYS",
            format!("vault:v1:{k0}, vault:v2:{k2}").as_str(),
        )]))
        .expect("valid keys");
        assert_eq!(keyring.keys.get("vault:v1"), Some(&vec![0x0a; 32]));
        assert_eq!(keyring.keys.get("vault:v2"), Some(&vec![0xff; 32]));
        // Older keys alone are enough to verify an old trail.
        let old_only = Keyring::from_vars(vars(&[(
            "TOWER_AUDIT_HMAC_KEYS",
            format!("k0:{k0}").as_str(),
        )]));
        assert_eq!(old_only.map(|k| k.keys.len()).ok(), Some(1));
    }

    /// A key shorter than the writer takes (an empty variable, `00`) sealed no row: it is a
    /// configuration error, where every row verified as `Modified`. The message names the
    /// variable and never holds the key.
    #[test]
    fn keyring_from_env_refuses_keys_shorter_than_a_writer_takes() {
        let good = "ab".repeat(32);
        let short = "cd".repeat(31);
        let older = format!("k0:{good},k9:{short}");
        for (bad, named) in [
            (
                vec![
                    ("TOWER_AUDIT_HMAC_KEY", ""),
                    ("TOWER_AUDIT_HMAC_KEY_ID", "k1"),
                ],
                "TOWER_AUDIT_HMAC_KEY ",
            ),
            (
                vec![
                    ("TOWER_AUDIT_HMAC_KEY", "00"),
                    ("TOWER_AUDIT_HMAC_KEY_ID", "k1"),
                ],
                "TOWER_AUDIT_HMAC_KEY ",
            ),
            (
                vec![
                    ("TOWER_AUDIT_HMAC_KEY", short.as_str()),
                    ("TOWER_AUDIT_HMAC_KEY_ID", "k1"),
                ],
                "TOWER_AUDIT_HMAC_KEY ",
            ),
            (
                vec![("TOWER_AUDIT_HMAC_KEYS", "k0:")],
                "TOWER_AUDIT_HMAC_KEYS",
            ),
            (
                vec![
                    ("TOWER_AUDIT_HMAC_KEY", good.as_str()),
                    ("TOWER_AUDIT_HMAC_KEY_ID", "k1"),
                    ("TOWER_AUDIT_HMAC_KEYS", older.as_str()),
                ],
                "TOWER_AUDIT_HMAC_KEYS: the key of \"k9\"",
            ),
        ] {
            match Keyring::from_vars(vars(&bad)) {
                Err(Error::Config(message)) => {
                    assert!(message.contains(named), "{bad:?}: {message}");
                    assert!(message.contains("32 bytes"), "{bad:?}: {message}");
                    assert!(!message.contains(&short), "{bad:?}: {message}");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn keyring_from_env_rejects_what_it_cannot_use() {
        let key = "ab".repeat(32);
        for bad in [
            vec![],
            vec![("TOWER_AUDIT_HMAC_KEY", "00ff")],
            vec![("TOWER_AUDIT_HMAC_KEY", key.as_str())],
            vec![
                ("TOWER_AUDIT_HMAC_KEY", "xyz"),
                ("TOWER_AUDIT_HMAC_KEY_ID", "k"),
            ],
            vec![("TOWER_AUDIT_HMAC_KEYS", "k0=0a0b")],
            vec![("TOWER_AUDIT_HMAC_KEYS", "k0:0a0")],
            // Found by a probe: used as given, they named a key no row was hashed with, and
            // `verify` called an intact chain tampered with.
            vec![
                ("TOWER_AUDIT_HMAC_KEY", key.as_str()),
                ("TOWER_AUDIT_HMAC_KEY_ID", ""),
            ],
            vec![
                ("TOWER_AUDIT_HMAC_KEY", key.as_str()),
                ("TOWER_AUDIT_HMAC_KEY_ID", "k2026 "),
            ],
        ] {
            let result = Keyring::from_vars(vars(&bad));
            assert!(matches!(result, Err(Error::Config(_))), "{bad:?}");
        }
    }
}
