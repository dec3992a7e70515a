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
import sys

from bench_common import Groups, hold_idle
from bench_common import fmt as _f
from bench_common import num as _num
from bench_common import ratio as _ratio


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
    req = f"GET {a.path} HTTP/1.1\r\nHost: 127.0.0.1:{a.port}\r\n\r\n".encode()

    def get(s):
        s.sendall(req)
        st = read_response(s)
        if st != 200:
            raise OSError(f"status {st}")

    socks = hold_idle(a.port, a.n, a.ready_file, a.max_seconds, get, (OSError, ValueError, IndexError))
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
PEERS = ("haproxy", "nginx", "envoy")  # "best peer": best of these; direct = no proxy
TITLES = {
    ("h1", "small"): "HTTP/1.1 keep-alive, 5-byte body (wrk)",
    ("h1", "64k"): "HTTP/1.1 keep-alive, 64 KiB body (wrk)",
    ("h2h1", "small"): "h2c downstream -> HTTP/1.1 upstream, 5-byte body (h2load)",
    ("h2h2", "small"): "h2c downstream -> h2c upstream, 5-byte body (h2load)",
}


def cmd_summarize(a):
    g = Groups(csv.DictReader(open(a.raw)), "variant", PEERS)
    groups, order, med = g.rows, g.order, g.med

    def best(k, col, lower=False):
        return g.best_peer(k, col, lower)

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
        for t in order[k]:
            if t in PEERS or t == "direct":
                continue
            pr, pc = g.paired(k, t, "rps"), g.paired(k, t, "req_per_cpu_s")
            out.append(f"\n{t} paired against each round's best peer (median over rounds): "
                       f"req/s {_ratio(pr, 1) if pr else '-'}, req per proxy-CPU-s {_ratio(pc, 1) if pc else '-'}.")
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
