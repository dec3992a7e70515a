//! The one table of admin endpoints. Each row carries Envoy's path, help text and parameter
//! help (word for word from Envoy 1.40's `/help`), whether it changes state (POST only), and
//! its handler. Only endpoints Legate implements are listed; rows stay sorted by path, the
//! order `/help` and the home page print.

use super::{
    clusters, config_dump, help, lifecycle, listeners, logging, runtime, server_info, stats, AdminRequest, AdminState,
    Reply,
};

/// How a parameter is entered on the home page and described in `/help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamKind {
    /// Free text.
    Text,
    /// Present or absent (a checkbox).
    Flag,
    /// One of a fixed list (`/help` prints `; One of (a, b)`).
    Choice(&'static [&'static str]),
}

/// One query parameter of an endpoint.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Param {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: ParamKind,
}

/// One admin endpoint.
pub(crate) struct Handler {
    pub path: &'static str,
    pub help: &'static str,
    /// POST only (Envoy's `mutates_server_state`).
    pub mutates: bool,
    pub params: &'static [Param],
    pub run: fn(&AdminState, &AdminRequest) -> Reply,
}

const fn p(name: &'static str, help: &'static str, kind: ParamKind) -> Param {
    Param { name, help, kind }
}

const RE2_FILTER_STATS: &str = "Regular expression (Google re2) for filtering stats";
const USEDONLY: &str = "Only include stats that have been written by system since restart";

/// Every endpoint, sorted by path.
pub(crate) static HANDLERS: &[Handler] = &[
    Handler {
        path: "/",
        help: "Admin home page",
        mutates: false,
        params: &[],
        run: help::home,
    },
    Handler {
        path: "/certs",
        help: "print certs on machine",
        mutates: false,
        params: &[],
        run: server_info::certs,
    },
    Handler {
        path: "/clusters",
        help: "upstream cluster status",
        mutates: false,
        params: &[p(
            "filter",
            "Regular expression (Google re2) for filtering clusters by name",
            ParamKind::Text,
        )],
        run: clusters::handle,
    },
    Handler {
        path: "/config_dump",
        help: "dump current Envoy configs",
        mutates: false,
        params: &[
            p("resource", "The resource to dump", ParamKind::Text),
            p("mask", "The mask to apply. When both resource and mask are specified, the mask is applied to every element in the desired repeated field so that only a subset of fields are returned. The mask is parsed as a Protobuf::FieldMask", ParamKind::Text),
            p("name_regex", "Dump only the currently loaded configurations whose names match the specified regex. Can be used with both resource and mask query parameters.", ParamKind::Text),
            p("include_eds", "Dump currently loaded configuration including EDS. See the response definition for more information", ParamKind::Flag),
        ],
        run: config_dump::handle,
    },
    Handler {
        path: "/drain_listeners",
        help: "drain listeners",
        mutates: true,
        params: &[
            p("graceful", "When draining listeners, enter a graceful drain period prior to closing listeners. This behaviour and duration is configurable via server options or CLI", ParamKind::Flag),
            p("skip_exit", "When draining listeners, drain the connections but never stop the listeners. The graceful parameter has no effect when this is set, since the drain period only delays stopping the listeners", ParamKind::Flag),
            p("inboundonly", "Drains all inbound listeners. traffic_direction field in envoy_v3_api_msg_config.listener.v3.Listener is used to determine whether a listener is inbound or outbound.", ParamKind::Flag),
        ],
        run: lifecycle::drain_listeners,
    },
    Handler {
        path: "/healthcheck/fail",
        help: "cause the server to fail health checks",
        mutates: true,
        params: &[],
        run: lifecycle::healthcheck_fail,
    },
    Handler {
        path: "/healthcheck/ok",
        help: "cause the server to pass health checks",
        mutates: true,
        params: &[],
        run: lifecycle::healthcheck_ok,
    },
    Handler {
        path: "/help",
        help: "print out list of admin commands",
        mutates: false,
        params: &[],
        run: help::help,
    },
    Handler {
        path: "/hot_restart_version",
        help: "print the hot restart compatibility version",
        mutates: false,
        params: &[],
        run: server_info::hot_restart_version,
    },
    Handler {
        path: "/listeners",
        help: "print listener info",
        mutates: false,
        params: &[p(
            "format",
            "File format to use",
            ParamKind::Choice(&["text", "json"]),
        )],
        run: listeners::handle,
    },
    Handler {
        path: "/logging",
        help: "query/change logging levels",
        mutates: true,
        params: &[
            p("paths", "Change multiple logging levels by setting to <logger_name1>:<desired_level1>,<logger_name2>:<desired_level2>. If fine grain logging is enabled, use __FILE__ or a glob experision as the logger name. For example, source/common*:warning", ParamKind::Text),
            p("level", "desired logging level, this will change all loggers's level", ParamKind::Choice(&["", "trace", "debug", "info", "warning", "error", "critical", "off"])),
        ],
        run: logging::handle,
    },
    Handler {
        path: "/memory",
        help: "print current allocation/heap usage",
        mutates: false,
        params: &[],
        run: server_info::memory,
    },
    Handler {
        path: "/quitquitquit",
        help: "exit the server",
        mutates: true,
        params: &[],
        run: lifecycle::quit,
    },
    Handler {
        path: "/ready",
        help: "print server state, return 200 if LIVE, otherwise return 503",
        mutates: false,
        params: &[],
        run: server_info::ready,
    },
    Handler {
        path: "/reopen_logs",
        help: "reopen access logs",
        mutates: true,
        params: &[],
        run: logging::reopen_logs,
    },
    Handler {
        path: "/reset_counters",
        help: "reset all counters to zero",
        mutates: true,
        params: &[],
        run: stats::reset_counters,
    },
    Handler {
        path: "/runtime",
        help: "print runtime values",
        mutates: false,
        params: &[],
        run: runtime::handle,
    },
    Handler {
        path: "/server_info",
        help: "print server version/status information",
        mutates: false,
        params: &[],
        run: server_info::server_info,
    },
    Handler {
        path: "/stats",
        help: "print server stats",
        mutates: false,
        params: &[
            p("usedonly", USEDONLY, ParamKind::Flag),
            p("filter", RE2_FILTER_STATS, ParamKind::Text),
            // Envoy offers (html, active-html, text, json); Legate has no HTML stats page, and
            // `prometheus` (which Envoy accepts without listing it) is named here.
            p(
                "format",
                "Format to use",
                ParamKind::Choice(&["text", "json", "prometheus"]),
            ),
            p(
                "type",
                "Stat types to include.",
                ParamKind::Choice(&["All", "Counters", "Histograms", "Gauges", "TextReadouts"]),
            ),
            p(
                "histogram_buckets",
                "Histogram bucket display mode",
                ParamKind::Choice(&["cumulative", "disjoint", "detailed", "summary"]),
            ),
        ],
        run: stats::stats,
    },
    Handler {
        path: "/stats/prometheus",
        help: "print server stats in prometheus format",
        mutates: false,
        params: &[
            p("usedonly", USEDONLY, ParamKind::Flag),
            p(
                "text_readouts",
                "Render text_readouts as new gaugues with value 0 (increases Prometheus data size)",
                ParamKind::Flag,
            ),
            p("filter", RE2_FILTER_STATS, ParamKind::Text),
            p(
                "histogram_buckets",
                "Histogram bucket display mode",
                ParamKind::Choice(&["cumulative", "summary"]),
            ),
        ],
        run: stats::prometheus,
    },
    Handler {
        path: "/stats/recentlookups",
        help: "Show recent stat-name lookups",
        mutates: false,
        params: &[],
        run: stats::recent_lookups,
    },
];

/// The handler for an exact path.
pub(crate) fn find(path: &str) -> Option<&'static Handler> {
    HANDLERS.iter().find(|h| h.path == path)
}
