import socket, resource, sys, time, re
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
port, pid, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def hwm():
    s = open(f"/proc/{pid}/status").read()
    return {k: re.search(k + r":\s+(\d+)", s).group(1) for k in ("VmRSS", "VmHWM")}
base = hwm()
held = []
req = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port)); s.sendall(req)
    d = b""
    while b"Hello, world!" not in d: d += s.recv(4096)
    held.append(s)
after = hwm()
t = time.perf_counter(); c = socket.create_connection(("127.0.0.1", port)); c.sendall(req); d=b""
while b"Hello, world!" not in d: d += c.recv(4096)
dt = time.perf_counter() - t
print(f"before {base} after {n} held {after}; per conn {(int(after['VmRSS'])-int(base['VmRSS']))/n:.2f} KiB; new /hello {dt*1000:.2f} ms")
