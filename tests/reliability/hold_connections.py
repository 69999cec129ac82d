#!/usr/bin/env python3
"""Opens N connections to an HTTP/1.1 server and holds them all open at once, then sends one
request on each and reads every response, then holds them for HOLD seconds (so the caller can
sample the server's memory at its peak) and closes them. `OPENED` and `HOLDING` lines mark the
moments to sample: all connections open and idle, then all answered and still open.

    hold_connections.py HOST PORT N VHOST [HOLD_SECONDS]

Prints one line per phase and a final `RESULT opened=... answered=... failed=...` line.
"""
import asyncio
import sys
import time


async def main(host, port, n, vhost, hold):
    connecting = asyncio.Semaphore(512)

    async def open_one():
        async with connecting:
            return await asyncio.wait_for(asyncio.open_connection(host, port), 30)

    started = time.monotonic()
    opened = await asyncio.gather(*[open_one() for _ in range(n)], return_exceptions=True)
    conns = [c for c in opened if not isinstance(c, BaseException)]
    print(f"opened {len(conns)} of {n} in {time.monotonic() - started:.1f} s", flush=True)
    print("OPENED", flush=True)
    await asyncio.sleep(2)
    request = f"GET / HTTP/1.1\r\nHost: {vhost}\r\n\r\n".encode()

    async def exchange(reader, writer):
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await asyncio.wait_for(reader.readexactly(length), 60)
        return head.startswith(b"HTTP/1.1 200")

    started = time.monotonic()
    results = await asyncio.gather(*[exchange(r, w) for r, w in conns], return_exceptions=True)
    answered = sum(1 for r in results if r is True)
    failed = len(results) - answered
    errors = sorted({type(r).__name__ for r in results if isinstance(r, BaseException)})
    print(f"answered {answered} of {len(conns)} in {time.monotonic() - started:.1f} s "
          f"(errors: {', '.join(errors) or 'none'})", flush=True)
    print("HOLDING", flush=True)
    await asyncio.sleep(hold)
    for _, writer in conns:
        writer.close()
    print(f"RESULT opened={len(conns)} answered={answered} failed={failed + n - len(conns)}",
          flush=True)


if __name__ == "__main__":
    host, port, n, vhost = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    hold = float(sys.argv[5]) if len(sys.argv) > 5 else 5.0
    asyncio.run(main(host, port, n, vhost, hold))
