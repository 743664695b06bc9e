"""A real three-node Apache Kafka cluster (KRaft, combined broker+controller) on loopback.

Each node is its own JVM (`KafkaBroker` with a shared cluster id) and a voter of a
three-controller quorum, so the cluster keeps a metadata quorum and every partition
keeps a leader when any one node is down. Topics default to replication factor 3
and `min.insync.replicas=2`: an `acks=all` write is on at least two nodes.

Readiness is read from Metadata responses, never from open ports: the cluster is up
when every node answers and lists every node as a live (unfenced) broker, and a
restarted node is back when that holds again and no partition is under-replicated.
"""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from metricflow.devservices._common import (
    LOOPBACK,
    DevServiceError,
    ManagedService,
    free_port,
    make_workdir,
    register_for_exit,
    tail,
    unregister_for_exit,
)
from metricflow.devservices._kafka import KafkaBroker, _kafka_uuid, _run_coroutine

GATEWAY_LISTENER = "GATEWAY"

# What changes from the single-node defaults: everything internal is replicated like
# the data, and a write acked by all in-sync replicas is on at least two nodes.
_CLUSTER_PROPERTIES: dict[str, str] = {
    "offsets.topic.replication.factor": "3",
    "offsets.topic.num.partitions": "3",
    "transaction.state.log.replication.factor": "3",
    "transaction.state.log.min.isr": "2",
    "transaction.state.log.num.partitions": "1",
    "share.coordinator.state.topic.replication.factor": "3",
    "share.coordinator.state.topic.min.isr": "2",
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
    "unclean.leader.election.enable": "false",
    "num.partitions": "3",
    # Small thread pools: three JVMs share a 2-core machine with the roles under test.
    "num.network.threads": "2",
    "num.io.threads": "2",
    "background.threads": "2",
    "num.replica.fetchers": "1",
    "log.cleaner.threads": "1",
    # A follower that stops fetching leaves the ISR after this long (default 30 s).
    "replica.lag.time.max.ms": "10000",
}


@dataclass(frozen=True)
class PartitionState:
    """One partition as a Metadata response describes it."""

    topic: str
    partition: int
    leader: int
    """Node id of the leader; -1 while none is elected."""
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    """In-sync replicas."""


@dataclass(frozen=True)
class ClusterView:
    """The cluster as one node sees it in a Metadata response (all topics)."""

    brokers: frozenset[int]
    """Node ids of live (registered, unfenced) brokers."""
    controller: int
    partitions: Mapping[tuple[str, int], PartitionState]

    def under_replicated(self) -> list[PartitionState]:
        """Partitions whose in-sync replicas are fewer than their replicas, or leaderless."""
        return [p for p in self.partitions.values()
                if p.leader < 0 or len(p.isr) < len(p.replicas)]

    def topic(self, name: str) -> list[PartitionState]:
        """The partitions of one topic, by partition number."""
        return sorted((p for (t, _), p in self.partitions.items() if t == name),
                      key=lambda p: p.partition)


def describe_node(address: str, timeout_ms: int = 3000) -> ClusterView | None:
    """Send one Metadata request (all topics) to the broker at `address` ("host:port").

    Returns None when it does not answer, or answers with no broker.
    """
    from aiokafka.conn import create_conn  # lazy: aiokafka is a server extra
    from aiokafka.errors import KafkaError
    from aiokafka.protocol.metadata import MetadataRequest

    host, port = address.rsplit(":", 1)

    async def probe() -> ClusterView | None:
        try:
            conn = await create_conn(host, int(port), request_timeout_ms=timeout_ms)
        except (TimeoutError, KafkaError, OSError):
            return None
        try:
            resp = await conn.send(MetadataRequest(None))  # None: every topic
        except (TimeoutError, KafkaError, OSError):
            return None
        finally:
            conn.close()
        brokers = frozenset(int(b[0]) for b in resp.brokers)
        if not brokers:
            return None
        parts: dict[tuple[str, int], PartitionState] = {}
        for error, topic, _internal, partitions, *_ in resp.topics:
            if error:
                continue
            for _perr, number, leader, replicas, isr, *_ in partitions:
                parts[(topic, number)] = PartitionState(topic, number, leader,
                                                        tuple(replicas), tuple(isr))
        return ClusterView(brokers, int(resp.controller_id), parts)

    return _run_coroutine(probe())


class KafkaCluster(ManagedService):
    """Three (or `size`) Kafka nodes on 127.0.0.1, one JVM each, as one KRaft cluster.

    `.bootstrap` lists every node. `stop_node(i, SIGKILL)` crashes a node and
    `start_node(i)` brings it back on the same ports and log dirs; `leader_of()`
    finds the node leading a partition; `wait_healthy()` waits until every node is
    live and every partition fully replicated again.

    `gateway_host`: each node also gets a listener named GATEWAY on a loopback port,
    advertised as `gateway_host:<same port>`. Nothing answers there by itself: a test
    that runs a client inside a network namespace relays `gateway_host:<port>` in a
    namespace it made to these loopback ports (`metricflow.devservices.NetnsLink`),
    so that client sees brokers behind a link the test can cut.

    Call `start()` from a long-lived thread (the JVMs die with the starting thread).
    """

    def __init__(
        self,
        *,
        size: int = 3,
        heap: str = "384m",
        gateway_host: str | None = None,
        properties: Mapping[str, str] | None = None,
        startup_timeout: float = 180.0,
    ) -> None:
        """Configure (but do not start) the cluster.

        Args:
            size: Number of nodes; every node is a controller voter. 3 tolerates one
                node down with `min.insync.replicas=2`.
            heap: JVM max heap per node.
            gateway_host: Address to advertise on the GATEWAY listener (see above);
                no GATEWAY listener when None.
            properties: Extra or overriding server.properties entries for every node.
            startup_timeout: Seconds for the whole cluster (or a restarted node) to be
                ready.
        """
        if size < 1:
            raise DevServiceError(f"a cluster needs at least one node, got {size}")
        self.size = size
        self.gateway_host = gateway_host
        self.workdir = make_workdir("mf-kafka-cluster-")
        self._heap = heap
        self._extra = dict(properties or {})
        self._timeout = startup_timeout
        self.nodes: list[KafkaBroker] = []
        self.gateway_ports: list[int] = []
        self.last_startup_seconds: float | None = None

    # ------------------------------------------------------------------ layout
    @property
    def bootstrap(self) -> str:
        """Every node's client listener, "127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3"."""
        return ",".join(n.bootstrap for n in self.nodes)

    def gateway_bootstrap(self) -> str:
        """Bootstrap list on the GATEWAY listener, "<gateway_host>:Q1,...".

        Only reachable through a relay a test sets up (see the class docstring).
        """
        if self.gateway_host is None:
            raise DevServiceError("this cluster was started without gateway_host")
        return ",".join(f"{self.gateway_host}:{p}" for p in self.gateway_ports)

    def node_id(self, index: int) -> int:
        """Kafka node.id of `nodes[index]` (index + 1)."""
        return index + 1

    def _make_nodes(self) -> None:
        cluster_id = _kafka_uuid()
        ports = [(free_port(), free_port()) for _ in range(self.size)]
        self.gateway_ports = [free_port() for _ in range(self.size)] if self.gateway_host else []
        voters = ",".join(f"{i + 1}@{LOOPBACK}:{c}" for i, (_, c) in enumerate(ports))
        self.nodes = []
        for i, (port, controller) in enumerate(ports):
            listeners = f"PLAINTEXT://{LOOPBACK}:{port},CONTROLLER://{LOOPBACK}:{controller}"
            advertised = f"PLAINTEXT://{LOOPBACK}:{port}"
            protocols = "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
            if self.gateway_host:
                gw = self.gateway_ports[i]
                listeners += f",{GATEWAY_LISTENER}://{LOOPBACK}:{gw}"
                advertised += f",{GATEWAY_LISTENER}://{self.gateway_host}:{gw}"
                protocols += f",{GATEWAY_LISTENER}:PLAINTEXT"
            props = {
                **_CLUSTER_PROPERTIES,
                "node.id": str(i + 1),
                "controller.quorum.voters": voters,
                "listeners": listeners,
                "advertised.listeners": advertised,
                "listener.security.protocol.map": protocols,
                **self._extra,
            }
            self.nodes.append(KafkaBroker(
                port=port, controller_port=controller, data_dir=self.workdir / f"node{i + 1}",
                heap=self._heap, properties=props, startup_timeout=self._timeout,
                cluster_id=cluster_id))

    # ------------------------------------------------------------------ health
    def describe(self) -> ClusterView | None:
        """The cluster as the first answering live node sees it, or None."""
        for node in self.nodes:
            if node.running:
                view = describe_node(node.bootstrap)
                if view is not None:
                    return view
        return None

    def _all_see_everyone(self, live: list[int]) -> bool:
        want = frozenset(self.node_id(i) for i in live)
        for i in live:
            view = describe_node(self.nodes[i].bootstrap)
            if view is None or view.brokers != want:
                return False
        return True

    def _wait(self, ready: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if ready():
                return
            for i, node in enumerate(self.nodes):
                proc = node._proc  # the cluster owns its nodes
                if proc is not None and proc.poll() is not None:
                    raise DevServiceError(f"Kafka node {i + 1} exited with {proc.returncode} "
                                          f"while waiting for {what}.\n{tail(node.log_path)}")
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- node {i + 1}\n{tail(n.log_path, 1500)}"
                                 for i, n in enumerate(self.nodes))
                raise DevServiceError(f"Kafka cluster: {what} not reached after "
                                      f"{timeout:.0f}s.\n{logs}")
            time.sleep(0.2)

    def wait_healthy(self, timeout: float | None = None) -> None:
        """Wait until every running node lists every running node as a live broker and
        no partition is under-replicated or leaderless."""
        live = [i for i, n in enumerate(self.nodes) if n.running]

        def healthy() -> bool:
            if not self._all_see_everyone(live):
                return False
            view = self.describe()
            return view is not None and not view.under_replicated()

        self._wait(healthy, "every node live and every partition in sync",
                   timeout or self._timeout)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> KafkaCluster:
        """Launch every node, then wait until all of them serve the same live cluster."""
        if self.nodes and all(n.running for n in self.nodes):
            return self
        started = time.monotonic()
        register_for_exit(self)
        for attempt in range(2):
            self._make_nodes()
            for node in self.nodes:
                node.start(wait=False)
            try:
                self._wait(lambda: self._all_see_everyone(list(range(self.size))),
                           f"all {self.size} nodes live", self._timeout)
                break
            except DevServiceError as e:
                in_use = "Address already in use" in str(e)
                self._close_nodes()
                if not in_use or attempt == 1:
                    raise
                # A "free" port was taken before a node bound it: re-pick every port.
        self.last_startup_seconds = time.monotonic() - started
        return self

    def stop_node(self, index: int, sig: int = signal.SIGTERM, timeout: float = 60.0) -> None:
        """Stop `nodes[index]` with `sig` (SIGTERM: controlled shutdown; SIGKILL: crash)."""
        self.nodes[index].stop(sig, timeout=timeout)

    def start_node(self, index: int, *, wait_healthy: bool = True) -> None:
        """Start `nodes[index]` again on its ports and log dirs; wait until every running
        node sees it live (and, by default, until every partition is in sync)."""
        node = self.nodes[index]
        node.start(wait=False)
        live = [i for i, n in enumerate(self.nodes) if n.running]
        self._wait(lambda: self._all_see_everyone(live), f"node {index + 1} live again",
                   self._timeout)
        if wait_healthy:
            self.wait_healthy()

    def index_of(self, node_id: int) -> int:
        """Index in `nodes` of Kafka node id `node_id`."""
        if not 1 <= node_id <= self.size:
            raise DevServiceError(f"no node {node_id} in a {self.size}-node cluster")
        return node_id - 1

    def leader_of(self, topic: str, partition: int = 0, timeout: float = 30.0) -> int:
        """Node id leading `topic`/`partition` now (waits for an elected leader)."""
        deadline = time.monotonic() + timeout
        while True:
            view = self.describe()
            state = view.partitions.get((topic, partition)) if view else None
            if state is not None and state.leader >= 0:
                return state.leader
            if time.monotonic() > deadline:
                raise DevServiceError(f"no leader for {topic}/{partition} after {timeout:.0f}s")
            time.sleep(0.2)

    def topic_config(self, topic: str) -> dict[str, str]:
        """The effective configuration of `topic` (DescribeConfigs), e.g. min.insync.replicas."""
        from aiokafka.admin import AIOKafkaAdminClient
        from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

        live = ",".join(n.bootstrap for n in self.nodes if n.running)

        async def fetch() -> dict[str, str]:
            admin = AIOKafkaAdminClient(bootstrap_servers=live, request_timeout_ms=10_000)
            await admin.start()
            try:
                responses = await admin.describe_configs(
                    [ConfigResource(ConfigResourceType.TOPIC, topic)])
            finally:
                await admin.close()
            out: dict[str, str] = {}
            for resp in responses:
                for error, message, _type, _name, entries, *_ in resp.resources:
                    if error:
                        raise DevServiceError(f"DescribeConfigs {topic}: {error} {message}")
                    out.update({str(e[0]): str(e[1]) for e in entries})
            return out

        return _run_coroutine(fetch())

    def _close_nodes(self) -> None:
        for node in self.nodes:
            node.close()

    def close(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL) and remove the cluster's dir."""
        # A controlled shutdown waits for the quorum; with two nodes gone the last
        # would wait for a controller that never answers, so stop them all at once.
        for node in self.nodes:
            proc = node._proc  # the cluster owns its nodes
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for node in self.nodes:
            node.stop(signal.SIGTERM, timeout=20)
        self._close_nodes()
        unregister_for_exit(self)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __repr__(self) -> str:
        states = ", ".join(f"{i + 1}:{'up' if n.running else 'down'}"
                           for i, n in enumerate(self.nodes))
        return f"KafkaCluster({self.bootstrap}, {states}, dir={self.workdir})"
