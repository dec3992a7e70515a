#!/usr/bin/env python3
"""gRPC echo server for the HTTP tests (service legate.test.Echo, see echo.proto).

  server.py [--port 0] [--name LABEL] [--max-seconds S]

Binds 127.0.0.1:PORT (0: a free port), prints the bound port on stdout (one line, flushed),
serves until SIGTERM/SIGINT or S seconds. Every call: the request metadata is echoed in each
reply (`metadata`) and, for keys starting with `x-` (non-binary), as initial metadata; the
trailing metadata always carries `x-trailer: yes`, on success and failure alike.
"""

import argparse
import signal
import sys
import threading
import time
from concurrent import futures

from stubs import grpc, pb, pb_grpc


def received(context):
    return {k: v for k, v in context.invocation_metadata() if not k.endswith("-bin")}


def start_call(context):
    md = received(context)
    echo = tuple((k, v) for k, v in md.items() if k.startswith("x-"))
    if echo:
        context.send_initial_metadata(echo)
    context.set_trailing_metadata((("x-trailer", "yes"),))
    return md


def fail(context, req):
    context.abort(grpc.StatusCode(next(c for c in grpc.StatusCode if c.value[0] == req.fail_code)),
                  req.fail_message or f"failed with code {req.fail_code} as requested")


def sleep_ms(ms):
    if ms:
        time.sleep(ms / 1000.0)


class Echo(pb_grpc.EchoServicer):
    def __init__(self, name):
        self.name = name

    def reply(self, message, md, index=0):
        return pb.EchoReply(message=message, metadata=md, index=index, server=self.name)

    def Unary(self, request, context):
        md = start_call(context)
        sleep_ms(request.sleep_ms)
        if request.fail_code:
            fail(context, request)
        return self.reply(request.message, md)

    def ClientStream(self, request_iterator, context):
        md = start_call(context)
        msgs, longest, failing = [], 0, None
        for req in request_iterator:
            msgs.append(req.message)
            longest = max(longest, req.sleep_ms)
            if req.fail_code and failing is None:
                failing = req
        sleep_ms(longest)
        if failing is not None:
            fail(context, failing)
        return self.reply(",".join(msgs), md, len(msgs))

    def ServerStream(self, request, context):
        md = start_call(context)
        for i in range(request.repeat or (0 if request.fail_code else 1)):
            sleep_ms(request.sleep_ms)
            yield self.reply(f"{request.message}#{i}", md, i)
        if request.fail_code:
            fail(context, request)

    def Bidi(self, request_iterator, context):
        md = start_call(context)
        for i, req in enumerate(request_iterator):
            sleep_ms(req.sleep_ms)
            if req.fail_code:
                fail(context, req)
            yield self.reply(req.message, md, i)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--name", default="grpc")
    ap.add_argument("--max-seconds", type=float, default=600)
    a = ap.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    pb_grpc.add_EchoServicer_to_server(Echo(a.name), server)
    port = server.add_insecure_port(f"127.0.0.1:{a.port}")
    if not port:
        sys.exit(f"cannot bind 127.0.0.1:{a.port}")
    server.start()
    print(port, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait(a.max_seconds)
    server.stop(grace=0.5).wait()


if __name__ == "__main__":
    main()
