#!/usr/bin/env python3
"""gRPC client for the HTTP tests: one call of legate.test.Echo, the outcome as JSON on stdout.

  client.py --target HOST:PORT --kind unary|client_stream|server_stream|bidi
            [--deadline SECONDS] [--message M ...] [--sleep-ms N] [--fail-code C]
            [--fail-message T] [--repeat N] [--metadata KEY=VALUE ...] [--authority A]

Output: {"code": "OK", "code_value": 0, "details": "...", "responses": [{"message", "index",
"server", "metadata"}...], "initial_metadata": {...}, "trailing_metadata": {...},
"elapsed_ms": N}. Responses received before a failure are listed too. Exit code 0 whenever
the call completed (with any status); 2 for bad arguments.
"""

import argparse
import json
import time

from stubs import grpc, pb, pb_grpc


def md_dict(md):
    out = {}
    for k, v in md or ():
        out[k] = v if isinstance(v, str) else v.hex()
    return out


def reply_dict(r):
    return {"message": r.message, "index": r.index, "server": r.server, "metadata": dict(r.metadata)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--kind", required=True, choices=["unary", "client_stream", "server_stream", "bidi"])
    ap.add_argument("--deadline", type=float, default=None, help="seconds (grpc-timeout)")
    ap.add_argument("--message", action="append", default=None)
    ap.add_argument("--sleep-ms", type=int, default=0)
    ap.add_argument("--fail-code", type=int, default=0)
    ap.add_argument("--fail-message", default="")
    ap.add_argument("--repeat", type=int, default=0)
    ap.add_argument("--metadata", action="append", default=[], help="KEY=VALUE")
    ap.add_argument("--authority", default=None)
    a = ap.parse_args()
    messages = a.message or ["hello"]
    metadata = tuple(tuple(m.split("=", 1)) for m in a.metadata)
    options = [("grpc.default_authority", a.authority)] if a.authority else []

    def req(m, last):
        # sleep and failure ride on every request; a failure is asked for on the last one only
        return pb.EchoRequest(message=m, sleep_ms=a.sleep_ms, fail_code=a.fail_code if last else 0,
                              fail_message=a.fail_message, repeat=a.repeat)

    def reqs():
        for i, m in enumerate(messages):
            yield req(m, i == len(messages) - 1)

    out = {"responses": []}
    t0 = time.monotonic()
    with grpc.insecure_channel(a.target, options=options) as ch:
        stub = pb_grpc.EchoStub(ch)
        kw = {"timeout": a.deadline, "metadata": metadata}
        call = None
        try:
            if a.kind == "unary":
                resp, call = stub.Unary.with_call(req(messages[0], True), **kw)
                out["responses"].append(reply_dict(resp))
            elif a.kind == "client_stream":
                resp, call = stub.ClientStream.with_call(reqs(), **kw)
                out["responses"].append(reply_dict(resp))
            else:
                call = stub.ServerStream(req(messages[0], True), **kw) if a.kind == "server_stream" \
                    else stub.Bidi(reqs(), **kw)
                for r in call:
                    out["responses"].append(reply_dict(r))
        except grpc.RpcError as e:
            call = e
        out["code"] = call.code().name
        out["code_value"] = call.code().value[0]
        out["details"] = call.details() or ""
        out["initial_metadata"] = md_dict(call.initial_metadata())
        out["trailing_metadata"] = md_dict(call.trailing_metadata())
    out["elapsed_ms"] = round((time.monotonic() - t0) * 1000)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
