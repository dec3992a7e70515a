"""Helper of benches/mongo.sh: a fast scripted MongoDB upstream and a lockstep OP_MSG client.

  mongo_helper.py upstream PORT            answer every OP_MSG with a canned `find` reply
  mongo_helper.py client PORT OPS CONNS    CONNS connections, OPS/CONNS find round trips each;
                                           prints the number of operations done
"""
import socket, struct, sys, threading


def bson_find(i):
    # {find: "items", filter: {_id: i}, $db: "shop"} built by hand (no pymongo in the hot loop).
    def cstr(s):
        return s.encode() + b"\0"
    def string(k, v):
        b = v.encode() + b"\0"
        return b"\x02" + cstr(k) + struct.pack("<i", len(b)) + b
    def doc(body):
        return struct.pack("<i", len(body) + 5) + body + b"\0"
    flt = doc(b"\x10" + cstr("_id") + struct.pack("<i", i))
    return doc(string("find", "items") + b"\x03" + cstr("filter") + flt + string("$db", "shop"))


def op_msg(req_id, to, body):
    return struct.pack("<iiiiI", 16 + 4 + 1 + len(body), req_id, to, 2013, 0) + b"\0" + body


REPLY_BODY = (lambda: None)
def reply_body():
    def cstr(s):
        return s.encode() + b"\0"
    def doc(body):
        return struct.pack("<i", len(body) + 5) + body + b"\0"
    item = doc(b"\x10" + cstr("_id") + struct.pack("<i", 1) + b"\x02" + cstr("name") + struct.pack("<i", 6) + b"apple\0")
    batch = doc(b"\x03" + cstr("0") + item)
    cursor = doc(b"\x12" + cstr("id") + struct.pack("<q", 0) + b"\x02" + cstr("ns") + struct.pack("<i", 11) + b"shop.items\0" + b"\x04" + cstr("firstBatch") + batch)
    return doc(b"\x03" + cstr("cursor") + cursor + b"\x01" + cstr("ok") + struct.pack("<d", 1.0))


def read_msg(s, buf):
    while len(buf) < 4 or len(buf) < struct.unpack_from("<i", buf)[0]:
        d = s.recv(65536)
        if not d:
            return None, buf
        buf += d
    n = struct.unpack_from("<i", buf)[0]
    return buf[:n], buf[n:]


def upstream(port):
    body = reply_body()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(128)

    def serve(c):
        buf, rid = b"", 0
        while True:
            m, buf = read_msg(c, buf)
            if m is None:
                return
            rid += 1
            c.sendall(op_msg(rid, struct.unpack_from("<i", m, 4)[0], body))

    while True:
        c, _ = ls.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def client(port, ops, conns):
    done = [0] * conns

    def run(k):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(10)
        buf = b""
        msgs = [op_msg(i + 1, 0, bson_find(i)) for i in range(64)]
        for i in range(ops // conns):
            s.sendall(msgs[i % 64])
            m, buf = read_msg(s, buf)
            if m is None:
                break
            done[k] += 1
        s.close()

    ts = [threading.Thread(target=run, args=(k,)) for k in range(conns)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    print(sum(done))


if __name__ == "__main__":
    if sys.argv[1] == "upstream":
        upstream(int(sys.argv[2]))
    else:
        client(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
