//! Admin endpoint handlers (scaffold: replaced by the full set).

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};

use super::{respond, AdminState};

const TEXT: &str = "text/plain; charset=UTF-8";

pub async fn handle(state: &AdminState, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    match (req.method(), path.as_str()) {
        (_, "/ready") => {
            let s = state.server.state_name();
            respond(if s == "LIVE" { 200 } else { 503 }, TEXT, format!("{s}\n"))
        }
        (_, "/stats") => {
            crate::server::refresh_gauges(&state.server);
            let q = crate::stats::StatsQuery::parse(req.uri().query().unwrap_or("")).unwrap_or_default();
            respond(200, TEXT, crate::stats::render_text(&state.store, &q))
        }
        (&Method::POST, "/quitquitquit") => {
            state.server.quit.cancel();
            respond(200, TEXT, "OK\n")
        }
        _ => respond(404, TEXT, "invalid path\n"),
    }
}
