"""`metricflow serve --deployment NAME`: the serving gateway process."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import socket
import sys
from typing import Any

from metricflow import _env
from metricflow.serving._serve_app import ServeConfig, ServeState
from metricflow.serving._serve_http import start_http
from metricflow.serving._serve_server import Routes
from metricflow.serving._serve_source import HttpDeploymentSource

log = logging.getLogger(__name__)


def add_serve_parsers(sub: argparse._SubParsersAction) -> None:  # argparse API
    p = sub.add_parser("serve", help="serve a deployment's variants over HTTP (MLflow scoring "
                       "protocol), with routing, shadows, guardrails and prediction logging")
    p.add_argument("--deployment", required=True, help="the deployment to serve")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080, help="HTTP port (0: any free port)")
    p.add_argument("--control-url", default="http://127.0.0.1:5000",
                   help="HTTP address of a metricflow role with /api/v1 and the MLflow REST API "
                   "(deployments are read there, model artifacts downloaded from there)")
    p.add_argument("--tracking-uri", default=_env.TRACKING_URI.get(),
                   help="grpc://host:port where predictions are logged (env "
                   "METRICFLOW_TRACKING_URI)")
    p.add_argument("--no-log-predictions", action="store_true",
                   help="do not log requests as metrics (then /feedback answers 503)")
    p.add_argument("--no-log-outputs", action="store_true",
                   help="log latency and status but not each request's first numeric output")
    p.add_argument("--log-linger-ms", type=int, default=ServeConfig.log_linger_ms,
                   help="how long logged requests wait to be sent together (one insert on the "
                   "tracking server per send)")
    p.add_argument("--poll-s", type=float, default=ServeConfig.poll_s,
                   help="how often the deployment is re-read for alias moves and weight changes")
    p.add_argument("--max-body-bytes", type=int, default=ServeConfig.max_body_bytes)
    p.add_argument("--max-batch-rows", type=int, default=ServeConfig.max_batch_rows,
                   help="rows of concurrent requests one model call may take")
    p.add_argument("--max-csv-rows", type=int, default=ServeConfig.max_csv_rows,
                   help="lines a text/csv /invocations body may have (more: 413)")
    p.add_argument("--drain-timeout-s", type=float, default=ServeConfig.drain_timeout_s)
    p.add_argument("--instance", default="", help="this process's name in reports and run tags")
    p.add_argument("--allow-private-endpoints", action="store_true",
                   help="let endpoint variants proxy to loopback and private addresses "
                   "(link-local ones, such as cloud metadata services, are always refused)")
    p.set_defaults(func=_serve)


def config_from_args(a: argparse.Namespace) -> ServeConfig:
    if not 0.05 <= a.poll_s <= 5.0:
        raise SystemExit(f"metricflow serve: --poll-s must be within 0.05..5 seconds (changes "
                         f"are picked up within 5 s); got {a.poll_s}")
    if a.max_batch_rows < 1:
        raise SystemExit(f"metricflow serve: --max-batch-rows must be >= 1; got "
                         f"{a.max_batch_rows}")
    if not 10 <= a.log_linger_ms <= 60_000:
        raise SystemExit(f"metricflow serve: --log-linger-ms must be within 10..60000; got "
                         f"{a.log_linger_ms}")
    if a.max_csv_rows < 2:
        raise SystemExit(f"metricflow serve: --max-csv-rows must be >= 2 (a header and a "
                         f"row); got {a.max_csv_rows}")
    return ServeConfig(
        deployment=a.deployment, control_url=a.control_url.rstrip("/"), host=a.host,
        port=a.port, tracking_uri=None if a.no_log_predictions else a.tracking_uri,
        token=_env.API_TOKEN.get() or None, poll_s=a.poll_s, max_body_bytes=a.max_body_bytes,
        max_batch_rows=a.max_batch_rows, max_csv_rows=a.max_csv_rows,
        drain_timeout_s=a.drain_timeout_s,
        log_outputs=not a.no_log_outputs, log_linger_ms=a.log_linger_ms, instance=a.instance,
        allow_private_endpoints=a.allow_private_endpoints)


def _serve(a: argparse.Namespace) -> int:
    cfg = config_from_args(a)
    # mlflow's model loader reads the registry and artifacts over the MLflow REST API.
    os.environ.setdefault("MLFLOW_TRACKING_URI", cfg.control_url)
    os.environ.setdefault("MLFLOW_REGISTRY_URI", cfg.control_url)
    if cfg.token:
        os.environ.setdefault("MLFLOW_TRACKING_TOKEN", cfg.token)
    import uvloop

    # Threads here (the deployment poll, model loading, the metric sender) hold the GIL
    # for short bursts; a 0.5 ms switch interval (default 5 ms) keeps them from stalling
    # the event loop's answers by more than that.
    sys.setswitchinterval(0.0005)
    return int(uvloop.run(serve_main(cfg)))


async def serve_main(cfg: ServeConfig) -> int:
    """Run one serve process until SIGTERM or SIGINT."""
    from metricflow import __version__

    if not cfg.instance:  # one name for this process in reports, run tags and request ids
        cfg = dataclasses.replace(cfg, instance=f"{socket.gethostname()}-{os.getpid()}")
    source = HttpDeploymentSource(cfg.control_url, cfg.token)
    predictions = None
    if cfg.tracking_uri:
        from metricflow.client import Client
        from metricflow.serving._serve_log import PredictionLog

        client = Client(cfg.tracking_uri, drop_when_full=True, linger_ms=cfg.log_linger_ms,
                        token=cfg.token or None)
        predictions = PredictionLog(client, cfg.deployment, cfg.instance)
    state = ServeState(cfg, source, predictions=predictions)
    try:
        await state.sync_once()
    except Exception as e:
        if type(e).__name__ == "NotFound":
            print(f"metricflow serve: {e}", file=sys.stderr, flush=True)
            return 1
        state.last_sync_error = f"{type(e).__name__}: {e}"
        log.warning("first read of deployment %s failed (%s); retrying every %.1fs",
                    cfg.deployment, state.last_sync_error, cfg.poll_s)
    routes = Routes(state, __version__)
    server = await start_http(routes.handle, cfg.host, cfg.port, max_body=cfg.max_body_bytes)
    port = server.sockets[0].getsockname()[1]
    loaded = ", ".join(f"{s.name}={s.version or s.model and s.model.kind}"
                       for s in state.table.routed + state.table.shadows if s.model is not None)
    print(f"metricflow serve: deployment {cfg.deployment} on http://{cfg.host}:{port} "
          f"(loaded: {loaded or 'nothing yet'})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks: list[Any] = [asyncio.ensure_future(_later(state.poll_forever(), cfg.poll_s)),
                        asyncio.ensure_future(state.guard_forever())]
    await stop.wait()
    server.close()
    for t in tasks:
        t.cancel()
    await state.close()
    if predictions is not None:
        await asyncio.to_thread(predictions.close)
    source.close()
    return 0


async def _later(coro: Any, delay: float) -> None:
    await asyncio.sleep(delay)
    await coro
