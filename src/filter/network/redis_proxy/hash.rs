//! The key hashes Envoy's redis proxy uses to pick a host: 64-bit MurmurHash2 (libstdc++'s
//! `_Hash_bytes`, Envoy's `MurmurHash::murmurHash2` with `STD_HASH_SEED`) of the key, or of its
//! hash tag when `enable_hashtagging` is set, for RING_HASH and MAGLEV clusters; CRC16 (XMODEM)
//! slots for Redis Cluster.

/// Envoy's `STD_HASH_SEED`.
pub const STD_HASH_SEED: u64 = 0xc70f6907;

const MUL: u64 = 0xc6a4a7935bd1e995;

fn shift_mix(v: u64) -> u64 {
    v ^ (v >> 47)
}

/// Envoy's `MurmurHash::murmurHash2(key, STD_HASH_SEED)`.
pub fn murmur2(key: &[u8]) -> u64 {
    let len = key.len() as u64;
    let mut hash = STD_HASH_SEED ^ len.wrapping_mul(MUL);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let data = shift_mix(u64::from_le_bytes(w).wrapping_mul(MUL)).wrapping_mul(MUL);
        hash ^= data;
        hash = hash.wrapping_mul(MUL);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        // `loadBytes`: the trailing bytes as a little-endian integer.
        let data = rest.iter().rev().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        hash ^= data;
        hash = hash.wrapping_mul(MUL);
    }
    hash = shift_mix(hash).wrapping_mul(MUL);
    shift_mix(hash)
}

/// Redis Cluster's hash tag: the bytes between the first `{` and the next `}` when non-empty,
/// else the whole key.
pub fn hashtag(key: &[u8], enabled: bool) -> &[u8] {
    if !enabled {
        return key;
    }
    let Some(start) = key.iter().position(|&b| b == b'{') else { return key };
    match key[start + 1..].iter().position(|&b| b == b'}') {
        Some(0) | None => key,
        Some(len) => &key[start + 1..start + 1 + len],
    }
}

/// The hash Envoy gives the load balancer for `key` on a non-Redis-Cluster cluster.
pub fn key_hash(key: &[u8], hashtagging: bool) -> u64 {
    murmur2(hashtag(key, hashtagging))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashtags_follow_the_cluster_spec() {
        assert_eq!(hashtag(b"{user1000}.following", true), b"user1000");
        assert_eq!(hashtag(b"foo{}{bar}", true), b"foo{}{bar}");
        assert_eq!(hashtag(b"foo{{bar}}zap", true), b"{bar");
        assert_eq!(hashtag(b"foo{bar}{zap}", true), b"bar");
        assert_eq!(hashtag(b"{a}b", false), b"{a}b");
        assert_eq!(hashtag(b"nobrace", true), b"nobrace");
    }

    #[test]
    fn murmur2_matches_libstdcxx_hash_bytes() {
        // Values of std::_Hash_bytes(s, len, 0xc70f6907) on x86-64 (std::hash<std::string>).
        assert_eq!(murmur2(b""), 6142509188972423790);
        assert_eq!(murmur2(b"foo"), 9631199822919835226);
        assert_eq!(murmur2(b"hello world!"), 6594337730806245023);
        assert_eq!(murmur2(b"abcdefgh"), 8664279048047335611);
        assert_eq!(murmur2(b"key:000000000042"), 1391930808845352542);
        // The same key always lands on the same hash, tag or not.
        assert_eq!(key_hash(b"{t}a", true), key_hash(b"{t}b", true));
    }
}
