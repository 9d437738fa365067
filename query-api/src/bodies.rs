//! Section bodies shared between requests and live subscribers.
//!
//! Every live connection recomputes its subscriptions on each coalescing tick after
//! the store moved, and a dashboard opened by many people asks for the same views.
//! Without sharing, N subscribers of one view cost N computations per tick. A body is
//! a pure function of the store's state, the section, its parameters, the resolved
//! range, the account's settings and the 15-minute bucket of "now" (what "today" and
//! "messages today" depend on), so a body computed once for that [`Key`] is valid for
//! everyone who asks with the same key. The principal's redaction (see
//! [`crate::auth`]) is applied per caller after the shared body.
//!
//! Only bodies of the newest state are worth keeping: when the cache is full, entries
//! of older store versions go first, then everything.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::sections::Params;

/// Most bodies kept (a few dozen distinct views are typical).
pub const CAPACITY: usize = 256;

/// What a body depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// The section.
    pub section: String,
    /// Its parameters (the account is already the caller's).
    pub params: Params,
    /// The resolved range `[from, to)`, ms.
    pub range: (i64, i64),
    /// "Now", floored to its 15-minute bucket.
    pub now_bucket: i64,
    /// The store's version ([`crate::store::Snapshot::version`]).
    pub version: u64,
    /// The account's settings, serialized.
    pub settings: String,
}

/// Shared bodies by key.
#[derive(Debug, Default)]
pub struct BodyCache {
    bodies: Mutex<HashMap<Key, Arc<Value>>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl BodyCache {
    /// The body computed for `key`, if any.
    pub fn get(&self, key: &Key) -> Option<Arc<Value>> {
        let found = self.lock().get(key).cloned();
        let (outcome, count) = if found.is_some() {
            ("hit", &self.hits)
        } else {
            ("miss", &self.misses)
        };
        count.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("crmpulse_api_shared_bodies_total", "outcome" => outcome).increment(1);
        found
    }

    /// Keeps `body` for `key`.
    pub fn put(&self, key: Key, body: Arc<Value>) {
        let mut bodies = self.lock();
        if bodies.len() >= CAPACITY {
            let newest = key.version;
            bodies.retain(|k, _| k.version >= newest);
            if bodies.len() >= CAPACITY {
                bodies.clear();
            }
        }
        bodies.insert(key, body);
    }

    /// Lookups answered from a shared body, and lookups that computed one.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Bodies held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no body is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<Value>>> {
        self.bodies.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(version: u64, section: &str) -> Key {
        Key {
            section: section.into(),
            params: Params::default(),
            range: (0, 1),
            now_bucket: 0,
            version,
            settings: String::new(),
        }
    }

    #[test]
    fn a_full_cache_drops_older_versions_first() {
        let cache = BodyCache::default();
        for i in 0..CAPACITY {
            cache.put(key(1, &i.to_string()), Arc::new(Value::Null));
        }
        assert_eq!(cache.len(), CAPACITY);
        cache.put(key(2, "new"), Arc::new(Value::Bool(true)));
        assert_eq!(cache.len(), 1);
        assert_eq!(
            cache.get(&key(2, "new")).as_deref(),
            Some(&Value::Bool(true))
        );
        assert!(cache.get(&key(1, "0")).is_none());
    }
}
