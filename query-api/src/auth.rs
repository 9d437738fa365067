//! Who may see what: bearer tokens, roles and the scope of every answer.
//!
//! Dashboard access takes a JWT (HS256 with a shared secret, or RS256 against one or
//! more public keys, for rotation). Its claims name the account, the role and, for
//! supervisors and agents, their teams and agent id. The account of every answer
//! comes from the token and never from a parameter.
//!
//! What a role sees (see `docs/security.md`):
//!
//! | role | account totals | agent-level rows |
//! |---|---|---|
//! | admin | yes | every agent |
//! | analyst | yes | every agent (read only: no settings, no `/metrics`) |
//! | supervisor | yes | agents whose current team is one of `team_ids` |
//! | agent | yes | their own `agent_id` only |
//!
//! Rows are removed from a body *after* it is computed, by [`Principal::redact`]: any
//! object carrying an `agent_id` the principal may not see is dropped from its array
//! (or has the id blanked where it is not in an array). REST and every WebSocket delta
//! go through it, so both say the same thing, and a delta can never carry a row the
//! snapshot would not have held.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::http::{HeaderMap, header};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;
use crate::sections::Params;
use crate::store::Snapshot;
use schemas::metrics::Fact;

/// A role, as carried in the `role` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything in the account.
    Admin,
    /// Account totals, and agent-level data for their teams only.
    Supervisor,
    /// Account totals without other agents' identities, and their own data.
    Agent,
    /// Reads everything; changes no settings and reads no operational metrics.
    Analyst,
}

impl Role {
    /// Every role, in the order the docs list them.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Supervisor, Role::Agent, Role::Analyst];

    /// The claim value.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Agent => "agent",
            Role::Analyst => "analyst",
        }
    }

    /// Parses a claim value.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// The claims of a dashboard token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who the token was issued to (a user name or id); shown in the UI, never trusted
    /// for access.
    pub sub: String,
    /// The one account the token reads.
    pub account_id: u64,
    /// What the holder may see.
    pub role: Role,
    /// Teams of a supervisor (or an agent's own teams).
    #[serde(default)]
    pub team_ids: Vec<String>,
    /// The holder's agent id; required for the `agent` role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issue time, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

impl Claims {
    /// Claims issued now on `clock`, valid for `ttl`.
    pub fn new(
        sub: impl Into<String>,
        account_id: u64,
        role: Role,
        team_ids: Vec<String>,
        agent_id: Option<String>,
        ttl: Duration,
        clock: &schemas::Clock,
    ) -> Self {
        let now = clock.now_s();
        Self {
            sub: sub.into(),
            account_id,
            role,
            team_ids,
            agent_id,
            exp: now + ttl.as_secs(),
            iat: Some(now),
        }
    }

    /// The claims make sense together: an agent token names its agent, a supervisor
    /// token at least one team.
    ///
    /// # Errors
    /// A message naming the missing claim.
    pub fn check(&self) -> Result<(), String> {
        match self.role {
            Role::Agent if self.agent_id.as_deref().is_none_or(str::is_empty) => {
                Err("agent_id: required for the agent role".into())
            }
            Role::Supervisor if self.team_ids.is_empty() => {
                Err("team_ids: a supervisor needs at least one team".into())
            }
            _ => Ok(()),
        }
    }
}

/// Why a token was refused (answered as `401`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No `Authorization: Bearer` header (or `auth` message).
    #[error("missing bearer token: send `Authorization: Bearer <token>`")]
    Missing,
    /// Not a JWT, or claims of the wrong shape.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The header names an algorithm this server does not accept (`none`, or another
    /// one than the configured mode's).
    #[error("alg {got:?} is not allowed: this server accepts {allowed} tokens only")]
    Algorithm {
        /// The header's `alg`, as sent.
        got: String,
        /// The one algorithm of the configured mode.
        allowed: &'static str,
    },
    /// The header's `kid` names no signing key of this server (never one, or a retired
    /// one).
    #[error("kid {0:?}: no such signing key on this server (retired keys end their tokens)")]
    UnknownKey(String),
    /// The header names no `kid`, and every key of this server has one: the token was
    /// signed by a key that was retired (the key of the tokens minted before rotation).
    #[error("the token names no signing key (kid) and the key without one was retired")]
    NoKid,
    /// Signed by another key, or with another algorithm.
    #[error("token signature is not valid for this server")]
    BadSignature,
    /// Past its `exp`.
    #[error("token expired")]
    Expired,
    /// The holder's tokens issued up to this instant were revoked.
    #[error("token revoked: tokens of {sub:?} issued at or before {not_after} were revoked")]
    Revoked {
        /// The token's `sub`.
        sub: String,
        /// The revocation's instant, seconds since the epoch.
        not_after: u64,
    },
}

impl TokenError {
    /// The error code sent to clients.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Expired => "token_expired",
            _ => "unauthorized",
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        ApiError::Unauthorized {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

/// Seconds a token is still accepted past its `exp` (clock differences between the
/// issuer and this server).
const EXP_LEEWAY_S: u64 = 30;

/// The two header fields read before the signature is checked: `alg` (as text, so
/// `none` and unknown names can be named in the refusal) and `kid`.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

fn raw_header(token: &str) -> Result<RawHeader, TokenError> {
    use base64::Engine as _;
    let not_a_jwt = || TokenError::Malformed("not a JWT".into());
    let part = token.split('.').next().ok_or_else(not_a_jwt)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| not_a_jwt())?;
    serde_json::from_slice(&bytes).map_err(|e| TokenError::Malformed(format!("header: {e}")))
}

/// Verifies tokens. Holds decoding keys only; never printed.
///
/// Keys may carry a key id (`kid`): a token whose header names a `kid` is checked
/// against that key only, and refused when no key has it (a retired key), unless no key
/// has an id at all (then any `kid` is checked against every key); a token without one
/// is checked against every key (tokens minted before rotation, identity providers that
/// send no `kid`), and refused when every key has an id (the key without one was
/// retired).
pub struct Verifier {
    keys: Vec<(Option<String>, DecodingKey)>,
    algorithm: Algorithm,
    validation: Validation,
    /// What "now" is for `exp`: the process's one clock (jsonwebtoken's own check reads
    /// the system clock, so it is turned off).
    clock: schemas::Clock,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self
            .keys
            .iter()
            .map(|(kid, _)| kid.as_deref().unwrap_or("-"))
            .collect();
        f.debug_struct("Verifier")
            .field("algorithm", &self.algorithm)
            .field("kids", &kids)
            .finish()
    }
}

fn check_hs256_secret(secret: &[u8]) -> Result<(), String> {
    if secret.len() < 32 {
        return Err(format!(
            "hs256_secret: at least 32 bytes are needed, got {}",
            secret.len()
        ));
    }
    Ok(())
}

impl Verifier {
    /// HS256 with a shared secret.
    ///
    /// # Errors
    /// A secret shorter than 32 bytes.
    pub fn hs256(secret: &[u8]) -> Result<Self, String> {
        Self::hs256_keys(&[(None, secret)])
    }

    /// HS256 with several secrets, each with an optional key id (rotation: the current
    /// key and those whose tokens are still accepted).
    ///
    /// # Errors
    /// A secret shorter than 32 bytes, or no key at all.
    pub fn hs256_keys(keys: &[(Option<String>, &[u8])]) -> Result<Self, String> {
        if keys.is_empty() {
            return Err("hs256: at least one signing key is needed".into());
        }
        let keys = keys
            .iter()
            .map(|(kid, secret)| {
                check_hs256_secret(secret)?;
                let key =
                    DecodingKey::from_secret(secret).map_err(|e| format!("hs256_secret: {e}"))?;
                Ok((kid.clone(), key))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self::new(keys, Algorithm::HS256))
    }

    /// RS256 against PEM public keys; a token signed by any of them is accepted (key
    /// rotation: add the new key, re-issue tokens, remove the old one).
    ///
    /// # Errors
    /// A key that is not an RSA public key in PEM, or no key at all.
    pub fn rs256(pems: &[Vec<u8>]) -> Result<Self, String> {
        let keyed: Vec<(Option<String>, Vec<u8>)> =
            pems.iter().map(|pem| (None, pem.clone())).collect();
        Self::rs256_keys(&keyed)
    }

    /// [`Self::rs256`] with a key id per key: a token naming a `kid` is checked against
    /// that key only.
    ///
    /// # Errors
    /// A key that is not an RSA public key in PEM, or no key at all.
    pub fn rs256_keys(pems: &[(Option<String>, Vec<u8>)]) -> Result<Self, String> {
        if pems.is_empty() {
            return Err("rs256_public_keys: at least one key is needed".into());
        }
        let keys = pems
            .iter()
            .enumerate()
            .map(|(i, (kid, pem))| {
                DecodingKey::from_rsa_pem(pem)
                    .map(|key| (kid.clone(), key))
                    .map_err(|e| format!("rs256_public_keys[{i}]: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(keys, Algorithm::RS256))
    }

    fn new(keys: Vec<(Option<String>, DecodingKey)>, algorithm: Algorithm) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            keys,
            algorithm,
            validation,
            clock: schemas::Clock::system(),
        }
    }

    /// The same verifier, checking `exp` against `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: schemas::Clock) -> Self {
        self.clock = clock;
        self
    }

    fn algorithm_name(&self) -> &'static str {
        match self.algorithm {
            Algorithm::RS256 => "RS256",
            _ => "HS256",
        }
    }

    /// The claims of a valid token.
    ///
    /// # Errors
    /// Why the token is refused.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = raw_header(token)?;
        let allowed = self.algorithm_name();
        if header.alg != allowed {
            return Err(TokenError::Algorithm {
                got: header.alg,
                allowed,
            });
        }
        // A `kid` picks its key. A key set without any kid (RS256 public keys of an
        // identity provider, a single configured secret) takes tokens of any `kid`.
        let candidates: Vec<&DecodingKey> = match &header.kid {
            Some(kid) => {
                let named: Vec<&DecodingKey> = self
                    .keys
                    .iter()
                    .filter(|(k, _)| k.as_deref() == Some(kid.as_str()))
                    .map(|(_, key)| key)
                    .collect();
                if !named.is_empty() {
                    named
                } else if self.keys.iter().all(|(k, _)| k.is_none()) {
                    self.keys.iter().map(|(_, key)| key).collect()
                } else {
                    return Err(TokenError::UnknownKey(kid.clone()));
                }
            }
            None if self.keys.iter().all(|(kid, _)| kid.is_some()) => {
                return Err(TokenError::NoKid);
            }
            None => self.keys.iter().map(|(_, key)| key).collect(),
        };
        let mut last = TokenError::BadSignature;
        for key in candidates {
            match jsonwebtoken::decode::<Claims>(token, key, &self.validation) {
                Ok(data) => {
                    if data.claims.exp.saturating_add(EXP_LEEWAY_S) < self.clock.now_s() {
                        return Err(TokenError::Expired);
                    }
                    data.claims.check().map_err(TokenError::Malformed)?;
                    return Ok(data.claims);
                }
                Err(e) => {
                    last = match e.kind() {
                        ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => {
                            TokenError::BadSignature
                        }
                        ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
                            return Err(TokenError::Malformed("not a JWT".into()));
                        }
                        ErrorKind::Json(e) => {
                            return Err(TokenError::Malformed(format!("claims: {e}")));
                        }
                        ErrorKind::MissingRequiredClaim(c) => {
                            return Err(TokenError::Malformed(format!("{c}: missing claim")));
                        }
                        other => TokenError::Malformed(format!("{other:?}")),
                    }
                }
            }
        }
        Err(last)
    }
}

/// Mints tokens (`crmpulse token`, the demo's links). Never printed.
pub struct Signer {
    key: EncodingKey,
    header: Header,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("alg", &self.header.alg)
            .field("kid", &self.header.kid)
            .finish()
    }
}

impl Signer {
    /// HS256 with a shared secret.
    ///
    /// # Errors
    /// A secret shorter than 32 bytes.
    pub fn hs256(secret: &[u8]) -> Result<Self, String> {
        check_hs256_secret(secret)?;
        Ok(Self {
            key: EncodingKey::from_secret(secret).map_err(|e| format!("hs256_secret: {e}"))?,
            header: Header::new(Algorithm::HS256),
        })
    }

    /// RS256 with a PEM private key.
    ///
    /// # Errors
    /// Not an RSA private key in PEM.
    pub fn rs256(pem: &[u8]) -> Result<Self, String> {
        Ok(Self {
            key: EncodingKey::from_rsa_pem(pem).map_err(|e| format!("rs256_private_key: {e}"))?,
            header: Header::new(Algorithm::RS256),
        })
    }

    /// The same signer, naming its key `kid` in every token's header.
    #[must_use]
    pub fn with_kid(mut self, kid: Option<String>) -> Self {
        self.header.kid = kid;
        self
    }

    /// A signed token.
    ///
    /// # Errors
    /// Claims that do not make sense together (see [`Claims::check`]).
    pub fn sign(&self, claims: &Claims) -> Result<String, String> {
        claims.check()?;
        jsonwebtoken::encode(&self.header, claims, &self.key).map_err(|e| e.to_string())
    }
}

/// Revoked users: for `(account_id, sub)`, the instant (seconds since the epoch) at
/// or before which every token issued to them is refused. Tokens issued later are
/// accepted; a token without `iat` of a revoked user is always refused.
pub type Revocations = HashMap<(u64, String), u64>;

/// Limits applied per token and per server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Sustained requests per second per token (REST requests and WebSocket
    /// subscribe messages).
    pub requests_per_s: u32,
    /// Requests a token may make at once above the sustained rate.
    pub burst: u32,
    /// Live connections the server holds at most.
    pub max_live_connections: usize,
    /// Live connections one token (account and subject) holds at most.
    pub max_live_connections_per_token: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            requests_per_s: 20,
            burst: 60,
            max_live_connections: 10_000,
            max_live_connections_per_token: 16,
        }
    }
}

type TokenKey = (u64, String);

/// Authentication and limits of the dashboard API.
///
/// The verifier's keys and the revocations can be replaced while the server runs
/// (key rotation, revoking a user); each change bumps [`Auth::generation`], so live
/// connections re-check their token.
pub struct Auth {
    verifier: RwLock<Arc<Verifier>>,
    revocations: RwLock<Arc<Revocations>>,
    generation: AtomicU64,
    limits: Limits,
    limiter: DefaultKeyedRateLimiter<TokenKey>,
    live: Mutex<(usize, HashMap<TokenKey, usize>)>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("verifier", &self.verifier)
            .field(
                "revocations",
                &self.revocations.read().map(|r| r.len()).ok(),
            )
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Tokens checked by `verifier`, requests limited by `limits`.
    pub fn new(verifier: Verifier, limits: Limits) -> Self {
        let rate = NonZeroU32::new(limits.requests_per_s.max(1)).expect("at least 1");
        let burst = NonZeroU32::new(limits.burst.max(1)).expect("at least 1");
        Self {
            verifier: RwLock::new(Arc::new(verifier)),
            revocations: RwLock::default(),
            generation: AtomicU64::new(0),
            limits,
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            live: Mutex::new((0, HashMap::new())),
        }
    }

    /// Replaces the signing keys tokens are checked against (a rotated or retired
    /// key); the next request, and every live connection within a second, uses them.
    pub fn replace_verifier(&self, verifier: Verifier) {
        *self.verifier.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(verifier);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Replaces the revoked users.
    pub fn replace_revocations(&self, revocations: Revocations) {
        *self.revocations.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(revocations);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Counts changes of keys and revocations: a live connection re-checks its token
    /// when this moved since it last did.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The principal of a bearer token.
    ///
    /// # Errors
    /// `401` for a missing, invalid, expired or revoked token.
    pub fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let verifier = Arc::clone(&self.verifier.read().unwrap_or_else(|e| e.into_inner()));
        let claims = verifier.verify(token)?;
        let revocations = Arc::clone(&self.revocations.read().unwrap_or_else(|e| e.into_inner()));
        if let Some(&not_after) = revocations.get(&(claims.account_id, claims.sub.clone()))
            && claims.iat.is_none_or(|iat| iat <= not_after)
        {
            return Err(TokenError::Revoked {
                sub: claims.sub,
                not_after,
            });
        }
        Ok(Principal(claims))
    }

    /// The principal of a request's `Authorization: Bearer` header, after the rate
    /// limit.
    ///
    /// # Errors
    /// `401` for a missing or invalid token, `429` past the rate limit.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let token = bearer(headers).ok_or(TokenError::Missing)?;
        let principal = self.verify(token)?;
        self.admit(&principal)?;
        Ok(principal)
    }

    /// Admits a request for `/metrics` (operational figures of the whole server):
    /// admin tokens only. Shared by the API and the ingest gateway.
    ///
    /// # Errors
    /// `401`/`429` as [`Self::authenticate`], `403` for any other role.
    pub fn authorize_server_metrics(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if self.authenticate(headers)?.0.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "/metrics: server metrics are for admin tokens".into(),
            ))
        }
    }

    /// Counts one request against the principal's rate limit.
    ///
    /// # Errors
    /// `429` with the seconds to wait.
    pub fn admit(&self, principal: &Principal) -> Result<(), ApiError> {
        self.limiter
            .check_key(&principal.key())
            .map_err(|not_until| {
                metrics::counter!("crmpulse_api_rate_limited_total").increment(1);
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                ApiError::RateLimited {
                    retry_after_s: wait.as_secs().max(1),
                }
            })
    }

    /// Holds one live connection slot for `principal` until the guard drops.
    ///
    /// # Errors
    /// A message when the server or the token is at its connection cap.
    pub fn hold_live(self: &Arc<Self>, principal: &Principal) -> Result<LiveSlot, String> {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if live.0 >= self.limits.max_live_connections {
            return Err(format!(
                "the server holds its maximum of {} live connections",
                self.limits.max_live_connections
            ));
        }
        let key = principal.key();
        let held = live.1.get(&key).copied().unwrap_or(0);
        if held >= self.limits.max_live_connections_per_token {
            return Err(format!(
                "this token holds its maximum of {} live connections",
                self.limits.max_live_connections_per_token
            ));
        }
        live.0 += 1;
        live.1.insert(key.clone(), held + 1);
        Ok(LiveSlot {
            auth: Arc::clone(self),
            key,
        })
    }

    /// Forgets rate-limit state of tokens idle long enough to be back at full burst
    /// (call now and then so the limiter's memory stays bounded).
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// A held live connection slot; released on drop.
#[derive(Debug)]
pub struct LiveSlot {
    auth: Arc<Auth>,
    key: TokenKey,
}

impl Drop for LiveSlot {
    fn drop(&mut self) {
        let mut live = self.auth.live.lock().unwrap_or_else(|e| e.into_inner());
        live.0 = live.0.saturating_sub(1);
        if let Some(n) = live.1.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                live.1.remove(&self.key);
            }
        }
    }
}

/// The token in an `Authorization: Bearer` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// A verified token holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal(pub Claims);

impl Principal {
    /// The claims.
    pub fn claims(&self) -> &Claims {
        &self.0
    }

    fn key(&self) -> TokenKey {
        (self.0.account_id, self.0.sub.clone())
    }

    /// Binds request parameters to the token: the account is the token's, and the agent
    /// and team filters must stay within what the role may see. A supervisor's
    /// `agent_id` needs the agents' teams, so [`Self::scope_agent`] checks it where the
    /// body is computed.
    ///
    /// # Errors
    /// `403` naming the parameter.
    pub fn scope_params(&self, params: &mut Params, account_given: bool) -> Result<(), ApiError> {
        let c = &self.0;
        if account_given && params.account_id != c.account_id {
            return Err(ApiError::Forbidden(format!(
                "account_id: this token reads account {} only",
                c.account_id
            )));
        }
        params.account_id = c.account_id;
        match c.role {
            Role::Admin | Role::Analyst => Ok(()),
            Role::Supervisor | Role::Agent => {
                if let Some(team) = &params.team_id
                    && !c.team_ids.contains(team)
                {
                    return Err(ApiError::Forbidden(format!(
                        "team_id: {team:?} is not one of this token's teams"
                    )));
                }
                if let Some(agent) = &params.agent_id
                    && c.role == Role::Agent
                    && c.agent_id.as_ref() != Some(agent)
                {
                    return Err(ApiError::Forbidden(format!(
                        "agent_id: an agent token reads its own agent ({}) only",
                        c.agent_id.as_deref().unwrap_or("")
                    )));
                }
                Ok(())
            }
        }
    }

    /// The `agent_id` filter names an agent the principal may see: any agent for
    /// admins and analysts, their own for an agent, one whose current team (`team_of`)
    /// is one of their teams for a supervisor. Checked against the same snapshot the
    /// body is computed from, so a live subscription whose agent moves to another team
    /// is refused from then on. ([`Self::scope_params`] checks what needs no snapshot.)
    ///
    /// # Errors
    /// `403` naming the parameter.
    pub fn scope_agent(
        &self,
        params: &Params,
        team_of: &HashMap<String, String>,
    ) -> Result<(), ApiError> {
        match &params.agent_id {
            Some(agent) if !self.sees_agent(agent, team_of) => {
                Err(ApiError::Forbidden(match self.0.role {
                    Role::Agent => format!(
                        "agent_id: an agent token reads its own agent ({}) only",
                        self.0.agent_id.as_deref().unwrap_or("")
                    ),
                    _ => format!(
                        "agent_id: {agent:?} is not an agent of this token's teams ({})",
                        self.0.team_ids.join(", ")
                    ),
                }))
            }
            _ => Ok(()),
        }
    }

    /// Whether agent-level data of `agent_id` may be shown. `team_of` gives an agent's
    /// current team.
    pub fn sees_agent(&self, agent_id: &str, team_of: &HashMap<String, String>) -> bool {
        let c = &self.0;
        match c.role {
            Role::Admin | Role::Analyst => true,
            Role::Agent => c.agent_id.as_deref() == Some(agent_id),
            Role::Supervisor => team_of
                .get(agent_id)
                .is_some_and(|team| c.team_ids.contains(team)),
        }
    }

    /// Removes from `body` every agent-level row the principal may not see.
    pub fn redact(&self, body: &mut Value, team_of: &HashMap<String, String>) {
        if matches!(self.0.role, Role::Admin | Role::Analyst) {
            return;
        }
        redact(body, &|agent| self.sees_agent(agent, team_of));
    }

    /// What [`Principal::redact`] depends on besides the body and the agents' teams:
    /// empty for the roles that see every row, so their bodies are the shared whole
    /// body; else the role with the agent or the teams it keeps. Principals of one
    /// scope get the same redacted body, which is then shared too
    /// ([`crate::bodies::Key::scope`]).
    pub fn redaction_scope(&self) -> String {
        let c = &self.0;
        match c.role {
            Role::Admin | Role::Analyst => String::new(),
            Role::Agent => format!("agent:{:?}", c.agent_id),
            Role::Supervisor => {
                let mut teams: Vec<&str> = c.team_ids.iter().map(String::as_str).collect();
                teams.sort_unstable();
                teams.dedup();
                format!("supervisor:{teams:?}")
            }
        }
    }
}

fn hidden(v: &Value, visible: &dyn Fn(&str) -> bool) -> bool {
    matches!(v.get("agent_id"), Some(Value::String(a)) if !visible(a))
}

fn redact(v: &mut Value, visible: &dyn Fn(&str) -> bool) {
    match v {
        Value::Array(items) => {
            items.retain(|item| !hidden(item, visible));
            for item in items {
                redact(item, visible);
            }
        }
        Value::Object(map) => {
            if let Some(id) = map.get_mut("agent_id")
                && matches!(id, Value::String(a) if !visible(a))
            {
                *id = Value::Null;
            }
            for (_, item) in map.iter_mut() {
                redact(item, visible);
            }
        }
        _ => {}
    }
}

/// Each agent's current team in `account_id`, from their latest status event.
pub fn agent_teams(snap: &Snapshot, account_id: u64) -> HashMap<String, String> {
    let mut teams = HashMap::new();
    if let Some(facts) = snap.accounts.get(&account_id) {
        for (fact, n) in facts.now_of("agent_current_status") {
            if n > 0
                && let Fact::AgentCurrentStatus {
                    agent_id,
                    team_id: Some(team),
                    ..
                } = fact
            {
                teams.insert(agent_id.clone(), team.clone());
            }
        }
    }
    teams
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn claims(role: Role) -> Claims {
        Claims::new(
            "u",
            1,
            role,
            vec!["t1".into()],
            Some("a1".into()),
            Duration::from_secs(60),
            &schemas::Clock::starting_at(NOW_MS),
        )
    }

    /// When the tests' tokens are issued and checked.
    const NOW_MS: i64 = 1_795_000_000_000;

    fn verifier() -> Verifier {
        Verifier::hs256(SECRET)
            .unwrap()
            .with_clock(schemas::Clock::starting_at(NOW_MS))
    }

    #[test]
    fn a_signed_token_verifies_and_a_tampered_one_does_not() {
        let token = Signer::hs256(SECRET)
            .unwrap()
            .sign(&claims(Role::Agent))
            .unwrap();
        let v = verifier();
        assert_eq!(v.verify(&token).unwrap(), claims(Role::Agent));
        let other = Verifier::hs256(b"another secret of at least 32 bytes!").unwrap();
        assert_eq!(other.verify(&token), Err(TokenError::BadSignature));
        assert!(matches!(
            v.verify("not.a.jwt"),
            Err(TokenError::Malformed(_))
        ));
        let mut expired = claims(Role::Admin);
        expired.exp = 1_000;
        let token = Signer::hs256(SECRET).unwrap().sign(&expired).unwrap();
        assert_eq!(v.verify(&token), Err(TokenError::Expired));
    }

    #[test]
    fn expiry_is_checked_against_the_verifiers_clock_with_30_s_of_leeway() {
        let signer = Signer::hs256(SECRET).unwrap();
        let now_s = (NOW_MS / 1000) as u64;
        let with_exp = |exp: u64| {
            let mut c = claims(Role::Admin);
            c.exp = exp;
            signer.sign(&c).unwrap()
        };
        let v = verifier();
        assert!(v.verify(&with_exp(now_s - 29)).is_ok(), "within the leeway");
        assert_eq!(v.verify(&with_exp(now_s - 31)), Err(TokenError::Expired));
        // The same token on a clock a day later: expired, whatever the system says.
        let later = Verifier::hs256(SECRET)
            .unwrap()
            .with_clock(schemas::Clock::starting_at(NOW_MS + 86_400_000));
        assert_eq!(
            later.verify(&with_exp(now_s + 3_600)),
            Err(TokenError::Expired)
        );
        assert!(v.verify(&with_exp(now_s + 3_600)).is_ok());
    }

    #[test]
    fn short_secrets_and_agent_tokens_without_an_agent_are_refused() {
        assert!(Verifier::hs256(b"short").is_err());
        let mut c = claims(Role::Agent);
        c.agent_id = None;
        assert!(
            Signer::hs256(SECRET)
                .unwrap()
                .sign(&c)
                .unwrap_err()
                .contains("agent_id")
        );
    }

    #[test]
    fn a_kid_picks_its_key_and_retired_keys_and_revoked_users_end_their_tokens() {
        const NEW: &[u8] = b"the rotated key, at least 32 bytes long";
        let at = || schemas::Clock::starting_at(NOW_MS);
        let initial = Signer::hs256(SECRET).unwrap();
        let rotated = Signer::hs256(NEW).unwrap().with_kid(Some("k2".into()));
        let auth = Auth::new(
            Verifier::hs256_keys(&[(None, SECRET), (Some("k2".into()), NEW)])
                .unwrap()
                .with_clock(at()),
            Limits::default(),
        );
        let old_token = initial.sign(&claims(Role::Admin)).unwrap();
        let new_token = rotated.sign(&claims(Role::Admin)).unwrap();
        assert!(auth.verify(&old_token).is_ok());
        assert!(auth.verify(&new_token).is_ok());
        // A kid is checked against its own key only.
        let wrong = Signer::hs256(SECRET)
            .unwrap()
            .with_kid(Some("k2".into()))
            .sign(&claims(Role::Admin))
            .unwrap();
        assert_eq!(auth.verify(&wrong), Err(TokenError::BadSignature));
        let unknown = Signer::hs256(NEW)
            .unwrap()
            .with_kid(Some("k3".into()))
            .sign(&claims(Role::Admin))
            .unwrap();
        assert_eq!(
            auth.verify(&unknown),
            Err(TokenError::UnknownKey("k3".into()))
        );

        // Retiring the initial key: its tokens (no kid) end, the rotated key's do not.
        let before = auth.generation();
        auth.replace_verifier(
            Verifier::hs256_keys(&[(Some("k2".into()), NEW)])
                .unwrap()
                .with_clock(at()),
        );
        assert_ne!(auth.generation(), before, "live connections re-check");
        assert_eq!(auth.verify(&old_token), Err(TokenError::NoKid));
        assert!(auth.verify(&new_token).is_ok());

        // Revoking user "u" of account 1 at the tokens' issue time: their tokens end,
        // one issued a second later and other users' tokens are accepted.
        let now_s = (NOW_MS / 1000) as u64;
        let before = auth.generation();
        auth.replace_revocations([((1, "u".to_owned()), now_s)].into_iter().collect());
        assert_ne!(auth.generation(), before);
        let err = auth.verify(&new_token).unwrap_err();
        assert_eq!(
            err,
            TokenError::Revoked {
                sub: "u".into(),
                not_after: now_s
            }
        );
        assert!(err.to_string().contains("revoked"), "{err}");
        let mut later = claims(Role::Admin);
        later.iat = Some(now_s + 1);
        assert!(auth.verify(&rotated.sign(&later).unwrap()).is_ok());
        let mut other = claims(Role::Admin);
        other.sub = "v".into();
        assert!(auth.verify(&rotated.sign(&other).unwrap()).is_ok());
        let mut no_iat = claims(Role::Admin);
        no_iat.iat = None;
        assert!(auth.verify(&rotated.sign(&no_iat).unwrap()).is_err());
        auth.replace_revocations(Revocations::new());
        assert!(auth.verify(&new_token).is_ok());
    }

    #[test]
    fn a_supervisor_names_only_agents_of_their_teams() {
        let teams: HashMap<String, String> = [("a1", "t1"), ("a2", "t2")]
            .into_iter()
            .map(|(a, t)| (a.to_owned(), t.to_owned()))
            .collect();
        let with_agent = |agent: &str| Params {
            agent_id: Some(agent.to_owned()),
            ..Params::default()
        };
        let sup = Principal(claims(Role::Supervisor));
        sup.scope_agent(&with_agent("a1"), &teams).unwrap();
        for foreign in ["a2", "nobody"] {
            let err = sup.scope_agent(&with_agent(foreign), &teams).unwrap_err();
            assert!(
                matches!(&err, ApiError::Forbidden(m) if m.contains("agent_id")),
                "{err}"
            );
        }
        let agent = Principal(claims(Role::Agent));
        assert!(agent.scope_agent(&with_agent("a2"), &teams).is_err());
        agent.scope_agent(&with_agent("a1"), &teams).unwrap();
        for role in [Role::Admin, Role::Analyst] {
            Principal(claims(role))
                .scope_agent(&with_agent("a2"), &teams)
                .unwrap();
        }
        sup.scope_agent(&Params::default(), &teams).unwrap();
    }

    #[test]
    fn redaction_keeps_only_visible_agents_rows() {
        let body = json!({
            "total": 9,
            "rows": [{"agent_id": "a1", "n": 1}, {"agent_id": "a2", "n": 2}, {"agent_id": "a3", "n": 3}],
            "nested": {"best": {"agent_id": "a2"}},
        });
        let teams: HashMap<String, String> = [("a1", "t1"), ("a2", "t2"), ("a3", "t1")]
            .into_iter()
            .map(|(a, t)| (a.to_owned(), t.to_owned()))
            .collect();
        let mut agent = body.clone();
        Principal(claims(Role::Agent)).redact(&mut agent, &teams);
        assert_eq!(agent["rows"], json!([{"agent_id": "a1", "n": 1}]));
        assert_eq!(agent["nested"]["best"]["agent_id"], Value::Null);
        assert_eq!(agent["total"], 9);
        let mut sup = body.clone();
        Principal(claims(Role::Supervisor)).redact(&mut sup, &teams);
        assert_eq!(
            sup["rows"],
            json!([{"agent_id": "a1", "n": 1}, {"agent_id": "a3", "n": 3}])
        );
        let mut admin = body.clone();
        Principal(claims(Role::Admin)).redact(&mut admin, &teams);
        assert_eq!(admin, body);
    }

    #[test]
    fn parameters_stay_within_the_token() {
        let agent = Principal(claims(Role::Agent));
        let mut p = Params {
            account_id: 2,
            ..Params::default()
        };
        assert!(matches!(
            agent.scope_params(&mut p, true),
            Err(ApiError::Forbidden(_))
        ));
        let mut p = Params::default();
        agent.scope_params(&mut p, false).unwrap();
        assert_eq!(p.account_id, 1);
        p.agent_id = Some("a2".into());
        assert!(agent.scope_params(&mut p, false).is_err());
        p.agent_id = Some("a1".into());
        agent.scope_params(&mut p, false).unwrap();
        p.team_id = Some("t9".into());
        assert!(
            Principal(claims(Role::Supervisor))
                .scope_params(&mut p, false)
                .is_err()
        );
        Principal(claims(Role::Admin))
            .scope_params(&mut p, false)
            .unwrap();
    }
}
