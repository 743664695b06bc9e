"""Why `metricflow serve` has its own HTTP server: the bare HTTP layer, side by side.

Runs, each in its own subprocess on uvloop, a handler that answers every POST with the
same small JSON body, and drives it with the closed-loop client of `_http_load`:

- `uvicorn`: a minimal ASGI app (no framework), uvicorn's default HTTP parser here
  (h11 when httptools is not installed);
- `metricflow`: `metricflow.serving._serve_http` (asyncio protocols).

    python loadtests/serve_http_compare.py --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from loadtests._http_load import closed_loop, request_bytes

_UVICORN = """
import sys, uvicorn
BODY = b'{"predictions": [0]}'
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(BODY)).encode())]})
    await send({"type": "http.response.body", "body": BODY})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", log_level="warning",
            access_log=False)
"""

_METRICFLOW = """
import asyncio, sys, uvloop
from metricflow.serving._serve_http import Response, start_http
async def handler(req):
    return Response(200, b'{"predictions": [0]}')
async def main():
    await start_http(handler, "127.0.0.1", int(sys.argv[1]), max_body=1 << 20)
    await asyncio.Event().wait()
uvloop.run(main())
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _measure(code: str, conns: int, seconds: float) -> float:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", code, str(port)])
    try:
        req = request_bytes("/invocations", b'{"inputs": [[1.0]]}')
        deadline = time.monotonic() + 60
        while True:
            try:
                asyncio.run(closed_loop("127.0.0.1", port, lambda i: req, conns=1,
                                        duration_s=0.2))
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        res = asyncio.run(closed_loop("127.0.0.1", port, lambda i: req, conns=conns,
                                      duration_s=seconds))
        assert res.failed == 0, res.statuses
        return res.rps
    finally:
        proc.terminate()
        proc.wait(30)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", action="store_true")
    p.add_argument("--conns", type=int, default=32)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args(argv)
    uv, mf = [], []
    for _ in range(a.rounds):  # interleaved, the best of each kept
        uv.append(_measure(_UVICORN, a.conns, a.seconds))
        mf.append(_measure(_METRICFLOW, a.conns, a.seconds))
    out = {"uvicorn_rps": round(max(uv), 1), "metricflow_http_rps": round(max(mf), 1),
           "http_ratio": round(max(mf) / max(uv), 2), "conns": a.conns,
           "loadavg_1m": round(os.getloadavg()[0], 2)}
    print(json.dumps(out) if a.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
