//! `/stats` (text, `?format=json`, `?format=prometheus`), `/stats/prometheus`,
//! `/stats/recentlookups` and `POST /reset_counters`. The stats module parses the query
//! (`usedonly`, `filter`, `type`, `histogram_buckets`, `format`, `text_readouts`, with Envoy's
//! 400 texts) and renders; this module refreshes the server gauges first and picks the
//! renderer. Legate has no HTML stats page: `format=html` and `format=active-html` are a 400.

use super::{AdminRequest, AdminState, Reply, TEXT};
use crate::stats::{self as st, StatsFormat, StatsQuery};

/// The answer to `format=html|active-html`.
const NO_HTML: &str = "Legate has no HTML stats page; use format=text, format=json or format=prometheus\n";

/// `GET /stats`.
pub(crate) fn stats(state: &AdminState, req: &AdminRequest) -> Reply {
    crate::server::refresh_gauges(&state.server);
    let q = match StatsQuery::parse(&req.raw_query) {
        Ok(q) => q,
        Err(msg) => return Reply::new(400, TEXT, msg),
    };
    match q.format {
        StatsFormat::Text => Reply::text(st::render_text(&state.store, &q)),
        StatsFormat::Json => Reply::json(st::render_json(&state.store, &q)),
        StatsFormat::Prometheus => Reply::text(st::render_prometheus(&state.store, &q)),
        StatsFormat::Html | StatsFormat::ActiveHtml => Reply::new(400, TEXT, NO_HTML),
    }
}

/// `GET /stats/prometheus`.
pub(crate) fn prometheus(state: &AdminState, req: &AdminRequest) -> Reply {
    crate::server::refresh_gauges(&state.server);
    match StatsQuery::parse_prometheus(&req.raw_query) {
        Ok(q) => Reply::text(st::render_prometheus(&state.store, &q)),
        Err(msg) => Reply::new(400, TEXT, msg),
    }
}

/// `GET /stats/recentlookups`: Envoy's text when lookup tracking is off. Legate resolves stat
/// names when the config is built, so there is nothing to track.
pub(crate) fn recent_lookups(state: &AdminState, _req: &AdminRequest) -> Reply {
    Reply::text(format!(
        "Lookup tracking is not enabled. Use /stats/recentlookups/enable to enable.\n\ntotal: {}\n",
        state.server.stats.stats_recent_lookups.value()
    ))
}

/// `POST /reset_counters`: every counter to 0 (`usedonly` still lists them afterwards).
pub(crate) fn reset_counters(state: &AdminState, _req: &AdminRequest) -> Reply {
    state.store.reset_counters();
    Reply::ok()
}
