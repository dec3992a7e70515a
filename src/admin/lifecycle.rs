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

/// `POST /drain_listeners`.
///
/// TODO: stop (or, with `graceful`, first drain) the listeners. The admin state has no handle
/// on the listener tasks yet, so this only logs that nothing was drained.
pub(crate) fn drain_listeners(_state: &AdminState, req: &AdminRequest) -> Reply {
    tracing::warn!(
        target: "admin",
        "/drain_listeners (graceful={}, skip_exit={}, inboundonly={}) is not implemented yet; listeners keep accepting",
        req.params.has("graceful"),
        req.params.has("skip_exit"),
        req.params.has("inboundonly")
    );
    Reply::ok()
}
