"""An in-process stand-in for the ingest service (gRPC): it acknowledges every metric
batch and counts points and finished runs, so client tests exercise the real sender,
acks and buffers without a store."""

from __future__ import annotations

from concurrent import futures

import grpc

from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as pb

SERVICE = "metricflow.ingest.v1.IngestService"


def ingest_stand_in() -> tuple[grpc.Server, int, dict[str, int]]:
    seen = {"points": 0, "ended": 0}

    def write(requests, context):
        for batch in requests:
            n = len(batch.metrics.values) // 8
            seen["points"] += n
            yield pb.WriteAck(seq=batch.seq, ok=True, points=n)

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
    server.start()
    return server, port, seen
