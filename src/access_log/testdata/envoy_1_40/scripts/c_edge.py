exec(open("c_http.py").read().split("def curl")[0].split("# TCP echo")[0])
s = socket.create_connection(("127.0.0.1", 19102)); s.sendall(b"hi"); s.recv(10); s.close(); time.sleep(0.2)
def curl(*args):
    r = subprocess.run(["curl","-s","-o","/dev/null","-w","%{http_code}\n",*args], capture_output=True, text=True); print("curl", args[-1], r.stdout.strip())
curl("-A","curl-test/1.0","-H","x-empty;","-H","x-ctrl: a\x01b\x7fc", "http://127.0.0.1:19103/up/path?q=1&r=2")
curl("-H","content-type: application/grpc","-H","x-request-id: g1", "http://127.0.0.1:19103/nothing")
time.sleep(0.3)
