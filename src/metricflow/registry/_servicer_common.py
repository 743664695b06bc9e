"""What the registry's gRPC servicers share: the acting user and the store-call wrapper.

Store calls are synchronous SQL, so each runs in a worker thread and never
blocks the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from metricflow._grpc_errors import abort as abort_with
from metricflow._proto.metricflow.registry.v1 import registry_pb2 as pb
from metricflow.auth import caller
from metricflow.errors import InvalidArgument, MetricflowError

if TYPE_CHECKING:
    from metricflow.store.metadata import MetadataStore

log = logging.getLogger(__name__)
T = TypeVar("T")
ActorOf = Callable[[grpc.aio.ServicerContext], "str | None"]
ACTOR_KEY = "mf-actor"
_EMPTY = pb.Empty()


def actor_from_metadata(context: grpc.aio.ServicerContext) -> str | None:
    """The caller with auth off: the "mf-actor" metadata, else the server's OS user
    (`metricflow.auth._context.caller`, the rule runs use too)."""
    for key, value in context.invocation_metadata() or ():
        if key == ACTOR_KEY:
            return caller(str(value))
    return caller()


def _opt(msg: Any, field: str) -> Any:
    return getattr(msg, field) if msg.HasField(field) else None


class _Base:
    def __init__(self, store: MetadataStore, actor_of: ActorOf) -> None:
        self._store = store
        self._actor_of = actor_of

    async def _run(self, context: grpc.aio.ServicerContext, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(fn)
        except MetricflowError as e:
            await abort_with(context, e)
        except OverflowError as e:  # a missed range check: still the caller's number
            log.warning("a number out of range reached the store: %s", e)
            await abort_with(context, InvalidArgument(f"a number in the request is out of "
                                                      f"range: {e}"))
        except Exception as e:  # one bad request must not kill the server
            log.exception("registry RPC failed")
            await abort_with(context, MetricflowError(f"internal error: {type(e).__name__}"))
        raise AssertionError("unreachable")
