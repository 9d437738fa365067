//! Token signing keys and revoked users of a data dir, next to its secret
//! (`DATA_DIR/auth/`), changed by `crmpulse signing-keys` and `crmpulse revoke` while
//! the server runs; the server re-reads them every second (see `docs/security.md`).
//!
//! - `secret.key`: the server secret. As a signing key it is `initial`: the tokens it
//!   signs carry no `kid`. It also derives the ingest keys and webhook secrets, which
//!   retiring it as a signing key does not change.
//! - `signing-keys.json`: keys made by `signing-keys rotate`, each with its `kid`, the
//!   current one (which signs new tokens) and whether `initial` was retired. A token is
//!   accepted only while the key that signed it is in this set.
//! - `revocations.json`: per account and `sub`, the instant at or before which every
//!   token issued to them is refused. `[auth] revocations_file` names another file
//!   instead (one that `serve` replicas share); the format is the same.
//!
//! Both files are written whole to a temporary file and renamed, so a reader never sees
//! half of one; mode 0600 like the secret.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use query_api::auth::Revocations;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

/// The kid of the data dir's secret as a signing key (its tokens carry no `kid`).
pub const INITIAL: &str = "initial";

/// One key made by `signing-keys rotate`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKey {
    /// The key id, in the header of every token the key signs.
    pub kid: String,
    /// The HS256 secret, hex.
    pub secret: String,
    /// When the key was made, seconds since the epoch (for `signing-keys list`).
    pub created_at_s: u64,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("secret", &"[redacted]")
            .field("created_at_s", &self.created_at_s)
            .finish()
    }
}

/// `signing-keys.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SigningKeys {
    /// The kid that signs new tokens; `None`: the initial key does.
    pub current: Option<String>,
    /// Whether tokens of the initial key (no `kid`) are refused.
    pub initial_retired: bool,
    /// Keys made by rotation that are still accepted.
    pub keys: Vec<SigningKey>,
}

/// One revoked user in `revocations.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The account of the user's tokens.
    pub account_id: u64,
    /// The tokens' `sub`.
    pub sub: String,
    /// Tokens issued (`iat`) at or before this instant are refused, seconds since the
    /// epoch.
    pub not_after_s: u64,
}

/// `revocations.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RevocationList {
    /// Revoked users, one entry per account and `sub`.
    pub revoked: Vec<Revocation>,
}

impl RevocationList {
    /// The list as the verifier takes it.
    pub fn to_map(&self) -> Revocations {
        self.revoked
            .iter()
            .map(|r| ((r.account_id, r.sub.clone()), r.not_after_s))
            .collect()
    }
}

/// The signing keys file of a data dir.
pub fn keys_path(data_dir: &Path) -> PathBuf {
    data_dir.join("auth").join("signing-keys.json")
}

/// The revocations file of a data dir.
pub fn revocations_path(data_dir: &Path) -> PathBuf {
    data_dir.join("auth").join("revocations.json")
}

fn read_json<T: Default + serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().expect("a file in a directory");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(&serde_json::to_vec_pretty(value)?)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

/// The signing keys of `data_dir` (none made yet: the initial key only).
///
/// # Errors
/// An unreadable or malformed file.
pub fn signing_keys(data_dir: &Path) -> anyhow::Result<SigningKeys> {
    read_json(&keys_path(data_dir))
}

/// The revoked users in the revocations file `path` (none when it does not exist).
///
/// # Errors
/// An unreadable or malformed file.
pub fn revocations(path: &Path) -> anyhow::Result<RevocationList> {
    read_json(path)
}

/// Makes a new key, current from now on; returns its kid. Tokens of the other keys
/// stay valid until their key is retired.
///
/// # Errors
/// The files cannot be read or written.
pub fn rotate(data_dir: &Path, now_s: u64) -> anyhow::Result<String> {
    let mut keys = signing_keys(data_dir)?;
    let mut id = [0u8; 4];
    rand::rng().fill_bytes(&mut id);
    let kid = format!("k{}-{}", now_s, hex::encode(id));
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    keys.keys.push(SigningKey {
        kid: kid.clone(),
        secret: hex::encode(secret),
        created_at_s: now_s,
    });
    keys.current = Some(kid.clone());
    write_json(&keys_path(data_dir), &keys)?;
    Ok(kid)
}

/// Retires `kid` (or [`INITIAL`]): every token it signed is refused from the server's
/// next re-read on. The current key cannot be retired: rotate first.
///
/// # Errors
/// An unknown kid, the current key, or files that cannot be read or written.
pub fn retire(data_dir: &Path, kid: &str) -> anyhow::Result<()> {
    let mut keys = signing_keys(data_dir)?;
    if keys.current.as_deref().unwrap_or(INITIAL) == kid {
        bail!("{kid} is the current signing key: run `crmpulse signing-keys rotate` first");
    }
    if kid == INITIAL {
        if keys.initial_retired {
            bail!("{INITIAL} is already retired");
        }
        keys.initial_retired = true;
    } else {
        let before = keys.keys.len();
        keys.keys.retain(|k| k.kid != kid);
        if keys.keys.len() == before {
            bail!("no signing key {kid:?}: see `crmpulse signing-keys list`");
        }
    }
    write_json(&keys_path(data_dir), &keys)
}

/// One line per key: kid, state (`current`, `accepted`, `retired`), creation time.
///
/// # Errors
/// An unreadable file.
pub fn list(data_dir: &Path) -> anyhow::Result<Vec<String>> {
    let keys = signing_keys(data_dir)?;
    let state = |kid: &str, retired: bool| {
        if keys.current.as_deref().unwrap_or(INITIAL) == kid {
            "current"
        } else if retired {
            "retired"
        } else {
            "accepted"
        }
    };
    let mut lines = vec![format!(
        "{INITIAL}\t{}\t(the data dir's secret; its tokens carry no kid)",
        state(INITIAL, keys.initial_retired)
    )];
    for k in &keys.keys {
        lines.push(format!(
            "{}\t{}\tmade {}",
            k.kid,
            state(&k.kid, false),
            schemas::event::format_rfc3339_ms(k.created_at_s as i64 * 1000)
        ));
    }
    Ok(lines)
}

/// Revokes, in the revocations file `path`, every token of `sub` in `account_id`
/// issued at or before `now_s`; with `lift`, removes the revocation instead.
///
/// # Errors
/// The file cannot be read or written.
pub fn revoke(
    path: &Path,
    account_id: u64,
    sub: &str,
    now_s: u64,
    lift: bool,
) -> anyhow::Result<()> {
    let mut list = revocations(path)?;
    list.revoked
        .retain(|r| !(r.account_id == account_id && r.sub == sub));
    if !lift {
        list.revoked.push(Revocation {
            account_id,
            sub: sub.to_owned(),
            not_after_s: now_s,
        });
    }
    write_json(path, &list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_retirement_and_revocation_are_kept_in_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(signing_keys(dir.path()).unwrap(), SigningKeys::default());
        assert!(retire(dir.path(), INITIAL).is_err(), "the current key");
        let kid = rotate(dir.path(), 1_795_000_000).unwrap();
        let keys = signing_keys(dir.path()).unwrap();
        assert_eq!(keys.current.as_deref(), Some(kid.as_str()));
        assert!(retire(dir.path(), &kid).is_err(), "the current key");
        retire(dir.path(), INITIAL).unwrap();
        assert!(signing_keys(dir.path()).unwrap().initial_retired);
        let listed = list(dir.path()).unwrap().join("\n");
        assert!(
            listed.contains(&format!("{kid}\tcurrent")) && listed.contains("initial\tretired"),
            "{listed}"
        );
        assert!(
            !listed.contains(&keys.keys[0].secret),
            "the list never shows a secret"
        );
        assert!(!format!("{keys:?}").contains(&keys.keys[0].secret));

        let file = revocations_path(dir.path());
        revoke(&file, 1, "bea", 100, false).unwrap();
        revoke(&file, 1, "bea", 200, false).unwrap();
        revoke(&file, 2, "bea", 300, false).unwrap();
        let map = revocations(&file).unwrap().to_map();
        assert_eq!(map.len(), 2);
        assert_eq!(map[&(1, "bea".to_owned())], 200);
        revoke(&file, 1, "bea", 400, true).unwrap();
        let map = revocations(&file).unwrap().to_map();
        assert_eq!(map.keys().collect::<Vec<_>>(), [&(2, "bea".to_owned())]);
    }
}
