//! A small bounded in-memory cache (the most recently written suggestions, authenticated keys
//! for a second or two). Only ever a shortcut: every write is still checked against the stored
//! version, so a stale entry costs a conflict, never a wrong write.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries with the time they were put, and the order they came in.
type Entries<K, V> = (HashMap<K, (V, Instant)>, VecDeque<K>);

/// A map that forgets its oldest entries beyond `capacity`.
#[derive(Debug)]
pub struct Bounded<K, V> {
    inner: Mutex<Entries<K, V>>,
    capacity: usize,
    ttl: Option<Duration>,
}

impl<K: Hash + Eq + Clone, V: Clone> Bounded<K, V> {
    pub fn new(capacity: usize, ttl: Option<Duration>) -> Self {
        Bounded {
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
            capacity,
            ttl,
        }
    }

    pub fn get(&self, k: &K) -> Option<V> {
        let guard = self.inner.lock().ok()?;
        let (v, at) = guard.0.get(k)?;
        if self.ttl.is_some_and(|ttl| at.elapsed() > ttl) {
            return None;
        }
        Some(v.clone())
    }

    pub fn put(&self, k: K, v: V) {
        let Ok(mut guard) = self.inner.lock() else {
            return;
        };
        let (map, order) = &mut *guard;
        if map.insert(k.clone(), (v, Instant::now())).is_none() {
            order.push_back(k);
        }
        while map.len() > self.capacity {
            match order.pop_front() {
                Some(old) => {
                    map.remove(&old);
                }
                None => break,
            }
        }
    }

    pub fn remove(&self, k: &K) {
        if let Ok(mut guard) = self.inner.lock() {
            guard.0.remove(k);
            guard.1.retain(|x| x != k);
        }
    }

    pub fn clear(&self) {
        if let Ok(mut guard) = self.inner.lock() {
            guard.0.clear();
            guard.1.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_entries_go_first_and_ttl_expires() {
        let c = Bounded::new(2, None);
        c.put(1, "a");
        c.put(2, "b");
        c.put(3, "c");
        assert_eq!(
            (c.get(&1), c.get(&2), c.get(&3)),
            (None, Some("b"), Some("c"))
        );
        c.remove(&2);
        assert_eq!(c.get(&2), None);
        let t = Bounded::new(10, Some(Duration::from_millis(1)));
        t.put(1, 1);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(t.get(&1), None);
    }
}
