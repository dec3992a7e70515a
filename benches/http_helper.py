#!/usr/bin/env python3
"""Helpers for benches/http.sh (standard library only).

  http_helper.py idle --port P -n N --ready-file F [--path /] [--max-seconds S]
      Idle keep-alive client: opens N TCP connections to 127.0.0.1:P one after the other,
      sends one HTTP/1.1 GET on each and reads its whole response (Content-Length or chunked),
      so each connection has served a request and sits idle in keep-alive. Writes
      "opened=<k> failed=<m>" to F, holds them until SIGTERM/SIGINT or S seconds, closes all.

  http_helper.py summarize RAW.csv
      Markdown tables on stdout: medians over rounds of req/s, p99, requests per
      proxy-CPU-second and idle memory per connection, with ratios against the best peer.
"""

import argparse
import csv
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


# ---------------------------------------------------------------- idle keep-alive client
def read_response(s):
    """Reads one HTTP/1.1 response; returns the status code. Raises on EOF or bad framing."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise OSError("connection closed before the response head")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        need = int(headers["content-length"])
        while len(rest) < need:
            chunk = s.recv(65536)
            if not chunk:
                raise OSError("connection closed in the body")
            rest += chunk
    elif "chunked" in headers.get("transfer-encoding", ""):
        while not rest.endswith(b"0\r\n\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                raise OSError("connection closed in the chunked body")
            rest += chunk
    if headers.get("connection", "").lower() == "close":
        raise OSError("the proxy closed the keep-alive connection (connection: close)")
    return status


def cmd_idle(a):
    limit = raise_nofile()
    if limit < a.n + 64:
        print(f"idle: RLIMIT_NOFILE {limit} too low for {a.n} connections", file=sys.stderr)
    stop = {"flag": False}

    def on_signal(_sig, _frm):
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    req = f"GET {a.path} HTTP/1.1\r\nHost: 127.0.0.1:{a.port}\r\n\r\n".encode()
    socks, failed, first_err = [], 0, ""
    deadline = time.monotonic() + a.max_seconds
    for _ in range(a.n):
        if stop["flag"] or time.monotonic() > deadline:
            break
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", a.port))
            s.sendall(req)
            st = read_response(s)
            if st != 200:
                raise OSError(f"status {st}")
            socks.append(s)
        except (OSError, ValueError, IndexError) as e:
            failed += 1
            first_err = first_err or repr(e)
            s.close()
    tmp = a.ready_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"opened={len(socks)} failed={failed}{(' first_error=' + first_err) if first_err else ''}\n")
    os.rename(tmp, a.ready_file)
    while not stop["flag"] and time.monotonic() < deadline:
        time.sleep(0.05)
    # still open? (a proxy that closed idle connections would make the figure meaningless)
    closed = 0
    for s in socks:
        try:
            s.setblocking(False)
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    if closed:
        print(f"idle: {closed} connection(s) had been closed by the proxy", file=sys.stderr)


# ---------------------------------------------------------------- summary
def _f(x):
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


def _num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def _med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def _ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "-"


PEERS = ("haproxy", "nginx", "envoy")  # "best peer": best of these; direct = no proxy
TITLES = {
    ("h1", "small"): "HTTP/1.1 keep-alive, 5-byte body (wrk)",
    ("h1", "64k"): "HTTP/1.1 keep-alive, 64 KiB body (wrk)",
    ("h2h1", "small"): "h2c downstream -> HTTP/1.1 upstream, 5-byte body (h2load)",
    ("h2h2", "small"): "h2c downstream -> h2c upstream, 5-byte body (h2load)",
}


def cmd_summarize(a):
    rows = list(csv.DictReader(open(a.raw)))
    groups, order = {}, {}
    for r in rows:
        k = (r["scenario"], r["variant"])
        groups.setdefault(k, {}).setdefault(r["target"], []).append(r)
        order.setdefault(k, [])
        if r["target"] not in order[k]:
            order[k].append(r["target"])

    def med(k, t, col):
        return _med([_num(r[col]) for r in groups[k].get(t, [])])

    def best(k, col, lower=False):
        vals = [(med(k, t, col), t) for t in order[k] if t in PEERS]
        vals = [v for v in vals if v[0] is not None]
        return (min if lower else max)(vals) if vals else (None, None)

    out = []
    for k in sorted((k for k in groups if k[0] != "mem"), key=lambda k: list(TITLES).index(k) if k in TITLES else 99):
        first = next(iter(groups[k].values()))[0]
        out.append(f"\n### {TITLES.get(k, '/'.join(k))} ({first['load']})\n")
        rps_b, rps_bt = best(k, "rps")
        cpu_b, cpu_bt = best(k, "req_per_cpu_s")
        out.append(f"Ratios against the best peer: req/s {rps_bt or '-'}, req per proxy-CPU-s {cpu_bt or '-'}.\n")
        out.append("| target | req/s | ratio | p99 ms | proxy CPU s | req / proxy-CPU-s | ratio | errors | rounds |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for t in order[k]:
            rps, p99, cpu, per = (med(k, t, c) for c in ("rps", "p99_ms", "proxy_cpu_s", "req_per_cpu_s"))
            errs = sum(int(_num(r["errors"]) or 0) for r in groups[k][t])
            out.append(f"| {t} | {_f(rps)} | {_ratio(rps, rps_b) if t != 'direct' else '-'} | {_f(p99)} | {_f(cpu)} "
                       f"| {_f(per)} | {_ratio(per, cpu_b) if t != 'direct' else '-'} | {errs} | {len(groups[k][t])} |")
    mem = [k for k in groups if k[0] == "mem"]
    for k in mem:
        first = next(iter(groups[k].values()))[0]
        out.append(f"\n### Idle keep-alive downstream connections ({first['load']})\n")
        low, lowt = best(k, "kib_per_conn", lower=True)
        out.append(f"RSS delta per connection; ratio against the leanest peer ({lowt or '-'}), lower is better.\n")
        out.append("| target | RSS before MiB | RSS with conns MiB | KiB / conn | ratio | errors | rounds |")
        out.append("|---|---:|---:|---:|---:|---:|---:|")
        for t in order[k]:
            r0, r1, per = (med(k, t, c) for c in ("rss0_mib", "rss1_mib", "kib_per_conn"))
            errs = ";".join(sorted({r["errors"] for r in groups[k][t] if r["errors"] not in ("0", "")})) or "0"
            out.append(f"| {t} | {_f(r0)} | {_f(r1)} | {_f(per)} | {_ratio(per, low)} | {errs} | {len(groups[k][t])} |")
    print("\n".join(out).lstrip("\n"))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("idle")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("-n", type=int, required=True)
    p.add_argument("--ready-file", required=True)
    p.add_argument("--path", default="/")
    p.add_argument("--max-seconds", type=float, default=300)
    p.set_defaults(fn=cmd_idle)
    p = sub.add_parser("summarize")
    p.add_argument("raw")
    p.set_defaults(fn=cmd_summarize)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
