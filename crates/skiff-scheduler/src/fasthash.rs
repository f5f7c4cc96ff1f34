//! A fast hasher for the scheduler's maps, keyed by node names, label values and topology
//! values: one multiply per eight bytes (the multiply-and-rotate scheme of compilers' symbol
//! tables), seeded once per process so keys do not collide the same way in every process.
//! The decision loop looks such keys up for every node it filters and scores, and the
//! standard SipHash cost more than the lookups themselves.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::LazyLock;

/// An odd constant with well-spread bits (from the golden ratio).
const K: u64 = 0x9e37_79b9_7f4a_7c15;

static SEED: LazyLock<u64> = LazyLock::new(|| RandomState::new().hash_one(0x5ced_u64));

/// A map with the fast hasher.
pub type Map<K, V> = HashMap<K, V, FastState>;
/// A set with the fast hasher.
pub type Set<K> = HashSet<K, FastState>;

/// Builds [`FastHasher`]s from the process seed.
#[derive(Debug, Clone, Copy)]
pub struct FastState(u64);

impl Default for FastState {
    fn default() -> Self {
        FastState(*SEED)
    }
}

impl BuildHasher for FastState {
    type Hasher = FastHasher;

    fn build_hasher(&self) -> FastHasher {
        FastHasher(self.0)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct FastHasher(u64);

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = self.0.wrapping_add(word).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("eight bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    /// The multiply mixes upwards; the rotation brings the well-mixed high bits down to the
    /// bucket index.
    #[inline]
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_hash_equal_and_names_spread_over_buckets() {
        let s = FastState::default();
        assert_eq!(s.hash_one("fake-node-12"), s.hash_one("fake-node-12"));
        assert_ne!(s.hash_one("fake-node-12"), s.hash_one("fake-node-21"));
        // 5,000 node names over 1,024 buckets: no bucket holds a crowd.
        let mut buckets = vec![0u32; 1024];
        for i in 0..5000 {
            buckets[(s.hash_one(format!("fake-node-{i}")) & 1023) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&n| n < 20),
            "{:?}",
            buckets.iter().max()
        );
        let mut m: Map<String, u32> = Map::default();
        m.insert("a".into(), 1);
        assert_eq!(m.get("a"), Some(&1));
    }
}
