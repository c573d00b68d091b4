# A keep-alive HTTP server that answers at once, except for 1 s out of every 5 s, when it answers nothing.
import asyncio, time, sys
T0 = time.monotonic()
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, world!"
async def handle(r, w):
    buf = b""
    while True:
        d = await r.read(65536)
        if not d: break
        buf += d
        while b"\r\n\r\n" in buf:
            _, buf = buf.split(b"\r\n\r\n", 1)
            ph = (time.monotonic() - T0) % 5.0
            if ph >= 4.0: await asyncio.sleep(5.0 - ph)
            w.write(RESP)
        await w.drain()
async def main():
    s = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]))
    async with s: await s.serve_forever()
asyncio.run(main())
