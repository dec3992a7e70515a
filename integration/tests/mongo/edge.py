"""mockupdb edge cases for integration/tests/mongo_proxy.rs: python edge.py <portfile>.

Starts a MockupDB server and prints its port; waits for Legate's listener port to appear in
<portfile>; then drives pymongo (and one raw legacy OP_QUERY) through Legate while the mock
answers with scripted replies. Prints one JSON line with what the client saw.
"""
import json, os, socket, struct, sys, time

import bson
import pymongo
from mockupdb import MockupDB, OpMsg, go
from pymongo.errors import OperationFailure


def wait_port(path):
    for _ in range(600):
        try:
            with open(path) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            time.sleep(0.05)
    raise SystemExit("no legate port")


def legacy_is_master(port):
    # OP_QUERY on admin.$cmd, as pre-3.6 drivers (and Envoy's decoder) know it.
    doc = bson.encode({"isMaster": 1})
    body = struct.pack("<i", 0) + b"admin.$cmd\0" + struct.pack("<ii", 0, -1) + doc
    msg = struct.pack("<iiii", 16 + len(body), 42, 0, 2004) + body
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(msg)
    head = b""
    while len(head) < 16:
        head += s.recv(16 - len(head))
    length, _, response_to, op = struct.unpack("<iiii", head)
    rest = b""
    while len(rest) < length - 16:
        rest += s.recv(length - 16 - len(rest))
    s.close()
    return {"op": op, "response_to": response_to}


def main():
    server = MockupDB(auto_ismaster={"maxWireVersion": 17})
    server.autoresponds("endSessions")
    server.run()
    print(server.port, flush=True)
    port = wait_port(sys.argv[1])
    out = {"legacy": legacy_is_master(port)}
    c = pymongo.MongoClient("127.0.0.1", port, directConnection=True, maxPoolSize=1,
                            heartbeatFrequencyMS=60000, serverSelectionTimeoutMS=10000, retryReads=False)
    # A server-side error on find.
    f = go(lambda: list(c.db.items.find({"_id": 1})))
    r = server.receives(OpMsg("find", "items"), timeout=10)
    r.replies({"ok": 0, "code": 2, "errmsg": "boom"})
    try:
        f()
    except OperationFailure as e:
        out["find_error"] = True
    # An insert whose reply carries write errors.
    f = go(lambda: c.db.items.insert_one({"_id": 1}))
    r = server.receives(OpMsg("insert", "items"), timeout=10)
    r.replies({"ok": 1, "n": 0, "writeErrors": [{"index": 0, "code": 11000, "errmsg": "dup"}]})
    try:
        f()
    except pymongo.errors.DuplicateKeyError as e:
        out["write_error"] = True
    # An acknowledged insert of two documents.
    f = go(lambda: c.db.items.insert_many([{"_id": 2}, {"_id": 3}]))
    server.receives(OpMsg("insert", "items"), timeout=10).replies({"ok": 1, "n": 2})
    out["inserted"] = len(f().inserted_ids)
    c.close()
    print(json.dumps(out), flush=True)
    server.stop()


if __name__ == "__main__":
    main()
