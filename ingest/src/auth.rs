//! Ingest credentials: per-account keys, separate from dashboard tokens, and
//! HMAC-SHA256 signatures for webhook sources (see `docs/security.md`).
//!
//! A request authenticates as exactly one account, and every event it carries must
//! belong to that account: an event for another account is rejected with a reason,
//! like any invalid event, and the rest of the body is kept.
//!
//! Two kinds of credentials:
//! - **Derived keys** (the embedded default): `cpi_<account>_<40 hex>`, an HMAC of the
//!   account id under the server's secret, so any number of accounts need no storage.
//!   The account's webhook secret is derived the same way under another label.
//!   Rotating the secret revokes them all.
//! - **Configured keys** (`[[auth.ingest_keys]]`): an id, an account, a bearer key and
//!   an optional webhook secret each; removing one revokes it alone.

use std::num::NonZeroU32;

use axum::http::{HeaderMap, header};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hmac::{Hmac, Mac};
use schemas::Secret;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Signature headers accepted on the webhook route, in order: ours, then the one the
/// WhatsApp Cloud API (Meta) sends with the same `sha256=<hex>` format.
pub const SIGNATURE_HEADERS: [&str; 2] = ["x-crmpulse-signature-256", "x-hub-signature-256"];

/// One configured ingest credential.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestKey {
    /// A name for logs and metrics (never the key itself).
    pub id: String,
    /// The one account this key writes to.
    pub account_id: u64,
    /// The bearer key for `POST /api/v1/events` (at least 24 characters). Never printed.
    pub key: Secret,
    /// The HMAC-SHA256 secret of `POST /api/v1/webhooks/{account_id}/events`. Never
    /// printed.
    #[serde(default)]
    pub webhook_secret: Option<Secret>,
}

impl std::fmt::Debug for IngestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestKey")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("key", &self.key)
            .field("webhook_secret", &self.webhook_secret)
            .finish()
    }
}

/// Why ingest credentials were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestAuthError {
    /// No `Authorization: Bearer` header.
    #[error("missing ingest key: send `Authorization: Bearer <ingest key>`")]
    MissingKey,
    /// A key this server does not know (dashboard tokens are not ingest keys).
    #[error("unknown ingest key")]
    UnknownKey,
    /// No signature header on the webhook route.
    #[error(
        "missing signature: send `X-Crmpulse-Signature-256: sha256=<hex HMAC-SHA256 of the body>`"
    )]
    MissingSignature,
    /// A signature that does not match the body under the account's webhook secret.
    #[error("signature does not match the body")]
    BadSignature,
    /// Past the account's request rate.
    #[error("rate limit reached: retry in {0} s")]
    RateLimited(u64),
}

/// Verifies ingest credentials and limits each account's request rate.
pub struct IngestAuth {
    /// `None`: authentication is off and events keep their own accounts.
    inner: Option<Inner>,
}

struct Inner {
    secret: Option<Vec<u8>>,
    keys: Vec<IngestKey>,
    limiter: DefaultKeyedRateLimiter<u64>,
}

impl std::fmt::Debug for IngestAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            None => f.write_str("IngestAuth(off)"),
            Some(i) => f
                .debug_struct("IngestAuth")
                .field("derived_keys", &i.secret.is_some())
                .field("keys", &i.keys)
                .finish_non_exhaustive(),
        }
    }
}

impl IngestAuth {
    /// Keys derived from `secret` (when given) and the configured `keys`; each account
    /// may make `requests_per_s` requests per second on average.
    pub fn new(secret: Option<Vec<u8>>, keys: Vec<IngestKey>, requests_per_s: u32) -> Self {
        let rate = NonZeroU32::new(requests_per_s.max(1)).expect("at least 1");
        Self {
            inner: Some(Inner {
                secret,
                keys,
                limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(rate)),
            }),
        }
    }

    /// No authentication: any request may write events of any account.
    pub fn off() -> Self {
        Self { inner: None }
    }

    /// The derived ingest key of `account_id` under `secret`.
    pub fn derived_key(secret: &[u8], account_id: u64) -> String {
        let mac = hmac_hex(
            secret,
            format!("crmpulse ingest key v1:{account_id}").as_bytes(),
        );
        format!("cpi_{account_id}_{}", &mac[..40])
    }

    /// The derived webhook secret of `account_id` under `secret`.
    pub fn derived_webhook_secret(secret: &[u8], account_id: u64) -> String {
        let mac = hmac_hex(
            secret,
            format!("crmpulse webhook secret v1:{account_id}").as_bytes(),
        );
        format!("cpw_{account_id}_{}", &mac[..40])
    }

    /// The account of a request's `Authorization: Bearer <ingest key>`; `None` when
    /// authentication is off.
    ///
    /// # Errors
    /// A missing or unknown key, or the account's rate limit.
    pub fn authenticate_bearer(&self, headers: &HeaderMap) -> Result<Option<u64>, IngestAuthError> {
        let Some(inner) = &self.inner else {
            return Ok(None);
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| key.trim())
            .ok_or(IngestAuthError::MissingKey)?;
        let account = inner.account_of_key(presented).ok_or_else(|| {
            metrics::counter!("crmpulse_ingest_auth_failures_total", "reason" => "unknown_key")
                .increment(1);
            IngestAuthError::UnknownKey
        })?;
        inner.admit(account)?;
        Ok(Some(account))
    }

    /// Takes one request of `account_id` against its rate limit (always admitted when
    /// authentication is off): for sources that authenticate by their own rules.
    ///
    /// # Errors
    /// [`IngestAuthError::RateLimited`] past the account's rate.
    pub fn admit(&self, account_id: u64) -> Result<(), IngestAuthError> {
        match &self.inner {
            None => Ok(()),
            Some(inner) => inner.admit(account_id),
        }
    }

    /// Checks the HMAC-SHA256 signature of a webhook body for `account_id`; returns the
    /// account (`None` when authentication is off).
    ///
    /// # Errors
    /// A missing or wrong signature, or the account's rate limit.
    pub fn authenticate_signature(
        &self,
        account_id: u64,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Option<u64>, IngestAuthError> {
        let Some(inner) = &self.inner else {
            return Ok(None);
        };
        let signature = SIGNATURE_HEADERS
            .iter()
            .find_map(|h| headers.get(*h))
            .and_then(|v| v.to_str().ok())
            .ok_or(IngestAuthError::MissingSignature)?;
        let digest = signature
            .trim()
            .strip_prefix("sha256=")
            .and_then(|h| hex::decode(h).ok())
            .ok_or(IngestAuthError::BadSignature)?;
        let matches = inner
            .webhook_secrets(account_id)
            .any(|secret| hmac_matches(secret.as_bytes(), &[body], &digest));
        if !matches {
            metrics::counter!("crmpulse_ingest_auth_failures_total", "reason" => "bad_signature")
                .increment(1);
            return Err(IngestAuthError::BadSignature);
        }
        inner.admit(account_id)?;
        Ok(Some(account_id))
    }
}

impl Inner {
    fn account_of_key(&self, presented: &str) -> Option<u64> {
        if let Some(secret) = &self.secret
            && let Some(account) = presented
                .strip_prefix("cpi_")
                .and_then(|rest| rest.split_once('_'))
                .and_then(|(account, _)| account.parse::<u64>().ok())
        {
            let expected = IngestAuth::derived_key(secret, account);
            if bool::from(expected.as_bytes().ct_eq(presented.as_bytes())) {
                return Some(account);
            }
        }
        // Every configured key is compared, in constant time, so timing says nothing
        // about which one came close.
        let mut found = None;
        for k in &self.keys {
            if bool::from(k.key.expose().as_bytes().ct_eq(presented.as_bytes())) {
                found = Some(k.account_id);
            }
        }
        found
    }

    fn webhook_secrets(&self, account_id: u64) -> impl Iterator<Item = String> + '_ {
        self.secret
            .iter()
            .map(move |s| IngestAuth::derived_webhook_secret(s, account_id))
            .chain(
                self.keys
                    .iter()
                    .filter(move |k| k.account_id == account_id)
                    .filter_map(|k| k.webhook_secret.as_ref().map(|s| s.expose().to_owned())),
            )
    }

    fn admit(&self, account_id: u64) -> Result<(), IngestAuthError> {
        use governor::clock::{Clock, DefaultClock};
        self.limiter.check_key(&account_id).map_err(|not_until| {
            metrics::counter!("crmpulse_ingest_rate_limited_total").increment(1);
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            IngestAuthError::RateLimited(wait.as_secs().max(1))
        })
    }
}

/// `sha256=<hex>` of `body` under `secret`: what a webhook source sends.
pub fn sign(secret: &str, body: &[u8]) -> String {
    sign_parts(secret.as_bytes(), &[body])
}

/// `sha256=<hex>` of `parts`, concatenated, under `secret` (Chatwoot signs
/// `timestamp`, `.`, body).
pub fn sign_parts(secret: &[u8], parts: &[&[u8]]) -> String {
    format!("sha256={}", hmac_hex_parts(secret, parts))
}

/// Whether `digest` is the HMAC-SHA256 of `parts`, concatenated, under `secret`,
/// compared in constant time. Every webhook signature check goes through it.
pub fn hmac_matches(secret: &[u8], parts: &[&[u8]], digest: &[u8]) -> bool {
    mac_of(secret, parts).verify_slice(digest).is_ok()
}

fn mac_of(secret: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac
}

fn hmac_hex_parts(secret: &[u8], parts: &[&[u8]]) -> String {
    hex::encode(mac_of(secret, parts).finalize().into_bytes())
}

fn hmac_hex(secret: &[u8], message: &[u8]) -> String {
    hmac_hex_parts(secret, &[message])
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn bearer(key: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {key}")).unwrap(),
        );
        h
    }

    #[test]
    fn derived_and_configured_keys_name_their_account() {
        let auth = IngestAuth::new(
            Some(SECRET.to_vec()),
            vec![IngestKey {
                id: "crm".into(),
                account_id: 9,
                key: "configured-key-of-account-nine".into(),
                webhook_secret: None,
            }],
            100,
        );
        let k2 = IngestAuth::derived_key(SECRET, 2);
        assert_eq!(auth.authenticate_bearer(&bearer(&k2)), Ok(Some(2)));
        assert_eq!(
            auth.authenticate_bearer(&bearer("configured-key-of-account-nine")),
            Ok(Some(9))
        );
        // Another account's prefix with this account's MAC, a key under another secret.
        let forged = k2.replacen("cpi_2_", "cpi_3_", 1);
        assert_eq!(
            auth.authenticate_bearer(&bearer(&forged)),
            Err(IngestAuthError::UnknownKey)
        );
        let other = IngestAuth::derived_key(b"another secret, also 32 bytes long", 2);
        assert_eq!(
            auth.authenticate_bearer(&bearer(&other)),
            Err(IngestAuthError::UnknownKey)
        );
        assert_eq!(
            auth.authenticate_bearer(&HeaderMap::new()),
            Err(IngestAuthError::MissingKey)
        );
    }

    #[test]
    fn webhook_signatures_are_checked_against_the_body() {
        let auth = IngestAuth::new(Some(SECRET.to_vec()), vec![], 100);
        let secret = IngestAuth::derived_webhook_secret(SECRET, 1);
        let body = br#"[{"event_id":"e1"}]"#;
        let mut h = HeaderMap::new();
        h.insert(
            "x-hub-signature-256",
            HeaderValue::from_str(&sign(&secret, body)).unwrap(),
        );
        assert_eq!(auth.authenticate_signature(1, &h, body), Ok(Some(1)));
        assert_eq!(
            auth.authenticate_signature(1, &h, b"[]"),
            Err(IngestAuthError::BadSignature)
        );
        // The same signature does not open another account.
        assert_eq!(
            auth.authenticate_signature(2, &h, body),
            Err(IngestAuthError::BadSignature)
        );
        assert_eq!(
            auth.authenticate_signature(1, &HeaderMap::new(), body),
            Err(IngestAuthError::MissingSignature)
        );
    }

    #[test]
    fn the_rate_limit_is_per_account() {
        let auth = IngestAuth::new(Some(SECRET.to_vec()), vec![], 2);
        let k1 = bearer(&IngestAuth::derived_key(SECRET, 1));
        assert!(auth.authenticate_bearer(&k1).is_ok());
        assert!(auth.authenticate_bearer(&k1).is_ok());
        assert!(matches!(
            auth.authenticate_bearer(&k1),
            Err(IngestAuthError::RateLimited(_))
        ));
        let k2 = bearer(&IngestAuth::derived_key(SECRET, 2));
        assert!(auth.authenticate_bearer(&k2).is_ok());
    }
}
