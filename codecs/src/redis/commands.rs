//! The commands the Redis proxy routes, each with the family that decides how (Envoy's
//! `supported_commands.h`), and the command-name lookup used on every request.
//!
//! The list is the one whose per-command stats Envoy creates at zero; a name not here is
//! answered `unsupported command '<name>'`.

/// How a command is routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// One key, argument 1: sent whole to the key's server.
    Simple,
    /// `EVAL script numkeys key ...`: hashed on argument 3.
    Eval,
    /// `DEL`/`EXISTS`/`TOUCH`/`UNLINK`: one command per key, integer replies summed.
    SumMulti,
    /// One `GET` per key, replies reassembled into an array in order.
    MGet,
    /// One `SET` per key/value pair; `OK` or `finished with N error(s)`.
    MSet,
    /// `MULTI`/`EXEC`/`DISCARD`/`WATCH`/`UNWATCH`: pinned to the server of the transaction's
    /// first key.
    Transaction,
    /// `OBJECT <subcommand> key`: hashed on argument 2.
    KeyAt2,
    /// `RANDOMKEY`, `ROLE`: any one server.
    RandomShard,
    /// `SELECT`: answered `OK` locally (upstream connections are shared; database 0 is used).
    LocalOk,
    /// Commands Envoy fans out to every server and merges (`KEYS`, `SCAN`, `INFO`, `FLUSHALL`,
    /// `CONFIG`, `SCRIPT`, `SLOWLOG`, `CLUSTER`, `HELLO`, ...): not implemented by Legate yet.
    NotYet,
}

/// Lower-case names, sorted (binary search), with their family.
pub static SUPPORTED: &[(&str, Family)] = &[
    ("append", Family::Simple),
    ("bf.add", Family::Simple),
    ("bf.card", Family::Simple),
    ("bf.exists", Family::Simple),
    ("bf.info", Family::Simple),
    ("bf.insert", Family::Simple),
    ("bf.loadchunk", Family::Simple),
    ("bf.madd", Family::Simple),
    ("bf.mexists", Family::Simple),
    ("bf.reserve", Family::Simple),
    ("bf.scandump", Family::Simple),
    ("bitcount", Family::Simple),
    ("bitfield", Family::Simple),
    ("bitfield_ro", Family::Simple),
    ("bitop", Family::Simple),
    ("bitpos", Family::Simple),
    ("cluster", Family::NotYet),
    ("config", Family::NotYet),
    ("copy", Family::Simple),
    ("decr", Family::Simple),
    ("decrby", Family::Simple),
    ("del", Family::SumMulti),
    ("discard", Family::Transaction),
    ("dump", Family::Simple),
    ("eval", Family::Eval),
    ("evalsha", Family::Eval),
    ("exec", Family::Transaction),
    ("exists", Family::SumMulti),
    ("expire", Family::Simple),
    ("expireat", Family::Simple),
    ("flushall", Family::NotYet),
    ("flushdb", Family::NotYet),
    ("geoadd", Family::Simple),
    ("geodist", Family::Simple),
    ("geohash", Family::Simple),
    ("geopos", Family::Simple),
    ("georadius", Family::Simple),
    ("georadius_ro", Family::Simple),
    ("georadiusbymember", Family::Simple),
    ("georadiusbymember_ro", Family::Simple),
    ("geosearch", Family::Simple),
    ("geosearchstore", Family::Simple),
    ("get", Family::Simple),
    ("getbit", Family::Simple),
    ("getdel", Family::Simple),
    ("getex", Family::Simple),
    ("getrange", Family::Simple),
    ("getset", Family::Simple),
    ("hdel", Family::Simple),
    ("hello", Family::NotYet),
    ("hexists", Family::Simple),
    ("hexpire", Family::Simple),
    ("hexpireat", Family::Simple),
    ("hexpiretime", Family::Simple),
    ("hget", Family::Simple),
    ("hgetall", Family::Simple),
    ("hincrby", Family::Simple),
    ("hincrbyfloat", Family::Simple),
    ("hkeys", Family::Simple),
    ("hlen", Family::Simple),
    ("hmget", Family::Simple),
    ("hmset", Family::Simple),
    ("hpersist", Family::Simple),
    ("hpexpire", Family::Simple),
    ("hpexpireat", Family::Simple),
    ("hpexpiretime", Family::Simple),
    ("hpttl", Family::Simple),
    ("hrandfield", Family::Simple),
    ("hscan", Family::Simple),
    ("hset", Family::Simple),
    ("hsetnx", Family::Simple),
    ("hstrlen", Family::Simple),
    ("httl", Family::Simple),
    ("hvals", Family::Simple),
    ("incr", Family::Simple),
    ("incrby", Family::Simple),
    ("incrbyfloat", Family::Simple),
    ("info", Family::NotYet),
    ("info.shard", Family::NotYet),
    ("keys", Family::NotYet),
    ("lindex", Family::Simple),
    ("linsert", Family::Simple),
    ("llen", Family::Simple),
    ("lmove", Family::Simple),
    ("lpop", Family::Simple),
    ("lpos", Family::Simple),
    ("lpush", Family::Simple),
    ("lpushx", Family::Simple),
    ("lrange", Family::Simple),
    ("lrem", Family::Simple),
    ("lset", Family::Simple),
    ("ltrim", Family::Simple),
    ("mget", Family::MGet),
    ("mset", Family::MSet),
    ("msetnx", Family::Simple),
    ("multi", Family::Transaction),
    ("object", Family::KeyAt2),
    ("persist", Family::Simple),
    ("pexpire", Family::Simple),
    ("pexpireat", Family::Simple),
    ("pfadd", Family::Simple),
    ("pfcount", Family::Simple),
    ("pfmerge", Family::Simple),
    ("psetex", Family::Simple),
    ("pttl", Family::Simple),
    ("publish", Family::Simple),
    ("randomkey", Family::RandomShard),
    ("rename", Family::Simple),
    ("renamenx", Family::Simple),
    ("restore", Family::Simple),
    ("role", Family::RandomShard),
    ("rpop", Family::Simple),
    ("rpoplpush", Family::Simple),
    ("rpush", Family::Simple),
    ("rpushx", Family::Simple),
    ("sadd", Family::Simple),
    ("scan", Family::NotYet),
    ("scard", Family::Simple),
    ("script", Family::NotYet),
    ("sdiff", Family::Simple),
    ("sdiffstore", Family::Simple),
    ("select", Family::LocalOk),
    ("set", Family::Simple),
    ("setbit", Family::Simple),
    ("setex", Family::Simple),
    ("setnx", Family::Simple),
    ("setrange", Family::Simple),
    ("sinter", Family::Simple),
    ("sinterstore", Family::Simple),
    ("sismember", Family::Simple),
    ("slowlog", Family::NotYet),
    ("smembers", Family::Simple),
    ("smismember", Family::Simple),
    ("smove", Family::Simple),
    ("sort", Family::Simple),
    ("sort_ro", Family::Simple),
    ("spop", Family::Simple),
    ("srandmember", Family::Simple),
    ("srem", Family::Simple),
    ("sscan", Family::Simple),
    ("strlen", Family::Simple),
    ("substr", Family::Simple),
    ("sunion", Family::Simple),
    ("sunionstore", Family::Simple),
    ("touch", Family::SumMulti),
    ("ttl", Family::Simple),
    ("type", Family::Simple),
    ("unlink", Family::SumMulti),
    ("unwatch", Family::Transaction),
    ("watch", Family::Transaction),
    ("xack", Family::Simple),
    ("xadd", Family::Simple),
    ("xautoclaim", Family::Simple),
    ("xclaim", Family::Simple),
    ("xdel", Family::Simple),
    ("xlen", Family::Simple),
    ("xpending", Family::Simple),
    ("xrange", Family::Simple),
    ("xrevrange", Family::Simple),
    ("xtrim", Family::Simple),
    ("zadd", Family::Simple),
    ("zcard", Family::Simple),
    ("zcount", Family::Simple),
    ("zdiff", Family::Simple),
    ("zdiffstore", Family::Simple),
    ("zincrby", Family::Simple),
    ("zinter", Family::Simple),
    ("zinterstore", Family::Simple),
    ("zlexcount", Family::Simple),
    ("zmscore", Family::Simple),
    ("zpopmax", Family::Simple),
    ("zpopmin", Family::Simple),
    ("zrandmember", Family::Simple),
    ("zrange", Family::Simple),
    ("zrangebylex", Family::Simple),
    ("zrangebyscore", Family::Simple),
    ("zrangestore", Family::Simple),
    ("zrank", Family::Simple),
    ("zrem", Family::Simple),
    ("zremrangebylex", Family::Simple),
    ("zremrangebyrank", Family::Simple),
    ("zremrangebyscore", Family::Simple),
    ("zrevrange", Family::Simple),
    ("zrevrangebylex", Family::Simple),
    ("zrevrangebyscore", Family::Simple),
    ("zrevrank", Family::Simple),
    ("zscan", Family::Simple),
    ("zscore", Family::Simple),
    ("zunion", Family::Simple),
    ("zunionstore", Family::Simple),
];

/// Longest supported command name (`georadiusbymember_ro`); longer names are unknown.
const MAX_NAME: usize = 24;

/// The index in [`SUPPORTED`] of a command name in any case.
pub fn lookup(name: &[u8]) -> Option<usize> {
    if name.len() > MAX_NAME {
        return None;
    }
    let mut lower = [0u8; MAX_NAME];
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    let lower = &lower[..name.len()];
    SUPPORTED.binary_search_by(|(n, _)| n.as_bytes().cmp(lower)).ok()
}

/// Whether `name` (any case) equals the lower-case `lower`.
pub fn is(name: &[u8], lower: &str) -> bool {
    name.eq_ignore_ascii_case(lower.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_lower_case() {
        for w in SUPPORTED.windows(2) {
            assert!(w[0].0 < w[1].0, "{} !< {}", w[0].0, w[1].0);
        }
        for (n, _) in SUPPORTED {
            assert_eq!(n.to_ascii_lowercase(), *n);
            assert!(n.len() <= MAX_NAME);
        }
    }

    #[test]
    fn lookup_ignores_case() {
        let get = lookup(b"GeT").expect("get");
        assert_eq!(SUPPORTED[get], ("get", Family::Simple));
        assert_eq!(lookup(b"mget").map(|i| SUPPORTED[i].1), Some(Family::MGet));
        assert_eq!(lookup(b"EVALSHA").map(|i| SUPPORTED[i].1), Some(Family::Eval));
        assert_eq!(lookup(b"blpop"), None);
        assert_eq!(lookup(b"a-very-long-command-name-indeed"), None);
    }
}
