"""An in-process stand-in for the ingest service (gRPC): it acknowledges every metric
batch and counts points and finished runs, so client tests exercise the real sender,
acks and buffers without a store."""

from __future__ import annotations

import threading
from concurrent import futures

import grpc

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb

SERVICE = "metricflow.ingest.v1.IngestService"


def ingest_stand_in(end_stream_after: int | None = None, start: bool = True,
                    count_once: bool = False) -> tuple[grpc.Server, int, dict[str, int]]:
    """`start=False`: the port is bound, the caller starts the server.
    `end_stream_after`: the first stream ends (status OK, as a server whose stream
    handler returned) after that many batches, while the client still writes.
    `count_once` (implied by `end_stream_after`): `seen["points"]` counts each
    (client_id, seq) once, `seen["duplicates"]` the rest (otherwise every batch counts,
    and no set of ids grows: memory tests run here)."""
    count_once = count_once or end_stream_after is not None
    seen = {"points": 0, "ended": 0, "batches": 0, "duplicates": 0, "streams": 0}
    ids: set[tuple[str, int]] = set()
    lock = threading.Lock()

    def write(requests, context):
        with lock:
            seen["streams"] += 1
        for batch in requests:
            n = len(batch.metrics.values) // 8
            with lock:
                seen["batches"] += 1
                if not count_once:
                    seen["points"] += n
                elif (batch.client_id, batch.seq) in ids:
                    seen["duplicates"] += 1
                else:
                    ids.add((batch.client_id, batch.seq))
                    seen["points"] += n
                end = end_stream_after is not None and seen["streams"] == 1 \
                    and seen["batches"] >= end_stream_after
            yield pb.WriteAck(seq=batch.seq, ok=True, points=n)
            if end:
                return

    def update_run(request, context):
        seen["ended"] += request.status == pb.RunStatus.Value("FINISHED")
        return pb.UpdateRunResponse()

    handler = grpc.method_handlers_generic_handler(SERVICE, {
        "Write": grpc.stream_stream_rpc_method_handler(
            write, pb.WriteBatch.FromString, pb.WriteAck.SerializeToString),
        "UpdateRun": grpc.unary_unary_rpc_method_handler(
            update_run, pb.UpdateRunRequest.FromString,
            pb.UpdateRunResponse.SerializeToString),
    })
    server = grpc.server(futures.ThreadPoolExecutor(4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    if start:
        server.start()
    return server, port, seen
