//! Credentials of a running crmpulse: the dashboard's token verifier and limits, the
//! ingest keys, and (for `crmpulse token` and the demo's links) the token signer.
//!
//! The embedded default keeps a generated 32-byte secret in `DATA_DIR/auth/secret.key`
//! (created on first start, mode 0600): it signs HS256 tokens when `[auth]
//! hs256_secret` is empty and derives every account's ingest key and webhook secret.
//! `serve` and `ingest` have no data dir: replicas must share a configured key.
//!
//! With the data dir's secret, tokens are signed and checked with the data dir's
//! signing keys and revocations ([`crate::keyring`]): `crmpulse signing-keys` and
//! `crmpulse revoke` change them, and a running server applies them within a second
//! ([`KeyWatch`]).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use ingest::auth::IngestAuth;
use query_api::auth::{Auth, Claims, Limits, Role, Signer, Verifier};
use rand::RngCore as _;
use schemas::Clock;

use crate::config::{AuthMode, AuthSection};
use crate::keyring;

/// The secret file inside a data dir.
pub fn secret_path(data_dir: &Path) -> PathBuf {
    data_dir.join("auth").join("secret.key")
}

/// Everything the servers and tools need to authenticate.
#[derive(Debug)]
pub struct Credentials {
    /// Dashboard token verification and limits; `None` with `mode = "off"`.
    pub dashboard: Option<Arc<Auth>>,
    /// Ingest keys and webhook signatures.
    pub ingest: Arc<IngestAuth>,
    /// Mints tokens, when a signing key is at hand.
    pub signer: Option<Signer>,
    /// The secret ingest keys derive from, when there is one.
    secret: Option<Vec<u8>>,
    ttl: Duration,
    /// When tokens are issued (`iat`, and `exp` = `iat` + ttl) and checked.
    clock: Clock,
    /// The data dir whose signing keys apply, when there is one.
    keyring: Option<PathBuf>,
    /// The revocations file that applies, when there is one.
    revocations: Option<PathBuf>,
}

/// The HS256 verifier and signer of a configured secret: `hs256_secret` signs (with
/// `hs256_kid`), it and `hs256_previous_keys` verify.
fn configured_keys(section: &AuthSection, secret: &[u8]) -> anyhow::Result<(Verifier, Signer)> {
    let kid = |k: &str| (!k.is_empty()).then(|| k.to_owned());
    let mut set: Vec<(Option<String>, &[u8])> = vec![(kid(&section.hs256_kid), secret)];
    for (i, k) in section.hs256_previous_keys.iter().enumerate() {
        if k.secret.expose().len() < 32 {
            bail!(
                "[auth] hs256_previous_keys[{i}] ({:?}): the secret needs at least 32 bytes",
                k.kid
            );
        }
        set.push((kid(&k.kid), k.secret.expose().as_bytes()));
    }
    let signer = Signer::hs256(secret)
        .map_err(anyhow::Error::msg)?
        .with_kid(kid(&section.hs256_kid));
    Ok((
        Verifier::hs256_keys(&set).map_err(anyhow::Error::msg)?,
        signer,
    ))
}

/// The HS256 verifier and signer of a data dir: its secret (kid [`keyring::INITIAL`],
/// no `kid` in its tokens, unless retired) and the keys made by rotation; the current
/// key signs.
fn data_dir_keys(data_dir: &Path, secret: &[u8]) -> anyhow::Result<(Verifier, Signer)> {
    let keys = keyring::signing_keys(data_dir)?;
    let mut set: Vec<(Option<String>, &[u8])> = Vec::new();
    if !keys.initial_retired {
        set.push((None, secret));
    }
    for k in &keys.keys {
        set.push((Some(k.kid.clone()), k.secret.as_bytes()));
    }
    let signer = match &keys.current {
        None => Signer::hs256(secret),
        Some(kid) => {
            let key = keys.keys.iter().find(|k| &k.kid == kid).with_context(|| {
                format!("signing-keys.json: the current key {kid:?} is missing")
            })?;
            Signer::hs256(key.secret.as_bytes()).map(|s| s.with_kid(Some(kid.clone())))
        }
    }
    .map_err(anyhow::Error::msg)?;
    Ok((
        Verifier::hs256_keys(&set).map_err(anyhow::Error::msg)?,
        signer,
    ))
}

impl Credentials {
    /// Loads the credentials `section` describes; the data dir's secret (generated when
    /// missing) stands in for an empty `hs256_secret`. Tokens are minted and their
    /// expiry checked on `clock`.
    ///
    /// # Errors
    /// Unreadable or invalid keys, or no key at all where one is needed.
    pub fn load(
        section: &AuthSection,
        data_dir: Option<&Path>,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        let ttl = Duration::from_secs(section.token_ttl_s.max(60));
        let secret = || -> anyhow::Result<Option<Vec<u8>>> {
            Ok(match (section.hs256_secret.expose(), data_dir) {
                (s, _) if !s.is_empty() => Some(s.as_bytes().to_vec()),
                (_, Some(dir)) => Some(data_dir_secret(dir)?),
                (_, None) => None,
            })
        };
        // The data dir's keys and revocations apply when its secret is the server's.
        let keyring =
            data_dir.filter(|_| section.hs256_secret.is_empty() && section.mode == AuthMode::Hs256);
        let (verifier, signer, secret) = match section.mode {
            AuthMode::Off => {
                tracing::warn!(
                    "[auth] mode = \"off\": anyone who reaches this server reads every account and writes events; run it only behind a proxy that authenticates"
                );
                return Ok(Self {
                    dashboard: None,
                    ingest: Arc::new(IngestAuth::off()),
                    signer: None,
                    secret: None,
                    ttl,
                    clock,
                    keyring: None,
                    revocations: None,
                });
            }
            AuthMode::Hs256 => {
                let Some(secret) = secret()? else {
                    bail!(
                        "[auth] hs256_secret is empty: `serve` and `ingest` replicas need a shared secret (or mode = \"rs256\" with rs256_public_keys)"
                    );
                };
                let (verifier, signer) = match keyring {
                    Some(dir) => data_dir_keys(dir, &secret)?,
                    None => configured_keys(section, &secret)?,
                };
                (verifier, Some(signer), Some(secret))
            }
            AuthMode::Rs256 => {
                let pems = section
                    .rs256_public_keys
                    .iter()
                    .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let signer = section
                    .rs256_private_key
                    .as_ref()
                    .map(|p| {
                        let pem =
                            std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
                        Signer::rs256(&pem).map_err(anyhow::Error::msg)
                    })
                    .transpose()?;
                (
                    Verifier::rs256(&pems).map_err(anyhow::Error::msg)?,
                    signer,
                    secret()?,
                )
            }
        };
        for k in &section.ingest_keys {
            if k.key.expose().len() < 24 {
                bail!(
                    "[auth] ingest_keys {:?}: the key needs at least 24 characters",
                    k.id
                );
            }
        }
        let limits = Limits {
            requests_per_s: section.requests_per_s,
            burst: section.burst,
            max_live_connections: section.max_live_connections,
            max_live_connections_per_token: section.max_live_connections_per_token,
        };
        let dashboard = Arc::new(Auth::new(verifier.with_clock(clock), limits));
        let revocations = section
            .revocations_file
            .clone()
            .or_else(|| keyring.map(keyring::revocations_path));
        if let Some(path) = &revocations {
            dashboard.replace_revocations(keyring::revocations(path)?.to_map());
        }
        Ok(Self {
            dashboard: Some(dashboard),
            ingest: Arc::new(IngestAuth::new(
                secret.clone(),
                section.ingest_keys.clone(),
                section.ingest_requests_per_s,
            )),
            signer,
            secret,
            ttl,
            clock,
            keyring: keyring.map(Path::to_path_buf),
            revocations,
        })
    }

    /// What keeps the dashboard's keys and revocations in step with the data dir's
    /// files, when they apply ([`KeyWatch::run`]).
    pub fn key_watch(&self) -> Option<KeyWatch> {
        let keys = self.keyring.clone().zip(self.secret.clone());
        if keys.is_none() && self.revocations.is_none() {
            return None;
        }
        Some(KeyWatch {
            keys,
            revocations: self.revocations.clone(),
            auth: Arc::clone(self.dashboard.as_ref()?),
            clock: self.clock,
        })
    }

    /// The revocations file `crmpulse revoke` writes.
    ///
    /// # Errors
    /// None applies: no data dir secret and no `[auth] revocations_file`.
    pub fn revocations_file(&self) -> anyhow::Result<&Path> {
        self.revocations.as_deref().context(
            "no revocations file: with a configured hs256_secret or mode = \"rs256\", set [auth] revocations_file (docs/security.md)",
        )
    }

    /// The data dir whose signing keys and revocations this server uses.
    ///
    /// # Errors
    /// A configured `[auth] hs256_secret` or another mode: the data dir's keys do not
    /// apply, so changing them would change nothing.
    pub fn keyring(&self) -> anyhow::Result<&Path> {
        self.keyring.as_deref().context(
            "signing keys and revocations live in the data dir, which applies only with [auth] mode = \"hs256\" and an empty hs256_secret: with a configured secret rotate by changing it (docs/security.md)",
        )
    }

    /// "Now" on the credentials' clock, seconds since the epoch.
    pub fn now_s(&self) -> u64 {
        self.clock.now_s()
    }

    /// A token for the given holder, valid for `[auth] token_ttl_s` (or `ttl`).
    ///
    /// # Errors
    /// No signing key, or claims that do not fit the role.
    pub fn mint(
        &self,
        sub: &str,
        account_id: u64,
        role: Role,
        team_ids: Vec<String>,
        agent_id: Option<String>,
        ttl: Option<Duration>,
    ) -> anyhow::Result<String> {
        let signer = self.signer.as_ref().context(
            "no signing key: HS256 needs hs256_secret or a data dir, RS256 needs rs256_private_key",
        )?;
        let claims = Claims::new(
            sub,
            account_id,
            role,
            team_ids,
            agent_id,
            ttl.unwrap_or(self.ttl),
            &self.clock,
        );
        signer.sign(&claims).map_err(anyhow::Error::msg)
    }

    /// The derived ingest key and webhook secret of `account_id`.
    ///
    /// # Errors
    /// No secret to derive them from.
    pub fn ingest_key(&self, account_id: u64) -> anyhow::Result<(String, String)> {
        let secret = self.secret.as_ref().context(
            "no secret to derive ingest keys from: set [auth] hs256_secret, use a data dir, or configure [[auth.ingest_keys]]",
        )?;
        Ok((
            IngestAuth::derived_key(secret, account_id),
            IngestAuth::derived_webhook_secret(secret, account_id),
        ))
    }
}

/// Applies changes of a data dir's signing keys and of the revocations file to a
/// running server.
pub struct KeyWatch {
    /// The data dir and its secret, when its signing keys apply.
    keys: Option<(PathBuf, Vec<u8>)>,
    /// The revocations file, when there is one.
    revocations: Option<PathBuf>,
    auth: Arc<Auth>,
    clock: Clock,
}

impl std::fmt::Debug for KeyWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyWatch")
            .field("data_dir", &self.keys.as_ref().map(|(dir, _)| dir))
            .field("revocations", &self.revocations)
            .finish_non_exhaustive()
    }
}

/// How often the data dir's key and revocation files are re-read.
const KEY_POLL: Duration = Duration::from_secs(1);

impl KeyWatch {
    /// Re-reads the files every second; when their bytes changed, replaces the
    /// verifier's keys and the revocations (live connections re-check their token at
    /// their next tick). A file that does not load is reported and the keys in force
    /// are kept.
    pub async fn run(self) {
        let read = |path: Option<PathBuf>| path.and_then(|p| std::fs::read(p).ok());
        let files = || {
            (
                read(self.keys.as_ref().map(|(dir, _)| keyring::keys_path(dir))),
                read(self.revocations.clone()),
            )
        };
        let mut seen = files();
        loop {
            tokio::time::sleep(KEY_POLL).await;
            let now = files();
            if now == seen {
                continue;
            }
            if let Some((dir, secret)) = &self.keys
                && now.0 != seen.0
            {
                match data_dir_keys(dir, secret) {
                    Ok((verifier, _)) => {
                        // The verifier's Debug names its kids, never a key.
                        tracing::info!(?verifier, "signing keys reloaded");
                        self.auth.replace_verifier(verifier.with_clock(self.clock));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "signing keys not reloaded, keeping the keys in force");
                    }
                }
            }
            if let Some(path) = &self.revocations
                && now.1 != seen.1
            {
                match keyring::revocations(path) {
                    Ok(list) => {
                        self.auth.replace_revocations(list.to_map());
                        tracing::info!(revoked = list.revoked.len(), "revocations reloaded");
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "revocations not reloaded, keeping those in force");
                    }
                }
            }
            seen = now;
        }
    }
}

/// Reads the data dir's secret, creating it on first use. Two processes starting at
/// once agree: only one creates the file, the other reads it.
fn data_dir_secret(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    let path = secret_path(data_dir);
    let dir = path.parent().expect("a file in a directory");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    restrict(dir, 0o700)?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let fresh = hex::encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            file.write_all(fresh.as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("writing {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated the server secret");
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
    }
    // A reader racing the creator may see an empty file for a moment.
    for _ in 0..50 {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let text = text.trim();
        if text.len() >= 64 {
            return Ok(text.as_bytes().to_vec());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!(
        "{}: the secret is shorter than 64 hex characters; delete the file to generate a new one (every token and ingest key changes)",
        path.display()
    )
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("restricting {}", path.display()))
}

#[cfg(not(unix))]
fn restrict(_: &Path, _: u32) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_dir_secret_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let section = AuthSection::default();
        let a = Credentials::load(&section, Some(dir.path()), Clock::system()).unwrap();
        let b = Credentials::load(&section, Some(dir.path()), Clock::system()).unwrap();
        assert_eq!(a.ingest_key(1).unwrap(), b.ingest_key(1).unwrap());
        let token = a.mint("ada", 1, Role::Admin, vec![], None, None).unwrap();
        let claims = b.dashboard.unwrap().verify(&token).unwrap();
        assert_eq!(claims.claims().sub, "ada");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(secret_path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Another data dir: another secret, so this token means nothing there.
        let other = tempfile::tempdir().unwrap();
        let c = Credentials::load(&section, Some(other.path()), Clock::system()).unwrap();
        assert!(c.dashboard.unwrap().verify(&token).is_err());
    }

    #[test]
    fn tokens_are_minted_and_checked_on_the_given_clock() {
        let dir = tempfile::tempdir().unwrap();
        let section = AuthSection::default();
        let at = |rfc3339: &str| Clock::starting_at_rfc3339(rfc3339).unwrap();
        let minted = Credentials::load(&section, Some(dir.path()), at("2026-11-20T12:00:00Z"))
            .unwrap()
            .mint(
                "ada",
                1,
                Role::Admin,
                vec![],
                None,
                Some(Duration::from_secs(3_600)),
            )
            .unwrap();
        let verify_at = |rfc3339: &str| {
            Credentials::load(&section, Some(dir.path()), at(rfc3339))
                .unwrap()
                .dashboard
                .unwrap()
                .verify(&minted)
        };
        let claims = verify_at("2026-11-20T12:30:00Z").unwrap();
        // 2026-11-20T12:00:00Z, whatever the machine's date.
        assert!((1_795_176_000..1_795_176_060).contains(&claims.claims().iat.unwrap()));
        assert_eq!(claims.claims().exp, claims.claims().iat.unwrap() + 3_600);
        assert!(
            verify_at("2026-11-20T13:05:00Z").is_err(),
            "expired an hour after"
        );
    }

    #[test]
    fn configured_keys_rotate_by_kid_and_a_revocations_file_applies() {
        use crate::config::{PreviousKey, Secret};
        let dir = tempfile::tempdir().unwrap();
        let at = Clock::starting_at_rfc3339("2026-11-20T12:00:00Z").unwrap();
        const OLD: &str = "the previous configured secret, 32 bytes+";
        let before = AuthSection {
            hs256_secret: Secret::new(OLD),
            hs256_kid: "k1".into(),
            ..AuthSection::default()
        };
        let old_token = Credentials::load(&before, None, at)
            .unwrap()
            .mint("ada", 1, Role::Admin, vec![], None, None)
            .unwrap();
        let revocations = dir.path().join("revoked.json");
        let after = AuthSection {
            hs256_secret: Secret::new("the new configured secret, 32 bytes or more"),
            hs256_kid: "k2".into(),
            hs256_previous_keys: vec![PreviousKey {
                kid: "k1".into(),
                secret: Secret::new(OLD),
            }],
            revocations_file: Some(revocations.clone()),
            ..AuthSection::default()
        };
        let verify = |section: &AuthSection, token: &str| {
            Credentials::load(section, None, at)
                .unwrap()
                .dashboard
                .unwrap()
                .verify(token)
        };
        let creds = Credentials::load(&after, None, at).unwrap();
        let new_token = creds
            .mint("bea", 1, Role::Admin, vec![], None, None)
            .unwrap();
        assert!(
            verify(&after, &old_token).is_ok(),
            "the previous key still verifies"
        );
        assert!(verify(&after, &new_token).is_ok());
        let retired = AuthSection {
            hs256_previous_keys: vec![],
            ..after.clone()
        };
        assert_eq!(
            verify(&retired, &old_token).unwrap_err(),
            query_api::auth::TokenError::UnknownKey("k1".into())
        );
        // Revoking bea in the shared file ends bea's token, not ada's.
        keyring::revoke(&revocations, 1, "bea", creds.now_s(), false).unwrap();
        assert!(matches!(
            verify(&after, &new_token),
            Err(query_api::auth::TokenError::Revoked { .. })
        ));
        assert!(verify(&after, &old_token).is_ok());
        assert_eq!(creds.revocations_file().unwrap(), revocations);
    }

    #[test]
    fn replicas_without_a_data_dir_need_a_configured_secret() {
        let err = Credentials::load(&AuthSection::default(), None, Clock::system()).unwrap_err();
        assert!(err.to_string().contains("hs256_secret"), "{err}");
    }
}
