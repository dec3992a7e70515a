"""Shared Python of the benchmark helpers (benches/*_helper.py; standard library only).

Open-file limit, the idle-connection client's loop (open N connections, report them in a
ready file, hold them until a signal or a deadline), and the summary's number formatting,
medians, ratios and grouping of raw.csv rows by scenario and target.
"""

import os
import resource
import signal
import socket
import statistics
import sys
import time


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ---------------------------------------------------------------- idle client
def hold_idle(port, n, ready_file, max_seconds, prepare=None, errors=(OSError,)):
    """Opens n TCP connections to 127.0.0.1:port one after the other (5 s timeout each) and
    calls prepare(sock) on each (an error in `errors` counts the connection as failed); writes
    "opened=<k> failed=<m>" to ready_file, then holds them until SIGTERM/SIGINT or max_seconds.
    Returns the connections, still open."""
    limit = raise_nofile()
    if limit < n + 64:
        print(f"idle: RLIMIT_NOFILE {limit} too low for {n} connections", file=sys.stderr)
    stop = {"flag": False}

    def on_signal(_sig, _frm):
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    socks, failed, first_err = [], 0, ""
    deadline = time.monotonic() + max_seconds
    for _ in range(n):
        if stop["flag"] or time.monotonic() > deadline:
            break
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port))
            if prepare is not None:
                prepare(s)
            socks.append(s)
        except errors as e:
            failed += 1
            first_err = first_err or repr(e)
            s.close()
    tmp = ready_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"opened={len(socks)} failed={failed}{(' first_error=' + first_err) if first_err else ''}\n")
    os.rename(tmp, ready_file)
    while not stop["flag"] and time.monotonic() < deadline:
        time.sleep(0.05)
    return socks


# ---------------------------------------------------------------- summary
def fmt(x):
    if x is None:
        return "NA"
    ax = abs(x)
    if ax >= 1000:
        return f"{x:.0f}"
    if ax >= 100:
        return f"{x:.1f}"
    if ax >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "-"


class Groups:
    """raw.csv rows grouped by (scenario, second key column) then target, targets in the order
    they first appear."""

    def __init__(self, rows, key_col, peers):
        self.rows, self.order, self.peers = {}, {}, peers
        for r in rows:
            k = (r["scenario"], r[key_col])
            self.rows.setdefault(k, {}).setdefault(r["target"], []).append(r)
            self.order.setdefault(k, [])
            if r["target"] not in self.order[k]:
                self.order[k].append(r["target"])

    def med(self, k, t, col):
        """Median of column col over the rows of target t in group k."""
        return med([num(r[col]) for r in self.rows.get(k, {}).get(t, [])])

    def paired(self, k, t, col, lower_is_better=False):
        """Median over rounds of t's col divided by the best peer's col in the same round: the
        machine's drift between rounds cancels within a round."""
        rounds = {}
        for tt, rows in self.rows.get(k, {}).items():
            for r in rows:
                rounds.setdefault(r["round"], {})[tt] = num(r[col])
        ratios = []
        for vals in rounds.values():
            peers = [v for tt, v in vals.items() if tt in self.peers and v is not None]
            x = vals.get(t)
            if x is None or not peers:
                continue
            b = (min if lower_is_better else max)(peers)
            if b:
                ratios.append(x / b)
        return med(ratios)

    def best_peer(self, k, col, lower_is_better=False):
        """(value, target) of the best peer's median of col in group k, or (None, None)."""
        vals = [(self.med(k, t, col), t) for t in self.order.get(k, []) if t in self.peers]
        vals = [v for v in vals if v[0] is not None]
        if not vals:
            return None, None
        return (min if lower_is_better else max)(vals)
