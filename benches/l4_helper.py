#!/usr/bin/env python3
"""Helpers for benches/l4.sh (standard library only).

  l4_helper.py hold --port P [--max-seconds S]
      Holding upstream: accepts TCP connections on 127.0.0.1:P and keeps them open, reading
      and discarding whatever arrives, until the peer closes. Exits after S seconds at most.

  l4_helper.py idle --port P -n N --ready-file F [--max-seconds S]
      Idle client: opens N TCP connections to 127.0.0.1:P one after the other (blocking
      connect, 5 s timeout each), sends nothing, writes "opened=<k> failed=<m>" to F, then
      holds them until SIGTERM/SIGINT or S seconds, and closes them all.

  l4_helper.py summarize RAW.csv
      Markdown tables (median, min-max, ratios, work per proxy-CPU-second) on stdout.
"""

import argparse
import asyncio
import csv
import signal
import sys

from bench_common import Groups, hold_idle, raise_nofile
from bench_common import fmt as _f
from bench_common import med as _med
from bench_common import num as _num
from bench_common import ratio as _ratio


# ---------------------------------------------------------------- holding upstream
async def _hold_main(port, max_seconds):
    held = set()

    async def on_conn(reader, writer):
        held.add(writer)
        try:
            while await reader.read(65536):
                pass
        except (ConnectionError, OSError):
            pass
        finally:
            held.discard(writer)
            writer.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", port, backlog=4096, reuse_address=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), timeout=max_seconds)
    except asyncio.TimeoutError:
        print(f"hold: max time {max_seconds}s reached, exiting", file=sys.stderr)
    server.close()
    for w in list(held):
        w.close()


def cmd_hold(a):
    raise_nofile()
    asyncio.run(_hold_main(a.port, a.max_seconds))


# ---------------------------------------------------------------- idle client
def cmd_idle(a):
    for s in hold_idle(a.port, a.n, a.ready_file, a.max_seconds):
        s.close()


# ---------------------------------------------------------------- summary
PEERS = ("haproxy", "envoy")  # "best peer" = best of these; direct is the no-proxy reference


def cmd_summarize(a):
    # group -> target -> list of rows (target order = first appearance)
    g = Groups(csv.DictReader(open(a.raw)), "metric", PEERS)
    groups, order, med_of, best_peer = g.rows, g.order, g.med, g.best_peer
    out = []

    titles = {
        ("tcp", "throughput"): "Bulk TCP throughput, one connection (iperf3 -t {T}s)",
        ("conn", "connections"): "Short connections (wrk -t2 -c32 -d{T}s, `Connection: close`, 5-byte body)",
    }
    goals = []
    for k in [("tcp", "throughput"), ("conn", "connections")]:
        if k not in groups:
            continue
        any_row = next(iter(groups[k].values()))[0]
        unit, wunit = any_row["unit"], any_row["work_unit"]
        T = any_row.get("duration_s", "?")
        out.append(f"\n### {titles[k].format(T=T)}\n")
        bp_v, bp_t = best_peer(k, "value")
        bpc_v, bpc_t = best_peer(k, "work_per_cpu_s")
        d = med_of(k, "direct", "value")
        out.append(
            f"| target | n | {unit} (median) | min - max | ratio vs direct | ratio vs best peer"
            f" ({bp_t or '-'}) | proxy CPU s | {wunit} / proxy-CPU-s | ratio vs best peer ({bpc_t or '-'})"
            f" | foreign CPU % (max) | errors |"
        )
        out.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for t in order[k]:
            rs = groups[k][t]
            vs = [_num(r["value"]) for r in rs]
            vs = [v for v in vs if v is not None]
            m = _med(vs)
            cpu = med_of(k, t, "proxy_cpu_s")
            per = med_of(k, t, "work_per_cpu_s")
            fo = [_num(r["foreign_pct"]) for r in rs if _num(r["foreign_pct"]) is not None]
            errs = [r["errors"] for r in rs if r["errors"] not in ("0", "")] + [
                f"rc={r['rc']}" for r in rs if r["rc"] not in ("0", "")
            ]
            direct = t == "direct"
            out.append(
                f"| {t} | {len(rs)} | {_f(m)} | {_f(min(vs)) if vs else 'NA'} - {_f(max(vs)) if vs else 'NA'}"
                f" | {'-' if direct else _ratio(m, d)} | {'-' if direct else _ratio(m, bp_v)}"
                f" | {'-' if direct else _f(cpu)} | {'-' if direct else _f(per)}"
                f" | {'-' if direct else _ratio(per, bpc_v)}"
                f" | {f'{_med(fo):.0f} ({max(fo):.0f})' if fo else 'NA'} | {' '.join(errs) or '0'} |"
            )
        lm, lp = med_of(k, "legate", "value"), med_of(k, "legate", "work_per_cpu_s")
        if lm is not None and bp_v:
            goals.append(
                f"- {k[0]}: legate {_f(lm)} {unit} vs best peer {bp_t} {_f(bp_v)} ({_ratio(lm, bp_v)}x):"
                f" {'met' if lm >= bp_v else 'NOT met'} (goal: >= best peer)"
            )
        if lp is not None and bpc_v:
            goals.append(
                f"- {k[0]}: legate {_f(lp)} {wunit}/proxy-CPU-s vs best peer {bpc_t} {_f(bpc_v)}"
                f" ({_ratio(lp, bpc_v)}x): {'met' if lp >= bpc_v else 'NOT met'} (goal: >= best peer)"
            )

    km, kk = ("mem", "idle_rss_mib"), ("mem", "kib_per_conn")
    if km in groups:
        any_row = next(iter(groups[kk].values()))[0] if kk in groups else {}
        n = any_row.get("work", "?")
        out.append(f"\n### Memory: idle RSS after start, then {n} idle proxied connections (fresh process per round)\n")
        bp_v, bp_t = best_peer(km, "value", lower_is_better=True)
        bk_v, bk_t = best_peer(kk, "value", lower_is_better=True)
        out.append(
            f"| target | n | idle RSS MiB (median) | min - max | ratio vs best peer ({bp_t or '-'})"
            f" | RSS MiB with {n} conns | KiB / connection (median) | min - max"
            f" | ratio vs best peer ({bk_t or '-'}) | errors |"
        )
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        ka = ("mem", "loaded_rss_mib")
        for t in order[km]:
            rs = groups[km][t]
            vs = [v for v in (_num(r["value"]) for r in rs) if v is not None]
            ks = [v for v in (_num(r["value"]) for r in groups.get(kk, {}).get(t, [])) if v is not None]
            m, mk = _med(vs), _med(ks)
            errs = [r["errors"] for r in groups.get(kk, {}).get(t, []) if r["errors"] not in ("0", "")]
            out.append(
                f"| {t} | {len(rs)} | {_f(m)} | {_f(min(vs)) if vs else 'NA'} - {_f(max(vs)) if vs else 'NA'}"
                f" | {_ratio(m, bp_v)} | {_f(med_of(ka, t, 'value'))} | {_f(mk)}"
                f" | {_f(min(ks)) if ks else 'NA'} - {_f(max(ks)) if ks else 'NA'} | {_ratio(mk, bk_v)}"
                f" | {' '.join(errs) or '0'} |"
            )
        lm, lk = med_of(km, "legate", "value"), med_of(kk, "legate", "value")
        if lm is not None:
            goals.append(f"- mem: legate idle RSS {_f(lm)} MiB: {'met' if lm <= 15 else 'NOT met'} (goal: <= 15 MiB)")
        if lk is not None:
            goals.append(f"- mem: legate {_f(lk)} KiB/connection: {'met' if lk <= 4 else 'NOT met'} (goal: <= 4 KiB)")
    if goals:
        out.append("\n### Legate against the goals (medians of this run)\n")
        out.extend(goals)
    print("\n".join(out))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("hold")
    h.add_argument("--port", type=int, required=True)
    h.add_argument("--max-seconds", type=float, default=3600)
    i = sub.add_parser("idle")
    i.add_argument("--port", type=int, required=True)
    i.add_argument("-n", type=int, required=True)
    i.add_argument("--ready-file", required=True)
    i.add_argument("--max-seconds", type=float, default=120)
    s = sub.add_parser("summarize")
    s.add_argument("raw")
    a = p.parse_args()
    {"hold": cmd_hold, "idle": cmd_idle, "summarize": cmd_summarize}[a.cmd](a)


if __name__ == "__main__":
    main()
