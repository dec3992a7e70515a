import socket, threading, time
srv = socket.socket(socket.AF_INET6); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); srv.bind(("::1", 19189)); srv.listen(5)
def run():
    c,_ = srv.accept(); d = c.recv(100); c.sendall(d); time.sleep(0.1); c.close()
threading.Thread(target=run, daemon=True).start()
s = socket.create_connection(("::1", 19104)); s.sendall(b"abc"); print(s.recv(10)); s.close(); time.sleep(0.3)
