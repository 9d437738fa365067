//! Credentials of a running crmpulse: the dashboard's token verifier and limits, the
//! ingest keys, and (for `crmpulse token` and the demo's links) the token signer.
//!
//! The embedded default keeps a generated 32-byte secret in `DATA_DIR/auth/secret.key`
//! (created on first start, mode 0600): it signs HS256 tokens when `[auth]
//! hs256_secret` is empty and derives every account's ingest key and webhook secret.
//! `serve` and `ingest` have no data dir: replicas must share a configured key.

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
                });
            }
            AuthMode::Hs256 => {
                let Some(secret) = secret()? else {
                    bail!(
                        "[auth] hs256_secret is empty: `serve` and `ingest` replicas need a shared secret (or mode = \"rs256\" with rs256_public_keys)"
                    );
                };
                (
                    Verifier::hs256(&secret).map_err(anyhow::Error::msg)?,
                    Some(Signer::hs256(&secret).map_err(anyhow::Error::msg)?),
                    Some(secret),
                )
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
            if k.key.len() < 24 {
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
        Ok(Self {
            dashboard: Some(Arc::new(Auth::new(verifier.with_clock(clock), limits))),
            ingest: Arc::new(IngestAuth::new(
                secret.clone(),
                section.ingest_keys.clone(),
                section.ingest_requests_per_s,
            )),
            signer,
            secret,
            ttl,
            clock,
        })
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
    fn replicas_without_a_data_dir_need_a_configured_secret() {
        let err = Credentials::load(&AuthSection::default(), None, Clock::system()).unwrap_err();
        assert!(err.to_string().contains("hs256_secret"), "{err}");
    }
}
