"""Artifact plane benchmark: CAS uploads to the local store through the real gRPC path.

    python loadtests/artifact_bench.py --json [--size-mb 1024]

The server (grpc.aio + ArtifactService over a file:// store) runs in a child
process, as in production; the client is ArtifactClient in this process. MB = 10^6 bytes.
Prints one JSON line with first_upload_s, first_upload_mb_per_s,
second_upload_bytes_sent, second_upload_s, edit_upload_bytes_sent,
chunk_hash_mb_per_s and dedup_ratio, plus a few context fields.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MB = 1_000_000
MiB = 1 << 20


def _serve(uri: str) -> None:
    import grpc

    from metricflow.artifacts import ArtifactStore, add_to_server, open_blob_store

    async def main() -> None:
        server = grpc.aio.server()
        add_to_server(server, ArtifactStore(open_blob_store(uri)))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        print(port, flush=True)
        await server.wait_for_termination()

    asyncio.run(main())


def _overwrite(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def run(size_mb: int, workers: int) -> dict[str, object]:
    """Run every measurement and return the result fields."""
    import grpc

    from metricflow.artifacts import ArtifactClient
    from metricflow.artifacts._codec import digest_buffer

    size = size_mb * MiB
    rng = np.random.default_rng(12345)
    with tempfile.TemporaryDirectory(prefix="mf-artbench-") as tmp:
        d = Path(tmp)
        srv = subprocess.Popen([sys.executable, __file__, "--serve", f"file://{d}/store"],
                               stdout=subprocess.PIPE, text=True)
        try:
            port = int(srv.stdout.readline())  # type: ignore[union-attr]
            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            client = ArtifactClient(channel, workers=workers, progress=False)
            f = d / "checkpoint.bin"
            f.write_bytes(rng.bytes(size))
            time.sleep(0.2)  # let the file's mtime age past the digest cache's racy window

            t = time.perf_counter()
            first = client.upload_file("bench", f, "checkpoint.bin")
            first_s = time.perf_counter() - t

            t = time.perf_counter()
            second = client.upload_file("bench", f, "checkpoint.bin")
            second_s = time.perf_counter() - t

            nocache = ArtifactClient(channel, workers=workers, progress=False, digest_cache=False)
            t = time.perf_counter()
            nocache.upload_file("bench", f, "checkpoint.bin")
            second_nocache_s = time.perf_counter() - t

            _overwrite(f, size // 2, rng.bytes(MiB))
            edit = client.upload_file("bench", f, "checkpoint.bin")

            buf = f.read_bytes()
            t = time.perf_counter()
            digest_buffer(buf)
            hash_s = time.perf_counter() - t
            del buf

            # 10 checkpoints, each with 1% of its bytes rewritten in 4 random regions.
            g = d / "series.bin"
            g.write_bytes(rng.bytes(size))
            region = size // 400
            for i in range(10):
                if i:
                    for off in rng.integers(0, size - region, 4):
                        _overwrite(g, int(off), rng.bytes(region))
                client.upload_file("series", g, f"ckpt-{i}.bin")
            series = client.dedup_stats("series")
        finally:
            srv.terminate()
            srv.wait(10)
    return {
        "size_mb": round(size / MB, 1),
        "first_upload_s": round(first_s, 3),
        "first_upload_mb_per_s": round(size / MB / first_s, 1),
        "second_upload_bytes_sent": second.bytes_sent,
        "second_upload_s": round(second_s, 4),
        "edit_upload_bytes_sent": edit.bytes_sent,
        "chunk_hash_mb_per_s": round(size / MB / hash_s, 1),
        "dedup_ratio": round(series.ratio, 3),
        "second_upload_pct_bytes": round(100 * second.bytes_sent / size, 4),
        "second_upload_pct_time": round(100 * second_s / first_s, 2),
        "second_upload_nocache_s": round(second_nocache_s, 3),
        "edit_upload_pct_bytes": round(100 * edit.bytes_sent / size, 3),
        "first_upload_chunks": first.chunks_total,
        "workers": workers,
        "cpu_count": os.cpu_count(),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    ap.add_argument("--size-mb", type=int, default=1024, help="file size in MiB (default 1 GiB)")
    ap.add_argument("--workers", type=int, default=4, help="parallel upload streams")
    ap.add_argument("--serve", metavar="URI", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve:
        _serve(a.serve)
        return 0
    res = run(a.size_mb, a.workers)
    if a.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:>28}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
