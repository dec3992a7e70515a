import socket, threading, time, subprocess, http.server, socketserver, json

class Echo(threading.Thread):
    daemon = True
    def run(self):
        srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", 19190)); srv.listen(5)
        while True:
            c, _ = srv.accept()
            def h(c=c):
                while True:
                    d = c.recv(4096)
                    if not d: break
                    c.sendall(d)
                c.close()
            threading.Thread(target=h, daemon=True).start()

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = b"upstream-body\n"
        self.send_response(200)
        self.send_header("x-resp", "abcdefghij")
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    do_POST = do_GET
    def log_message(self, *a): pass

class TS(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True; allow_reuse_address = True

Echo().start()
srv = TS(("127.0.0.1", 19191), H); threading.Thread(target=srv.serve_forever, daemon=True).start()
time.sleep(0.3)

# TCP echo
s = socket.create_connection(("127.0.0.1", 19102)); s.sendall(b"hello world\n"); got=b""
while len(got) < 12: got += s.recv(100)
time.sleep(0.05); s.sendall(b"more"); got2=s.recv(100); time.sleep(0.02); s.close(); print("tcp echo", got, got2)
time.sleep(0.2)
# TCP refused
s = socket.create_connection(("127.0.0.1", 19101)); s.sendall(b"x")
try: print(s.recv(10))
except Exception as e: print("refused", e)
s.close(); time.sleep(0.2)

def curl(*args):
    r = subprocess.run(["curl","-s","-o","/dev/null","-w","%{http_code}\n",*args], capture_output=True, text=True); print("curl", args[-1], r.stdout.strip())
base = "http://127.0.0.1:19103"
curl("-A","curl-test/1.0","-H","x-forwarded-for: 10.0.0.1","-H","x-request-id: rid-1","-H","x-dup: one","-H","x-dup: two","-H",'x-esc: a"b\\c\td/é',"-H","x-empty;", base+"/up/path?q=1")
curl("-A","curl-test/1.0","-H","x-request-id: rid-2","--data","abc", base+"/direct")
curl("-A","curl-test/1.0","-H","x-request-id: rid-3", base+"/nothing")
curl("-A","curl-test/1.0","-H","x-request-id: rid-4","-H","x-envoy-fault-delay-request: 5", base+"/empty")
curl("-A","curl-test/1.0","-H","x-request-id: rid-5", base+"/refused")
curl("--http2-prior-knowledge","-A","curl-test/1.0","-H","x-request-id: rid-6", base+"/up/h2")
curl("-0","-A","curl-test/1.0","-H","x-request-id: rid-7", base+"/direct")
time.sleep(0.3)
