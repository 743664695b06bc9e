"""A TCP relay whose sockets live in chosen network namespaces (a helper process).

    python -m metricflow.devservices._relay '<json routes>'

Each route is {"listen": [netns, host, port], "connect": [netns, host, port]}; a
netns of null is the relay's own namespace, a name is one under /run/netns. Every
accepted connection gets its own upstream connection, and bytes are copied both
ways until either side closes. Prints {"event": "ready"} once every listener is
bound. Linux only: a socket belongs to the namespace of the thread that created it,
so the relay enters a namespace (setns) just to create a socket there and returns.

`NetnsLink` runs it so that a process inside a test-made namespace reaches brokers
on this namespace's loopback, and tests reach that process's loopback ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import socket
import sys
from collections.abc import Iterator
from typing import Any

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def _in_netns(name: str | None) -> Iterator[None]:
    """Run the body with this thread in network namespace `name` (None: stay)."""
    if name is None:
        yield
        return
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(target, _CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {name} failed")
        try:
            yield
        finally:
            if _libc.setns(own, _CLONE_NEWNET) != 0:  # pragma: no cover - would be fatal
                os._exit(3)
    finally:
        os.close(target)
        os.close(own)


def _socket_in(name: str | None) -> socket.socket:
    with _in_netns(name):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(256 * 1024):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _serve(route: dict[str, Any]) -> asyncio.Server:
    lns, lhost, lport = route["listen"]
    cns, chost, cport = route["connect"]
    loop = asyncio.get_running_loop()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up = _socket_in(cns)
        up.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(up, (chost, cport)), 10)
        except (OSError, TimeoutError):
            up.close()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(sock=up)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    listener = _socket_in(lns)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((lhost, lport))
    listener.listen(128)
    listener.setblocking(False)
    return await asyncio.start_server(handle, sock=listener)


async def _main(routes: list[dict[str, Any]]) -> None:
    servers = [await _serve(r) for r in routes]
    print(json.dumps({"event": "ready", "routes": len(servers)}), flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(_main(json.loads(sys.argv[1])))
