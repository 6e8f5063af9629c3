//! The answer cache of one source: per person, keyed by HMAC-SHA256(secret, normalised ID
//! number), so that a raw number is never a key (a heap dump or a metrics label shows only
//! keyed hashes that cannot be reversed without the secret) and a household sharing a person
//! with an earlier one reuses that person's answer. Only answers are cached, never failures;
//! each entry remembers when the source gave it, so a report can say how old its data is.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ring::hmac;

use crate::Record;

/// A person's answer from one source: the records (possibly none) and when they came.
#[derive(Debug, Clone)]
pub(crate) struct PersonAnswer {
    /// The person's records (empty: the source holds nothing for them).
    pub records: Vec<Record>,
    /// When the source answered.
    pub answered_at: SystemTime,
}

/// 32-byte keyed hash of an ID number.
pub(crate) type CacheKey = [u8; 32];

/// Keyed hashing of ID numbers (shared by every source's cache).
#[derive(Clone)]
pub(crate) struct Keyer(hmac::Key);

impl std::fmt::Debug for Keyer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyer(<secret>)")
    }
}

impl Keyer {
    pub fn new(secret: &[u8]) -> Keyer {
        Keyer(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// HMAC-SHA256 of the normalised number (RFC 2104).
    pub fn key(&self, id_number: &str) -> CacheKey {
        let tag = hmac::sign(&self.0, id_number.as_bytes());
        let mut k = [0u8; 32];
        k.copy_from_slice(tag.as_ref());
        k
    }
}

/// The hasher of the cache's keys: a key is already an HMAC-SHA256 tag (uniform, and not
/// chosen by anyone who lacks the secret), so its bytes need mixing only, not SipHash's
/// flooding protection (which cost more than the lookups themselves under load).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.0 = (self.0.rotate_left(29) ^ u64::from_le_bytes(w))
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
}

/// [`KeyHasher`] for moka.
pub(crate) type KeyHashing = std::hash::BuildHasherDefault<KeyHasher>;

/// One source's cache (absent when its TTL is 0).
#[derive(Debug, Clone)]
pub(crate) struct SourceCache {
    inner: moka::future::Cache<CacheKey, Arc<PersonAnswer>, KeyHashing>,
}

impl SourceCache {
    /// A cache keeping at most `capacity` persons for `ttl` each.
    pub fn new(ttl: Duration, capacity: u64) -> SourceCache {
        SourceCache {
            inner: moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build_with_hasher(KeyHashing::default()),
        }
    }

    pub async fn get(&self, key: &CacheKey) -> Option<Arc<PersonAnswer>> {
        self.inner.get(key).await
    }

    pub async fn insert(&self, key: CacheKey, answer: Arc<PersonAnswer>) {
        self.inner.insert(key, answer).await
    }

    /// Persons held now (approximate: moka counts lazily).
    pub fn len(&self) -> u64 {
        self.inner.entry_count()
    }

    /// Forget everything (operator action, tests).
    pub fn clear(&self) {
        self.inner.invalidate_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_a_keyed_hash_not_the_number() {
        let a = Keyer::new(b"0123456789abcdef0123456789abcdef");
        let b = Keyer::new(b"another secret, another key space");
        let id = "620503198703151234";
        let ka = a.key(id);
        assert_eq!(ka, a.key(id), "stable");
        assert_ne!(ka, b.key(id), "depends on the secret");
        assert_ne!(ka, a.key("620503198703151242"));
        // RFC 4231 test case 2 checks the primitive itself.
        let t = Keyer::new(b"Jefe").key("what do ya want for nothing?");
        assert_eq!(t[..4], [0x5b, 0xdc, 0xc1, 0x46], "HMAC-SHA256 per RFC 4231");
        assert!(!ka.windows(id.len()).any(|w| w == id.as_bytes()));
    }

    #[test]
    fn keys_that_differ_in_any_byte_hash_apart() {
        use std::hash::BuildHasher;
        let h = KeyHashing::default();
        let k = Keyer::new(b"0123456789abcdef0123456789abcdef").key("620503198703151234");
        let base = h.hash_one(k);
        for i in 0..32 {
            let mut other = k;
            other[i] ^= 1;
            assert_ne!(h.hash_one(other), base, "byte {i}");
        }
    }
}
