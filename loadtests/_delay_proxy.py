"""A TCP relay on loopback that delays every byte by a fixed time in each direction.

    python -m loadtests._delay_proxy LISTEN_PORT TARGET_PORT ONE_WAY_MS

Stands in for the network between regions when measuring what a far synchronous
standby costs: the standby streams WAL from the primary through it, so each round
trip (WAL sent -> applied -> reply) takes 2 x ONE_WAY_MS longer. Order is kept per
direction; nothing is dropped. It runs in user space on 127.0.0.1 only, so nothing
else on the machine is slowed (`tc netem` on `lo` would slow every process).
Prints `ready` once it listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import time


def _no_delay(writer: asyncio.StreamWriter) -> None:
    # Without TCP_NODELAY, Nagle's algorithm holds small segments (WAL feedback) until
    # the previous one is acknowledged, which would add its own delay on top of ours.
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                delay_s: float) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.close()

    sender = asyncio.create_task(send())
    try:
        while True:
            data = await reader.read(1 << 16)
            queue.put_nowait((time.monotonic() + delay_s, data))
            if not data:
                break
        await sender
    except (ConnectionError, OSError):
        sender.cancel()


async def _serve(listen_port: int, target_port: int, delay_s: float) -> None:
    async def handle(c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        try:
            u_reader, u_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            c_writer.close()
            return
        _no_delay(c_writer)
        _no_delay(u_writer)
        await asyncio.gather(_pump(c_reader, u_writer, delay_s),
                             _pump(u_reader, c_writer, delay_s), return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    listen_port, target_port, one_way_ms = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    asyncio.run(_serve(listen_port, target_port, one_way_ms / 1000.0))


if __name__ == "__main__":
    main()
