"""A zstd-compressing front for nx-27017 (which does not negotiate compression), for
integration/tests/mongo_compression.rs: python zstd_front.py <upstream_port>.

Listens on a free 127.0.0.1 port and prints it first. Per client connection it connects to the
upstream and relays whole wire messages: a hello reply gets `compression: ["zstd"]` added (so
the driver turns compression on), an OP_COMPRESSED request is decompressed before it goes to
the upstream, and the reply to a compressed request is zstd-compressed, as a MongoDB server
does. Prints one line per message it compressed or decompressed ("c2s <op>" / "s2c <op>").
"""
import socket, struct, sys, threading

import bson

try:  # Python 3.14+
    from compression import zstd
except ImportError:  # what pymongo itself uses before 3.14
    from backports import zstd

OP_REPLY, OP_COMPRESSED, OP_MSG = 1, 2012, 2013
ZSTD = 3
out_lock = threading.Lock()


def say(line):
    with out_lock:
        print(line, flush=True)


def read_msg(s):
    head = b""
    while len(head) < 16:
        chunk = s.recv(16 - len(head))
        if not chunk:
            return None
        head += chunk
    length = struct.unpack("<i", head[:4])[0]
    body = b""
    while len(body) < length - 16:
        chunk = s.recv(length - 16 - len(body))
        if not chunk:
            return None
        body += chunk
    return head + body


def with_compression(msg):
    """Adds compression: ["zstd"] to a hello reply (OP_REPLY or OP_MSG, one kind-0 section)."""
    length, rid, rto, op = struct.unpack("<iiii", msg[:16])
    if op == OP_REPLY:
        fixed, doc = msg[16:36], msg[36:]
    elif op == OP_MSG and msg[20] == 0:
        fixed, doc = msg[16:21], msg[21:]
    else:
        return msg
    d = bson.decode(doc)
    if "maxWireVersion" not in d:
        return msg
    d["compression"] = ["zstd"]
    body = fixed + bson.encode(d)
    return struct.pack("<iiii", 16 + len(body), rid, rto, op) + body


def serve(client, upstream_port):
    server = socket.create_connection(("127.0.0.1", upstream_port))
    compressed = set()
    lock = threading.Lock()

    def up():
        while (msg := read_msg(client)) is not None:
            length, rid, rto, op = struct.unpack("<iiii", msg[:16])
            if op == OP_COMPRESSED:
                orig_op, size, cid = struct.unpack("<iiB", msg[16:25])
                assert cid == ZSTD, f"compressor {cid}"
                data = zstd.decompress(msg[25:])
                assert len(data) == size
                with lock:
                    compressed.add(rid)
                say(f"c2s {orig_op}")
                msg = struct.pack("<iiii", 16 + len(data), rid, rto, orig_op) + data
            server.sendall(msg)
        try:
            server.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    t = threading.Thread(target=up, daemon=True)
    t.start()
    while (msg := read_msg(server)) is not None:
        msg = with_compression(msg)
        length, rid, rto, op = struct.unpack("<iiii", msg[:16])
        with lock:
            was_compressed = rto in compressed
            compressed.discard(rto)
        if was_compressed:
            data = zstd.compress(msg[16:])
            body = struct.pack("<iiB", op, length - 16, ZSTD) + data
            msg = struct.pack("<iiii", 16 + len(body), rid, rto, OP_COMPRESSED) + body
            say(f"s2c {op}")
        client.sendall(msg)
    client.close()
    server.close()


def main():
    upstream_port = int(sys.argv[1])
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("127.0.0.1", 0))
    l.listen(16)
    print(l.getsockname()[1], flush=True)
    while True:
        c, _ = l.accept()
        threading.Thread(target=serve, args=(c, upstream_port), daemon=True).start()


if __name__ == "__main__":
    main()
