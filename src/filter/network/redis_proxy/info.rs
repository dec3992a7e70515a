//! `INFO [section]` over every shard, aggregated as Envoy 1.40's
//! `InfoCmdAggregateResponseHandler` does: a fixed list of fields, in a fixed order, each taken
//! from the first shard that reports it, summed, or the maximum; `redis_mode` reads `cluster`
//! and `cluster_enabled` reads `1`; the `*_human` memory fields are recomputed from the summed
//! bytes; `db0` in the keyspace section sums keys and expires. Fields outside the list, and
//! sections other than the one asked for, are left out.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Agg {
    First,
    Sum,
    Max,
    /// A fixed value.
    Constant(&'static str),
    /// `<source>` (a summed byte count) in Redis's human form.
    Human(&'static str),
    /// `db0`: keys and expires summed; avg_ttl is Envoy's running pairwise mean (the first
    /// shard's value is halved too).
    Keyspace,
}

use Agg::*;

/// Envoy's metric template: (section, field, aggregation), in output order.
static TEMPLATE: &[(&str, &str, Agg)] = &[
    ("Server", "redis_version", First),
    ("Server", "redis_git_sha1", First),
    ("Server", "redis_git_dirty", First),
    ("Server", "redis_build_id", First),
    ("Server", "redis_mode", Constant("cluster")),
    ("Server", "os", First),
    ("Server", "arch_bits", First),
    ("Server", "monotonic_clock", First),
    ("Server", "gcc_version", First),
    ("Server", "multiplexing_api", First),
    ("Server", "atomicvar_api", First),
    ("Server", "process_supervised", First),
    ("Server", "run_id", First),
    ("Server", "server_time_usec", First),
    ("Server", "uptime_in_seconds", Max),
    ("Server", "uptime_in_days", Max),
    ("Server", "hz", First),
    ("Server", "configured_hz", First),
    ("Server", "lru_clock", First),
    ("Server", "executable", First),
    ("Server", "config_file", First),
    ("Server", "io_threads_active", Max),
    ("Clients", "connected_clients", Sum),
    ("Clients", "cluster_connections", Sum),
    ("Clients", "maxclients", First),
    ("Clients", "client_recent_max_input_buffer", Max),
    ("Clients", "client_recent_max_output_buffer", Max),
    ("Clients", "blocked_clients", Sum),
    ("Clients", "tracking_clients", Sum),
    ("Clients", "pubsub_clients", Sum),
    ("Clients", "watching_clients", Sum),
    ("Clients", "clients_in_timeout_table", Sum),
    ("Clients", "total_watched_keys", Sum),
    ("Clients", "total_blocking_keys", Sum),
    ("Clients", "total_blocking_keys_on_nokey", Sum),
    ("Memory", "used_memory", Sum),
    ("Memory", "used_memory_human", Human("used_memory")),
    ("Memory", "used_memory_rss", Sum),
    ("Memory", "used_memory_rss_human", Human("used_memory_rss")),
    ("Memory", "used_memory_peak", Max),
    ("Memory", "used_memory_peak_human", Human("used_memory_peak")),
    ("Memory", "used_memory_peak_time", First),
    ("Memory", "used_memory_overhead", Sum),
    ("Memory", "used_memory_startup", Sum),
    ("Memory", "used_memory_dataset", Sum),
    ("Memory", "total_system_memory", Sum),
    ("Memory", "total_system_memory_human", Human("total_system_memory")),
    ("Memory", "used_memory_lua", Sum),
    ("Memory", "used_memory_vm_eval", Sum),
    ("Memory", "used_memory_lua_human", Human("used_memory_lua")),
    ("Memory", "used_memory_scripts_eval", Sum),
    ("Memory", "number_of_cached_scripts", Sum),
    ("Memory", "number_of_functions", Sum),
    ("Memory", "number_of_libraries", Sum),
    ("Memory", "used_memory_vm_functions", Sum),
    ("Memory", "used_memory_vm_total", Sum),
    ("Memory", "used_memory_vm_total_human", Human("used_memory_vm_total")),
    ("Memory", "used_memory_functions", Sum),
    ("Memory", "used_memory_scripts", Sum),
    ("Memory", "used_memory_scripts_human", Human("used_memory_scripts")),
    ("Memory", "maxmemory", Sum),
    ("Memory", "maxmemory_human", Human("maxmemory")),
    ("Memory", "maxmemory_policy", First),
    ("Memory", "mem_fragmentation_bytes", Sum),
    ("Memory", "allocator_frag_bytes", Sum),
    ("Memory", "allocator_rss_bytes", Sum),
    ("Memory", "rss_overhead_bytes", Sum),
    ("Memory", "allocator_allocated", Sum),
    ("Memory", "allocator_active", Sum),
    ("Memory", "allocator_resident", Sum),
    ("Memory", "allocator_muzzy", Sum),
    ("Memory", "mem_not_counted_for_evict", Sum),
    ("Memory", "mem_clients_slaves", Sum),
    ("Memory", "mem_clients_normal", Sum),
    ("Memory", "mem_cluster_links", Sum),
    ("Memory", "mem_cluster_slot_migration_output_buffer", Sum),
    ("Memory", "mem_cluster_slot_migration_input_buffer", Sum),
    ("Memory", "mem_cluster_slot_migration_input_buffer_peak", Max),
    ("Memory", "mem_aof_buffer", Sum),
    ("Memory", "mem_replication_backlog", Sum),
    ("Memory", "mem_total_replication_buffers", Sum),
    ("Memory", "mem_allocator", First),
    ("Memory", "mem_overhead_db_hashtable_rehashing", Sum),
    ("Memory", "active_defrag_running", Max),
    ("Memory", "lazyfree_pending_objects", Sum),
    ("Memory", "lazyfreed_objects", Sum),
    ("Stats", "total_connections_received", Sum),
    ("Stats", "total_commands_processed", Sum),
    ("Stats", "instantaneous_ops_per_sec", Sum),
    ("Stats", "total_net_input_bytes", Sum),
    ("Stats", "total_net_output_bytes", Sum),
    ("Stats", "total_net_repl_input_bytes", Sum),
    ("Stats", "total_net_repl_output_bytes", Sum),
    ("Stats", "instantaneous_input_kbps", Sum),
    ("Stats", "instantaneous_output_kbps", Sum),
    ("Stats", "instantaneous_input_repl_kbps", Sum),
    ("Stats", "instantaneous_output_repl_kbps", Sum),
    ("Stats", "rejected_connections", Sum),
    ("Stats", "sync_full", Sum),
    ("Stats", "sync_partial_ok", Sum),
    ("Stats", "sync_partial_err", Sum),
    ("Stats", "expired_subkeys", Sum),
    ("Stats", "expired_keys", Sum),
    ("Stats", "expired_stale_perc", Max),
    ("Stats", "expired_time_cap_reached_count", Sum),
    ("Stats", "expire_cycle_cpu_milliseconds", Sum),
    ("Stats", "evicted_keys", Sum),
    ("Stats", "evicted_clients", Sum),
    ("Stats", "evicted_scripts", Sum),
    ("Stats", "total_eviction_exceeded_time", Sum),
    ("Stats", "current_eviction_exceeded_time", Max),
    ("Stats", "keyspace_hits", Sum),
    ("Stats", "keyspace_misses", Sum),
    ("Stats", "pubsub_channels", Sum),
    ("Stats", "pubsub_patterns", Sum),
    ("Stats", "pubsubshard_channels", Sum),
    ("Stats", "latest_fork_usec", Max),
    ("Stats", "total_forks", Sum),
    ("Stats", "migrate_cached_sockets", Sum),
    ("Stats", "slave_expires_tracked_keys", Sum),
    ("Stats", "active_defrag_hits", Sum),
    ("Stats", "active_defrag_misses", Sum),
    ("Stats", "active_defrag_key_hits", Sum),
    ("Stats", "active_defrag_key_misses", Sum),
    ("Stats", "total_active_defrag_time", Sum),
    ("Stats", "current_active_defrag_time", Max),
    ("Stats", "tracking_total_keys", Sum),
    ("Stats", "tracking_total_items", Sum),
    ("Stats", "tracking_total_prefixes", Sum),
    ("Stats", "unexpected_error_replies", Sum),
    ("Stats", "total_error_replies", Sum),
    ("Stats", "dump_payload_sanitizations", Sum),
    ("Stats", "total_reads_processed", Sum),
    ("Stats", "total_writes_processed", Sum),
    ("Stats", "io_threaded_reads_processed", Sum),
    ("Stats", "io_threaded_writes_processed", Sum),
    ("Stats", "client_query_buffer_limit_disconnections", Sum),
    ("Stats", "client_output_buffer_limit_disconnections", Sum),
    ("Stats", "reply_buffer_shrinks", Sum),
    ("Stats", "reply_buffer_expands", Sum),
    ("Stats", "eventloop_cycles", Sum),
    ("Stats", "eventloop_duration_sum", Sum),
    ("Stats", "eventloop_duration_cmd_sum", Sum),
    ("Stats", "instantaneous_eventloop_cycles_per_sec", Sum),
    ("Stats", "instantaneous_eventloop_duration_usec", Max),
    ("Stats", "acl_access_denied_auth", Sum),
    ("Stats", "acl_access_denied_cmd", Sum),
    ("Stats", "acl_access_denied_key", Sum),
    ("Stats", "acl_access_denied_channel", Sum),
    ("CPU", "used_cpu_sys", Sum),
    ("CPU", "used_cpu_user", Sum),
    ("CPU", "used_cpu_sys_children", Sum),
    ("CPU", "used_cpu_user_children", Sum),
    ("CPU", "used_cpu_sys_main_thread", Sum),
    ("CPU", "used_cpu_user_main_thread", Sum),
    ("Cluster", "cluster_enabled", Constant("1")),
    ("Keyspace", "db0", Keyspace),
];

#[derive(Default, Clone)]
struct Value {
    text: String,
    int: i64,
}

/// absl's `SimpleAtoi` for int64: surrounding ASCII whitespace and a sign are allowed.
fn atoi(v: &str) -> Option<i64> {
    v.trim_matches(|c: char| c.is_ascii_whitespace()).parse().ok()
}

fn keyspace_parts(v: &str) -> (u64, u64, u64) {
    let (mut keys, mut expires, mut ttl) = (0, 0, 0);
    for kv in v.split(',') {
        let (k, val) = kv.split_once('=').unwrap_or((kv, ""));
        let n = val.trim().parse().unwrap_or(0);
        match k {
            "keys" => keys = n,
            "expires" => expires = n,
            "avg_ttl" => ttl = n,
            _ => {}
        }
    }
    (keys, expires, ttl)
}

/// Redis's `bytesToHuman`, as Envoy reimplements it.
fn human(bytes: u64) -> String {
    const K: f64 = 1024.0;
    let b = bytes as f64;
    match bytes {
        0..=1023 => format!("{bytes}B"),
        _ if bytes < 1 << 20 => format!("{:.2}K", b / K),
        _ if bytes < 1 << 30 => format!("{:.2}M", b / (K * K)),
        _ if bytes < 1 << 40 => format!("{:.2}G", b / (K * K * K)),
        _ if bytes < 1 << 50 => format!("{:.2}T", b / (K * K * K * K)),
        _ if bytes < 1 << 60 => format!("{:.2}P", b / (K * K * K * K * K)),
        _ => format!("{bytes}B"),
    }
}

/// The aggregated INFO text of the shards' INFO replies; `section` is the requested section
/// (empty for all).
pub fn aggregate(shards: &[&[u8]], section: &[u8]) -> String {
    let included = |s: &str| section.is_empty() || s.as_bytes().eq_ignore_ascii_case(section);
    let mut values: Vec<Value> = vec![Value::default(); TEMPLATE.len()];
    for (i, (_, _, agg)) in TEMPLATE.iter().enumerate() {
        if let Constant(c) = agg {
            values[i].text = (*c).to_string();
        }
    }
    for text in shards {
        let text = String::from_utf8_lossy(text);
        let mut current = String::new();
        for line in text.split('\n') {
            let line = line.trim_matches(|c: char| c.is_ascii_whitespace());
            if line.is_empty() {
                continue;
            }
            if let Some(name) = line.strip_prefix('#') {
                current = name.trim_start_matches(|c: char| c.is_ascii_whitespace()).to_string();
                continue;
            }
            if !included(&current) {
                continue;
            }
            let (key, value) = line.split_once(':').unwrap_or((line, ""));
            // Envoy looks a field up by its name alone, whatever section it came in.
            let Some(i) = TEMPLATE.iter().position(|(_, k, _)| *k == key) else { continue };
            let v = &mut values[i];
            match TEMPLATE[i].2 {
                First if v.text.is_empty() => v.text = value.to_string(),
                Sum => v.int = v.int.wrapping_add(atoi(value).unwrap_or(0)),
                Max => {
                    if let Some(n) = atoi(value) {
                        v.int = v.int.max(n);
                    }
                }
                Keyspace => {
                    let (k0, e0, t0) = if v.text.is_empty() { (0, 0, 0) } else { keyspace_parts(&v.text) };
                    let (k1, e1, t1) = keyspace_parts(value);
                    v.text = format!(
                        "keys={},expires={},avg_ttl={}",
                        k0.wrapping_add(k1),
                        e0.wrapping_add(e1),
                        t0.wrapping_add(t1) / 2
                    );
                }
                First | Constant(_) | Human(_) => {}
            }
        }
    }
    let mut out = String::with_capacity(4096);
    let mut last = "";
    for (i, (sec, key, agg)) in TEMPLATE.iter().enumerate() {
        if !included(sec) {
            continue;
        }
        let value = match agg {
            Sum | Max => values[i].int.to_string(),
            Human(source) => {
                let n = TEMPLATE.iter().position(|(_, k, _)| k == source).map_or(0, |j| values[j].int);
                if n <= 0 {
                    continue;
                }
                human(n as u64)
            }
            First | Constant(_) | Keyspace => {
                if values[i].text.is_empty() {
                    continue;
                }
                values[i].text.clone()
            }
        };
        if *sec != last {
            if !last.is_empty() {
                out.push_str("\r\n");
            }
            out.push_str("# ");
            out.push_str(sec);
            out.push_str("\r\n");
            last = sec;
        }
        out.push_str(key);
        out.push(':');
        out.push_str(&value);
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_sums_takes_first_and_rewrites_the_mode() {
        let a = b"# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\nuptime_in_seconds:5\r\n\r\n# Memory\r\nused_memory:1048576\r\n# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=10\r\n";
        let b = b"# Server\r\nredis_version:6.2.0\r\nuptime_in_seconds:9\r\n# Memory\r\nused_memory:1048576\r\n# Keyspace\r\ndb0:keys=2,expires=0,avg_ttl=0\r\n";
        let all = aggregate(&[a, b], b"");
        assert!(
            all.starts_with(
                "# Server\r\nredis_version:7.0.15\r\nredis_mode:cluster\r\nuptime_in_seconds:9\r\nuptime_in_days:0\r\n"
            ),
            "{all}"
        );
        // Summed and maximum fields are always present, as in Envoy (0 when no shard has them).
        assert!(all.contains("\r\n# Clients\r\nconnected_clients:0\r\n"), "{all}");
        assert!(all.contains("# Memory\r\nused_memory:2097152\r\nused_memory_human:2.00M\r\n"), "{all}");
        assert!(all.ends_with("\r\n# Keyspace\r\ndb0:keys=5,expires=1,avg_ttl=2\r\n"), "{all}");
        assert_eq!(aggregate(&[a, b], b"KEYSPACE"), "# Keyspace\r\ndb0:keys=5,expires=1,avg_ttl=2\r\n");
        assert_eq!(aggregate(&[a], b"nosuch"), "");
        assert_eq!(human(1023), "1023B");
        assert_eq!(human(1536), "1.50K");
    }
}
