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
    /// `RANDOMKEY`, `CLUSTER <info|slots|keyslot|nodes>`: one random shard.
    RandomShard,
    /// `SELECT`: answered `OK` locally (upstream connections are shared; database 0 is used).
    LocalOk,
    /// Envoy's cluster-scope commands (`KEYS`, `INFO`, `FLUSHALL`, `FLUSHDB`, `CONFIG`,
    /// `SCRIPT`, `SLOWLOG`, `ROLE`): sent to every shard, replies merged per command.
    ClusterScope,
    /// `SCAN cursor ...`: sent to every shard, the arrays concatenated.
    Scan,
    /// `INFO.SHARD <n> [section]`: `INFO` on shard `n` only.
    InfoShard,
    /// `HELLO [2 [AUTH u p] [SETNAME n]]`: answered locally (RESP2 only, as Envoy 1.40).
    Hello,
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
    ("cluster", Family::RandomShard),
    ("config", Family::ClusterScope),
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
    ("flushall", Family::ClusterScope),
    ("flushdb", Family::ClusterScope),
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
    ("hello", Family::Hello),
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
    ("info", Family::ClusterScope),
    ("info.shard", Family::InfoShard),
    ("keys", Family::ClusterScope),
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
    ("role", Family::ClusterScope),
    ("rpop", Family::Simple),
    ("rpoplpush", Family::Simple),
    ("rpush", Family::Simple),
    ("rpushx", Family::Simple),
    ("sadd", Family::Simple),
    ("scan", Family::Scan),
    ("scard", Family::Simple),
    ("script", Family::ClusterScope),
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
    ("slowlog", Family::ClusterScope),
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

/// The commands Envoy 1.40 treats as writes (`request_mirror_policy.exclude_read_commands`
/// mirrors only these), sorted. Taken from Envoy 1.40 by mirroring every supported command
/// through it; note that `getset` and `xadd` are not in it (Envoy counts them as reads).
pub static WRITE_COMMANDS: &[&str] = &[
    "append",
    "bitfield",
    "bitop",
    "copy",
    "decr",
    "decrby",
    "del",
    "discard",
    "eval",
    "evalsha",
    "exec",
    "expire",
    "expireat",
    "geoadd",
    "georadius",
    "georadiusbymember",
    "geosearchstore",
    "getdel",
    "hdel",
    "hexpire",
    "hexpireat",
    "hincrby",
    "hincrbyfloat",
    "hmset",
    "hpersist",
    "hpexpire",
    "hpexpireat",
    "hset",
    "hsetnx",
    "incr",
    "incrby",
    "incrbyfloat",
    "linsert",
    "lmove",
    "lpop",
    "lpush",
    "lpushx",
    "lrem",
    "lset",
    "ltrim",
    "mset",
    "msetnx",
    "multi",
    "persist",
    "pexpire",
    "pexpireat",
    "pfadd",
    "pfmerge",
    "psetex",
    "rename",
    "renamenx",
    "restore",
    "rpop",
    "rpoplpush",
    "rpush",
    "rpushx",
    "sadd",
    "sdiffstore",
    "set",
    "setbit",
    "setex",
    "setnx",
    "setrange",
    "sinterstore",
    "smove",
    "sort",
    "spop",
    "srem",
    "sunionstore",
    "touch",
    "unlink",
    "zadd",
    "zdiffstore",
    "zincrby",
    "zinterstore",
    "zpopmax",
    "zpopmin",
    "zrangestore",
    "zrem",
    "zremrangebylex",
    "zremrangebyrank",
    "zremrangebyscore",
    "zunionstore",
];

/// Whether a lower-case command name is a write for mirroring (Envoy's `isReadCommand` negated).
pub fn is_write(lower: &str) -> bool {
    WRITE_COMMANDS.binary_search(&lower).is_ok()
}

/// Whether Envoy 1.40 names a command in its per-command upstream stats
/// (`cluster.<c>.redis_cluster.upstream_commands.<cmd>.*`); the others (the transaction
/// commands, `OBJECT`, `SCAN`) are counted as `unknown`, as are the `AUTH` and `READONLY` a
/// connection starts with.
pub fn has_upstream_stat(lower: &str) -> bool {
    !matches!(lower, "multi" | "exec" | "discard" | "watch" | "unwatch" | "object" | "scan")
}

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
    fn write_list_is_sorted_and_names_supported_commands() {
        for w in WRITE_COMMANDS.windows(2) {
            assert!(w[0] < w[1], "{} !< {}", w[0], w[1]);
        }
        for c in WRITE_COMMANDS {
            assert!(lookup(c.as_bytes()).is_some(), "{c}");
        }
        assert!(is_write("set") && is_write("del") && !is_write("get") && !is_write("getset"));
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
