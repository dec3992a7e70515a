//! `mongo.<stat_prefix>.*`: Envoy's fixed stats, plus the OP_MSG ones in the same scheme, and
//! the per-command, per-collection and per-call-site families. Those are created on first use
//! and capped (runtime keys `legate.mongo.max_*`): past the cap a command folds into
//! `cmd.unknown_command.*` and a collection or call site is counted in `*_overflow` only, so a
//! client cannot grow memory by inventing names.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use crate::define_stats;
use crate::stats::Store;

define_stats! {
    /// `mongo.<stat_prefix>.*`: Envoy's names, then Legate's OP_MSG additions.
    pub struct MongoStats {
        counter decoding_error,
        counter delays_injected,
        counter op_get_more,
        counter op_insert,
        counter op_kill_cursors,
        counter op_query,
        counter op_query_tailable_cursor,
        counter op_query_no_cursor_timeout,
        counter op_query_await_data,
        counter op_query_exhaust,
        counter op_query_no_max_time,
        counter op_query_scatter_get,
        counter op_query_multi_get,
        gauge op_query_active,
        counter op_reply,
        counter op_reply_cursor_not_found,
        counter op_reply_query_failure,
        counter op_reply_valid_cursor,
        counter op_command,
        counter op_command_reply,
        counter cx_destroy_local_with_active_rq,
        counter cx_destroy_remote_with_active_rq,
        counter cx_drain_close,
        // Legate: OP_MSG and the opcodes Envoy does not decode.
        counter op_msg,
        counter op_msg_more_to_come,
        counter op_msg_exhaust_allowed,
        counter op_msg_reply,
        counter op_msg_reply_more_to_come,
        counter op_msg_reply_error,
        gauge op_msg_active,
        counter op_update,
        counter op_delete,
        counter op_compressed,
        counter op_unknown,
        counter cmd_overflow,
        counter collection_overflow,
        counter callsite_overflow,
    }
}

define_stats! {
    /// `mongo.<p>.cmd.<cmd>.*`.
    pub struct CmdStats {
        counter total,
        histogram reply_num_docs,
        histogram reply_size: Bytes,
        histogram reply_time_ms: Milliseconds,
        /// Replies with `ok: 0` (server-side errors).
        counter error,
        /// Entries in replies' `writeErrors`.
        counter write_error,
    }
}

define_stats! {
    /// `mongo.<p>.collection.<coll>.query.*` and `...collection.<coll>.callsite.<fn>.query.*`.
    pub struct QueryStats {
        counter total,
        counter scatter_get,
        counter multi_get,
        histogram reply_num_docs,
        histogram reply_size: Bytes,
        histogram reply_time_ms: Milliseconds,
    }
}

define_stats! {
    /// `mongo.<p>.collection.<coll>.*` write counts (documents, from the replies' `n`).
    pub struct WriteStats {
        counter docs_inserted,
        counter docs_updated,
        counter docs_deleted,
    }
}

/// One collection's families, each registered when first charged.
pub struct CollStats {
    prefix: String,
    store: Store,
    query: OnceLock<QueryStats>,
    writes: OnceLock<WriteStats>,
}

impl CollStats {
    pub fn query(&self) -> &QueryStats {
        self.query.get_or_init(|| QueryStats::new(&self.store, &format!("{}query.", self.prefix)))
    }

    pub fn writes(&self) -> &WriteStats {
        self.writes.get_or_init(|| WriteStats::new(&self.store, &self.prefix))
    }
}

/// The name-keyed families of one filter config, shared by its connections.
pub struct Registry {
    store: Store,
    prefix: String,
    pub fixed: MongoStats,
    /// `Some` when the config lists its commands: only those get stats.
    listed: Option<HashMap<String, Arc<CmdStats>>>,
    commands: RwLock<HashMap<Box<str>, Arc<CmdStats>>>,
    unknown_command: Arc<CmdStats>,
    collections: RwLock<HashMap<Box<str>, Arc<CollStats>>>,
    callsites: RwLock<HashMap<CallSite, Arc<QueryStats>>>,
    pub caps: Caps,
}

/// A (collection, calling function) pair.
type CallSite = (Box<str>, Box<str>);

/// Cardinality caps.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub commands: usize,
    pub collections: usize,
    pub callsites: usize,
}

/// Envoy's fallback command name.
const UNKNOWN_COMMAND: &str = "unknown_command";

impl Registry {
    pub fn new(store: &Store, stat_prefix: &str, commands: Option<&[String]>, caps: Caps) -> Registry {
        let prefix = format!("mongo.{stat_prefix}.");
        let cmd = |name: &str| Arc::new(CmdStats::new(store, &format!("{prefix}cmd.{name}.")));
        let listed = commands.map(|list| list.iter().map(|c| (c.clone(), cmd(c))).collect());
        Registry {
            fixed: MongoStats::new(store, &prefix),
            unknown_command: cmd(UNKNOWN_COMMAND),
            listed,
            commands: RwLock::default(),
            collections: RwLock::default(),
            callsites: RwLock::default(),
            store: store.clone(),
            prefix,
            caps,
        }
    }

    /// The stats of command `name` (`unknown_command` when it is not listed or over the cap).
    pub fn command(&self, name: &str) -> Arc<CmdStats> {
        if let Some(listed) = &self.listed {
            return listed.get(name).unwrap_or(&self.unknown_command).clone();
        }
        if let Some(s) = self.commands.read().get(name) {
            return s.clone();
        }
        let mut map = self.commands.write();
        if let Some(s) = map.get(name) {
            return s.clone();
        }
        if map.len() >= self.caps.commands || name.is_empty() {
            self.fixed.cmd_overflow.inc();
            return self.unknown_command.clone();
        }
        let s = Arc::new(CmdStats::new(&self.store, &format!("{}cmd.{name}.", self.prefix)));
        map.insert(name.into(), s.clone());
        s
    }

    /// The stats of collection `name`, or `None` past the cap (counted in `collection_overflow`).
    pub fn collection(&self, name: &str) -> Option<Arc<CollStats>> {
        if let Some(s) = self.collections.read().get(name) {
            return Some(s.clone());
        }
        let mut map = self.collections.write();
        if let Some(s) = map.get(name) {
            return Some(s.clone());
        }
        if map.len() >= self.caps.collections {
            self.fixed.collection_overflow.inc();
            return None;
        }
        let s = Arc::new(CollStats {
            prefix: format!("{}collection.{name}.", self.prefix),
            store: self.store.clone(),
            query: OnceLock::new(),
            writes: OnceLock::new(),
        });
        map.insert(name.into(), s.clone());
        Some(s)
    }

    /// `collection.<coll>.callsite.<fn>.query.*`, or `None` past the cap.
    pub fn callsite(&self, coll: &str, function: &str) -> Option<Arc<QueryStats>> {
        let key: CallSite = (coll.into(), function.into());
        if let Some(s) = self.callsites.read().get(&key) {
            return Some(s.clone());
        }
        let mut map = self.callsites.write();
        if let Some(s) = map.get(&key) {
            return Some(s.clone());
        }
        if map.len() >= self.caps.callsites {
            self.fixed.callsite_overflow.inc();
            return None;
        }
        let prefix = format!("{}collection.{coll}.callsite.{function}.query.", self.prefix);
        let s = Arc::new(QueryStats::new(&self.store, &prefix));
        map.insert(key, s.clone());
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_past_the_cap_fold_into_unknown_command_and_are_counted() {
        let store = Store::new();
        let r = Registry::new(&store, "p", None, Caps { commands: 2, collections: 1, callsites: 1 });
        r.command("find").total.inc();
        r.command("insert").total.inc();
        r.command("hello").total.inc();
        r.command("find").total.inc();
        assert_eq!(store.counter("mongo.p.cmd.find.total").value(), 2);
        assert_eq!(store.counter("mongo.p.cmd.unknown_command.total").value(), 1);
        assert_eq!(store.counter("mongo.p.cmd_overflow").value(), 1);
        assert!(r.collection("a").is_some());
        assert!(r.collection("b").is_none());
        assert_eq!(store.counter("mongo.p.collection_overflow").value(), 1);
    }

    #[test]
    fn a_commands_list_limits_cmd_stats_to_it() {
        let store = Store::new();
        let list = vec!["insert".to_string()];
        let r = Registry::new(&store, "p", Some(&list), Caps { commands: 64, collections: 1, callsites: 1 });
        r.command("insert").total.inc();
        r.command("find").total.inc();
        assert_eq!(store.counter("mongo.p.cmd.insert.total").value(), 1);
        assert_eq!(store.counter("mongo.p.cmd.unknown_command.total").value(), 1);
        assert_eq!(store.counter("mongo.p.cmd_overflow").value(), 0);
    }
}
