"""Peer for bench/run.sh: Python `websockets` (asyncio), a minimal broadcast
chat (every text message to every client on /chat, with broadcast()) and
/echo. Prints "listening on ADDR"."""

import asyncio
import sys

from websockets.asyncio.server import broadcast, serve

CLIENTS = set()


async def handler(ws):
    path = ws.request.path
    if path.startswith("/echo"):
        async for message in ws:
            await ws.send(message)
        return
    CLIENTS.add(ws)
    try:
        async for message in ws:
            broadcast(CLIENTS, message)
    finally:
        CLIENTS.discard(ws)


async def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    # backlog: like the Poco peer (asyncio's default of 100 drops SYNs when
    # the connect scenario has 256 handshakes in flight).
    async with serve(handler, "127.0.0.1", port, compression=None, max_size=2**24, ping_interval=None,
                     backlog=1024) as server:
        addr = server.sockets[0].getsockname()
        print("listening on %s:%d" % (addr[0], addr[1]), file=sys.stderr, flush=True)
        await asyncio.get_running_loop().create_future()


asyncio.run(main())
