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
//! The cache is bounded in **bytes**, not entries: a client choosing distinct query
//! strings cannot make it hold more than [`BodyCache::max_bytes`] (`[api]
//! body_cache_mib`, 64 MiB by default) of bodies, whatever the size of each. A body is
//! weighed by an estimate of the memory its JSON tree holds ([`weigh`]). Eviction is
//! least recently used: only bodies of the newest store version are ever read again,
//! so older versions go first.
//!
//! Live subscribers hold the body they last sent (to diff the next one against). They
//! hold a shared [`Body`], never a copy: every subscriber of one view at one state
//! shares one body, whatever the number of connections. So that sharing survives an
//! eviction (a burst of distinct requests can push a body out while subscribers still
//! hold it), the cache keeps a [`Weak`] to every [`Body`] it handed out: a body still
//! held by someone is found again instead of computed a second time, and one nobody
//! holds is forgotten the moment its last holder drops it. The weak table tracks the
//! holders' handles, not the cache's own reference to the JSON tree: the cache
//! frees what it evicts later, on its own schedule (moka reclaims entries by epoch),
//! and that must not make a dropped body look held. Dead weak entries are dropped once
//! they are half of that table, so it stays proportional to the bodies alive.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use serde_json::Value;

use crate::sections::Params;

/// A section body handed out by the cache: what live subscribers hold and requests
/// answer from. Everyone who asks for one key while anyone holds its body gets the
/// same `Arc<Body>` ([`Body::same`]).
#[derive(Debug)]
pub struct Body(Arc<Value>);

impl Body {
    /// A body nobody shares (no cache configured).
    pub fn new(value: Value) -> Arc<Self> {
        Arc::new(Self(Arc::new(value)))
    }

    /// Whether `a` and `b` are the same body (one JSON tree), not merely equal.
    pub fn same(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    /// The JSON tree, moved out if nobody else holds it, else copied.
    pub fn into_value(body: Arc<Self>) -> Value {
        match Arc::try_unwrap(body) {
            Ok(Body(value)) => Arc::unwrap_or_clone(value),
            Err(shared) => Value::clone(&shared.0),
        }
    }
}

impl Deref for Body {
    type Target = Value;

    fn deref(&self) -> &Value {
        &self.0
    }
}

/// Default bound of the bodies held, in bytes (`[api] body_cache_mib = 64`).
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;

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
    /// Whose view of the body this is ([`crate::auth::Principal::redaction_scope`]):
    /// empty for the whole body, else the role and the agents or teams a redacted
    /// body keeps, so holders of the same scope share one redacted body.
    pub scope: String,
}

impl Key {
    /// Heap bytes of the key (its strings), plus the key itself.
    fn weight(&self) -> usize {
        let p = &self.params;
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::capacity);
        size_of::<Self>()
            + self.section.capacity()
            + self.settings.capacity()
            + self.scope.capacity()
            + opt(&p.from)
            + opt(&p.to)
            + opt(&p.inbox_id)
            + opt(&p.agent_id)
            + opt(&p.team_id)
    }
}

/// Shared bodies by key, at most [`BodyCache::max_bytes`] of them.
pub struct BodyCache {
    /// Each body with its weight, weighed once when it is put.
    bodies: Cache<Key, (u32, Arc<Value>)>,
    max_bytes: u64,
    /// Every body handed out, weakly: found again while someone (a live subscriber)
    /// still holds it, even after the cache evicted it.
    held: Mutex<Held>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for BodyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyCache")
            .field("entries", &self.bodies.entry_count())
            .field("bytes", &self.bodies.weighted_size())
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl Default for BodyCache {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_BYTES)
    }
}

impl BodyCache {
    /// A cache holding at most `max_bytes` of bodies (as [`weigh`] counts them). A body
    /// heavier than that alone is not kept.
    pub fn new(max_bytes: u64) -> Self {
        let bodies = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_: &Key, (weight, _): &(u32, Arc<Value>)| *weight)
            .eviction_policy(EvictionPolicy::lru())
            .build();
        Self {
            bodies,
            max_bytes,
            held: Mutex::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The body computed for `key`, if any: held by someone, or in the cache. Lookups
    /// of whole bodies are counted ([`BodyCache::stats`]); those of redacted copies (a
    /// [`Key::scope`]) are not, since missing one costs a copy, not a computation.
    pub fn get(&self, key: &Key) -> Option<Arc<Body>> {
        let found = {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            match held.bodies.get(key).and_then(Weak::upgrade) {
                Some(body) => Some(body),
                // Nobody holds it: hand out the cached tree under a new handle.
                None => self.bodies.get(key).map(|(_, value)| {
                    let body = Arc::new(Body(value));
                    held.insert(key.clone(), &body);
                    body
                }),
            }
        };
        if !key.scope.is_empty() {
            return found;
        }
        let (outcome, count) = if found.is_some() {
            ("hit", &self.hits)
        } else {
            ("miss", &self.misses)
        };
        count.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("crmpulse_api_shared_bodies_total", "outcome" => outcome).increment(1);
        found
    }

    /// Keeps `value` as the body for `key`, evicting the least recently used bodies
    /// beyond the bound, and hands it out.
    pub fn put(&self, key: Key, value: Value) -> Arc<Body> {
        let body = Body::new(value);
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone(), &body);
        let weight = u32::try_from(key.weight() + weigh(&body)).unwrap_or(u32::MAX);
        if u64::from(weight) > self.max_bytes {
            // Too heavy to keep at all: found again only while its holders hold it.
            return body;
        }
        self.bodies.insert(key, (weight, Arc::clone(&body.0)));
        // Evict now rather than at the cache's next maintenance: a burst of distinct
        // requests must not overshoot the bound (a put follows a computation, which
        // costs far more than this).
        self.bodies.run_pending_tasks();
        metrics::gauge!("crmpulse_api_shared_body_bytes").set(self.bodies.weighted_size() as f64);
        body
    }

    /// Lookups of whole bodies answered from a shared body, and those that computed one.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// The bound, in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Bytes of bodies held (as [`weigh`] counts them), after pending evictions.
    pub fn bytes(&self) -> u64 {
        self.bodies.run_pending_tasks();
        self.bodies.weighted_size()
    }

    /// Bodies held, after pending evictions.
    pub fn len(&self) -> usize {
        self.bodies.run_pending_tasks();
        usize::try_from(self.bodies.entry_count()).unwrap_or(usize::MAX)
    }

    /// Whether no body is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Distinct bodies alive (in the cache or held by a subscriber), and their weight
    /// as [`weigh`] counts it: what the bodies cost, however many hold them.
    pub fn alive(&self) -> (usize, u64) {
        let mut trees: HashMap<*const Value, Arc<Value>> = self
            .bodies
            .iter()
            .map(|(_, (_, value))| (Arc::as_ptr(&value), value))
            .collect();
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        for body in held.bodies.values().filter_map(Weak::upgrade) {
            trees.insert(Arc::as_ptr(&body.0), Arc::clone(&body.0));
        }
        trees.values().fold((0, 0), |(n, bytes), value| {
            (n + 1, bytes + weigh(value) as u64)
        })
    }
}

/// Weak references to the bodies handed out, by key.
#[derive(Default)]
struct Held {
    bodies: HashMap<Key, Weak<Body>>,
    /// Size of `bodies` at which the dead entries are dropped next.
    prune_at: usize,
}

impl Held {
    fn insert(&mut self, key: Key, body: &Arc<Body>) {
        if self.bodies.len() >= self.prune_at {
            // Amortized O(1) per insert: the table at most doubles between prunes.
            self.bodies.retain(|_, body| body.strong_count() > 0);
            self.prune_at = (self.bodies.len() * 2).max(64);
        }
        self.bodies.insert(key, Arc::downgrade(body));
    }
}

/// Bytes of a `serde_json` object's B-tree node (11 key and value slots and its
/// header), allocated for every 11 entries or fewer.
const MAP_NODE: usize = 11 * (size_of::<String>() + size_of::<Value>()) + 48;

/// An estimate of the heap memory `value` holds (not its serialized size): string
/// and array buffers, and the B-tree nodes of objects. Cheap: one walk of the tree,
/// no formatting.
pub fn weigh(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        Value::String(s) => s.capacity(),
        Value::Array(items) => {
            items.capacity() * size_of::<Value>() + items.iter().map(weigh).sum::<usize>()
        }
        Value::Object(map) => {
            // Nodes are at least half full once split; count them at two thirds.
            let nodes = (map.len() * 3 / 2).div_ceil(11);
            nodes * MAP_NODE
                + map
                    .iter()
                    .map(|(k, v)| k.capacity() + weigh(v))
                    .sum::<usize>()
        }
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
            scope: String::new(),
        }
    }

    /// A body of about `kib` KiB.
    fn body(kib: usize) -> Value {
        Value::String("x".repeat(kib * 1024))
    }

    #[test]
    fn the_cache_holds_at_most_its_bytes_whatever_the_number_of_keys() {
        let cache = BodyCache::new(1024 * 1024);
        for i in 0..300 {
            cache.put(key(1, &format!("distinct-{i}")), body(64));
            assert!(cache.bytes() <= cache.max_bytes(), "{cache:?}");
        }
        // 1 MiB holds at most 16 bodies of 64 KiB; the newest are kept.
        assert!(cache.len() <= 16 && cache.len() >= 8, "{cache:?}");
        assert!(cache.get(&key(1, "distinct-299")).is_some());
        assert!(cache.get(&key(1, "distinct-0")).is_none());
    }

    #[test]
    fn a_body_is_shared_until_evicted_and_older_versions_go_first() {
        let cache = BodyCache::new(256 * 1024);
        // Nobody holds these handles: only the cache keeps the bodies.
        drop(cache.put(key(1, "kpi"), body(100)));
        drop(cache.put(key(2, "kpi"), body(100)));
        assert!(cache.get(&key(2, "kpi")).is_some());
        // Room for two: the newest version, just read, stays; the old one goes.
        drop(cache.put(key(3, "kpi"), body(100)));
        assert!(cache.bytes() <= 256 * 1024);
        assert!(cache.get(&key(1, "kpi")).is_none());
        assert!(cache.get(&key(3, "kpi")).is_some());
        assert_eq!(cache.stats().0, 2);
    }

    #[test]
    fn a_body_still_held_is_found_after_its_eviction_and_forgotten_when_dropped() {
        let cache = BodyCache::new(256 * 1024);
        let held = cache.put(key(1, "live"), body(100));
        // Distinct bodies push it out of the cache...
        for i in 0..10 {
            cache.put(key(1, &format!("other-{i}")), body(100));
        }
        assert!(cache.bodies.get(&key(1, "live")).is_none());
        // ...but a subscriber still holds it: the same body, not a second one.
        let found = cache.get(&key(1, "live")).expect("still held");
        assert!(Arc::ptr_eq(&found, &held) && Body::same(&found, &held));
        drop((found, held));
        assert!(cache.get(&key(1, "live")).is_none());
        // Dead entries do not pile up.
        for i in 0..1000 {
            cache.put(key(2, &format!("churn-{i}")), body(100));
        }
        let held = cache.held.lock().unwrap();
        assert!(held.bodies.len() <= 128, "{}", held.bodies.len());
    }

    #[test]
    fn a_body_larger_than_the_bound_is_not_kept() {
        let cache = BodyCache::new(16 * 1024);
        cache.put(key(1, "huge"), body(64));
        assert_eq!(cache.bytes(), 0);
        assert!(cache.get(&key(1, "huge")).is_none());
    }

    #[test]
    fn weight_follows_the_tree() {
        assert_eq!(weigh(&Value::Null), 0);
        let small = serde_json::json!({"a": 1});
        let points: Vec<Value> = (0..1000)
            .map(|i| serde_json::json!({"start": format!("2026-11-20T{i:05}"), "count": i}))
            .collect();
        let big = serde_json::json!({"points": points});
        assert!(weigh(&small) >= MAP_NODE);
        assert!(weigh(&big) >= 1000 * (MAP_NODE + 24), "{}", weigh(&big));
        // Never below the serialized text of the strings it holds.
        assert!(weigh(&big) > big.to_string().len());
    }
}
