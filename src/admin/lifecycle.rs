//! POST endpoints that change the server's life: `/healthcheck/fail`, `/healthcheck/ok`,
//! `/quitquitquit` and `/drain_listeners`. Each answers Envoy's `OK\n`.

use super::{AdminRequest, AdminState, Reply};

/// `POST /healthcheck/fail`: `server.live` drops to 0 and `/ready` answers `DRAINING` (503).
pub(crate) fn healthcheck_fail(state: &AdminState, _req: &AdminRequest) -> Reply {
    state.server.set_healthy(false);
    Reply::ok()
}

/// `POST /healthcheck/ok`: undoes `/healthcheck/fail`.
pub(crate) fn healthcheck_ok(state: &AdminState, _req: &AdminRequest) -> Reply {
    state.server.set_healthy(true);
    Reply::ok()
}

/// `POST /quitquitquit`: starts the same shutdown as SIGTERM.
pub(crate) fn quit(state: &AdminState, _req: &AdminRequest) -> Reply {
    state.server.quit.cancel();
    Reply::ok()
}

/// `POST /drain_listeners`: listeners stop accepting (open connections go on). With
/// `graceful` and without `skip_exit`, the whole server drains and exits as on SIGTERM.
pub(crate) fn drain_listeners(state: &AdminState, req: &AdminRequest) -> Reply {
    if req.params.has("graceful") && !req.params.has("skip_exit") {
        state.server.quit.cancel();
    } else {
        state.listeners_stop.cancel();
    }
    tracing::info!(target: "admin", "/drain_listeners: listeners stopped accepting");
    Reply::ok()
}
