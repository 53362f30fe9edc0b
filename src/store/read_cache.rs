//! Results of expensive per-user reads (the statistics aggregates) remembered against the
//! user's change clock: every write to a user's data moves the clock, so an entry is reused
//! only while nothing it was computed from can have changed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct ReadCache<V> {
    entries: Mutex<HashMap<String, (i64, Arc<V>)>>,
    capacity: usize,
}

impl<V> ReadCache<V> {
    /// A cache of at most `capacity` entries (when full it starts over: simple and bounded).
    pub fn new(capacity: usize) -> Self {
        ReadCache {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The value stored under `key` for exactly this clock value.
    pub fn get(&self, key: &str, clock: i64) -> Option<Arc<V>> {
        let entries = self.entries.lock().ok()?;
        entries.get(key).filter(|(at, _)| *at == clock).map(|(_, v)| v.clone())
    }

    /// Stores `value`, computed at `clock`. The clock must have been read before the value
    /// was computed, so a concurrent write can only make the entry fresher than its clock says,
    /// never staler: a request that starts after the write reads a newer clock and misses.
    pub fn put(&self, key: String, clock: i64, value: Arc<V>) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= self.capacity && !entries.contains_key(&key) {
                entries.clear();
            }
            entries.insert(key, (clock, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_live_only_for_their_clock() {
        let cache = ReadCache::new(2);
        cache.put("a".into(), 5, Arc::new(1));
        assert_eq!(cache.get("a", 5).as_deref(), Some(&1));
        assert_eq!(cache.get("a", 6), None);
        cache.put("b".into(), 1, Arc::new(2));
        cache.put("c".into(), 1, Arc::new(3));
        assert_eq!(cache.get("a", 5), None, "a full cache starts over");
        assert_eq!(cache.get("c", 1).as_deref(), Some(&3));
    }
}
