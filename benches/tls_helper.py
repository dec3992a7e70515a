#!/usr/bin/env python3
"""Helpers for benches/tls.sh (standard library only).

  tls_helper.py handshakes --port P [--procs N] [--duration S] [--servername localhost]
      New-handshake client: N processes, each in a loop until S seconds have passed: a new TCP
      connection to 127.0.0.1:P, a new TLS 1.3 session (no resumption: Python's ssl resumes only
      when given a session; certificate not verified, as wrk and h2load do not), one
      `GET / HTTP/1.1` with `Connection: close` (TCP_NODELAY, as wrk and h2load), the whole response read to EOF (200 and body
      "hello" expected), close. Prints "count= errors= reused= duration_s= rate= p50_ms= p99_ms=".

  tls_helper.py summarize RAW.csv
      Markdown tables on stdout: medians over rounds of requests (or handshakes) per second,
      p99, proxy CPU seconds and work per proxy-CPU-second, with ratios against the best peer;
      for Envoy and Legate the TLS handshakes their own ssl stats counted (and how many were
      resumed), and the background (foreign) CPU share as a noise flag.
"""

import argparse
import csv
import multiprocessing
import socket
import ssl
import time

from bench_common import Groups
from bench_common import fmt as _f
from bench_common import num as _num
from bench_common import ratio as _ratio

PEERS = ("haproxy", "nginx", "envoy")  # "best peer": best of these
TITLES = {
    ("ka", "small"): ("HTTPS keep-alive, 5-byte body (wrk over TLS 1.3)", "req/s", "req / proxy-CPU-s"),
    ("hs", "new"): ("Full TLS 1.3 handshake per request (new TCP connection and session, Connection: close)",
                    "handshakes/s", "handshakes / proxy-CPU-s"),
    ("res", "resumed"): ("Resumed TLS 1.3 session per request (new TCP connection, wrk, Connection: close)",
                         "handshakes/s", "handshakes / proxy-CPU-s"),
}


# ---------------------------------------------------------------- new-handshake client
def _handshake_worker(port, servername, deadline, q):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    req = f"GET / HTTP/1.1\r\nHost: {servername}\r\nConnection: close\r\n\r\n".encode()
    lat, errors, reused, first_err = [], 0, 0, ""
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as wrk and h2load do
                with ctx.wrap_socket(raw, server_hostname=servername) as s:
                    reused += s.session_reused
                    s.sendall(req)
                    buf = b""
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        buf += chunk
            if not (buf.startswith(b"HTTP/1.1 200") and buf.endswith(b"hello")):
                raise OSError(f"unexpected response {buf[:40]!r}")
            lat.append(time.perf_counter() - t0)
        except (OSError, ssl.SSLError) as e:
            errors += 1
            first_err = first_err or repr(e)
    q.put((lat, errors, reused, first_err))


def cmd_handshakes(a):
    q = multiprocessing.Queue()
    t0 = time.monotonic()
    deadline = t0 + a.duration
    procs = [multiprocessing.Process(target=_handshake_worker, args=(a.port, a.servername, deadline, q))
             for _ in range(a.procs)]
    for p in procs:
        p.start()
    results = [q.get(timeout=a.duration + 60) for _ in procs]
    for p in procs:
        p.join(10)
    elapsed = time.monotonic() - t0
    lat = sorted(x for r in results for x in r[0])
    errors = sum(r[1] for r in results)
    reused = sum(r[2] for r in results)
    first_err = next((r[3] for r in results if r[3]), "")

    def pct(p):
        return f"{1000 * lat[min(len(lat) - 1, max(0, int(p / 100 * len(lat) + 0.5) - 1))]:.3f}" if lat else "NA"

    print(f"count={len(lat)} errors={errors} reused={reused} duration_s={elapsed:.3f} "
          f"rate={len(lat) / elapsed:.2f} p50_ms={pct(50)} p99_ms={pct(99)}")
    if first_err:
        print(f"first error: {first_err}")


# ---------------------------------------------------------------- summary
def cmd_summarize(a):
    g = Groups(csv.DictReader(open(a.raw)), "variant", PEERS)
    out = []
    for k in sorted(g.rows, key=lambda k: list(TITLES).index(k) if k in TITLES else 99):
        title, unit, per_unit = TITLES.get(k, ("/".join(k), "/s", "per proxy-CPU-s"))
        first = next(iter(g.rows[k].values()))[0]
        out.append(f"\n### {title} (`{first['load']}`)\n")
        rps_b, rps_bt = g.best_peer(k, "rate")
        cpu_b, cpu_bt = g.best_peer(k, "per_cpu_s")
        out.append(f"Ratios against the best peer: {unit} {rps_bt or '-'}, {per_unit} {cpu_bt or '-'}.\n")
        out.append(f"| target | {unit} | ratio | p99 ms | proxy CPU s | {per_unit} | ratio "
                   "| ssl handshakes (reused) | foreign CPU % | errors | rounds |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for t in g.order[k]:
            rate, p99, cpu, per, hs, reused, foreign = (
                g.med(k, t, c) for c in ("rate", "p99_ms", "proxy_cpu_s", "per_cpu_s", "ssl_handshakes",
                                         "ssl_reused", "foreign_pct"))
            fmax = max((_num(r["foreign_pct"]) or 0 for r in g.rows[k][t]), default=0)
            errs = sum(int(_num(r["errors"]) or 0) for r in g.rows[k][t])
            hs_s = "-" if hs is None else f"{hs:.0f} ({reused or 0:.0f})"
            out.append(f"| {t} | {_f(rate)} | {_ratio(rate, rps_b)} | {_f(p99)} | {_f(cpu)} | {_f(per)} "
                       f"| {_ratio(per, cpu_b)} | {hs_s} | {foreign or 0:.0f} ({fmax:.0f}) | {errs} | {len(g.rows[k][t])} |")
    tls = {}
    for rows in g.rows.values():
        for t, rs in rows.items():
            tls.setdefault(t, rs[0]["tls"])
    out.append("\nNegotiated with each proxy (openssl s_client): "
               + "; ".join(f"{t}: {v}" for t, v in tls.items()) + ".")
    print("\n".join(out).lstrip("\n"))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("handshakes")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--procs", type=int, default=4)
    p.add_argument("--duration", type=float, default=8)
    p.add_argument("--servername", default="localhost")
    p.set_defaults(fn=cmd_handshakes)
    p = sub.add_parser("summarize")
    p.add_argument("raw")
    p.set_defaults(fn=cmd_summarize)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
