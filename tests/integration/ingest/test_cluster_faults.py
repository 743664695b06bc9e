"""The distributed write path on a 3-node Kafka cluster, through faults.

clients (real metricflow Client) -> `metricflow ingest` -> Kafka (3 KRaft nodes,
replication 3, min.insync.replicas 2, acks=all, idempotent producer) -> `metricflow
writer` -> chDB

Every test logs a paced, deterministic load while a fault happens, then checks the
store's exact (FINAL) count and sum of values against everything logged: 0 lost and
0 duplicated. Each prints a `FAULT {...}` line with the figures that
docs/reliability.md quotes. Recovery is the time from the end of the fault until
every point logged before that moment is stored (count-based).

The cluster is shared by the session: a test that stops a node starts it again, and
the fixture's teardown makes the cluster whole again even when a test failed.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from _steady_load import Progress, SteadyLoad
from kafka_roles import RoleProc, child_env, wait_for

import metricflow as mf
from metricflow.devservices import KafkaCluster, NetnsLink
from metricflow.devservices._common import free_port

pytestmark = pytest.mark.timeout(240)

OUTAGE_S = 30.0  # the store outage and network partition length


class Rig:
    """One test's topic, chDB dir, role processes and clients on the shared cluster."""

    def __init__(self, tmp: Path, cluster: KafkaCluster, topic: str) -> None:
        self.tmp, self.cluster, self.topic = tmp, cluster, topic
        self.control = tmp / "control"
        self.control.mkdir()
        self.env = child_env(tmp)
        self.procs: list[RoleProc] = []
        self.clients: list[mf.Client] = []
        self.links: list[NetnsLink] = []
        self.writer_ports = (free_port(), free_port())

    def kafka_args(self, partitions: int, bootstrap: str | None = None) -> list[str]:
        return ["--kafka", bootstrap or self.cluster.bootstrap, "--topic", self.topic,
                "--partitions", str(partitions), "--replication", "3"]

    def writer(self, partitions: int = 3) -> RoleProc:
        """The writer, always on the same ports and chDB dir (a restart resumes there)."""
        grpc_port, http_port = self.writer_ports
        p = RoleProc("writer", [*self.kafka_args(partitions), "--clickhouse",
                                f"chdb://{self.tmp}/ch", "--serve-query", "--linger-ms", "50",
                                "--max-rows", "20000", "--grpc-port", str(grpc_port),
                                "--http-port", str(http_port)],
                     self.control, self.env, self.tmp / "writer.log")
        self.procs.append(p)
        return p

    def ingest(self, partitions: int = 3, *, port: int | None = None,
               link: NetnsLink | None = None) -> RoleProc:
        """An ingest node; inside `link`'s host namespace (brokers behind the link) if given."""
        extra = ["--grpc-port", str(port)] if port else []
        if link is None:
            p = RoleProc("ingest", [*self.kafka_args(partitions), *extra], self.control,
                         self.env, self.tmp / "ingest.log")
        else:
            p = RoleProc("ingest", [*self.kafka_args(partitions,
                                                     self.cluster.gateway_bootstrap()),
                                    "--grpc-port", "50051", "--http-port", "5000"],
                         self.control, self.env, self.tmp / "ingest-netns.log",
                         prefix=tuple(link.exec_prefix()))
            p.grpc_port, p.http_port = link.local_port(50051), link.local_port(5000)
        self.procs.append(p)
        return p

    def link(self) -> NetnsLink:
        link = NetnsLink(self.cluster.gateway_ports, expose_ports=(50051, 5000))
        self.links.append(link)
        return link.start()

    def client(self, uri: str) -> mf.Client:
        # A long block timeout: during a 30 s outage the client buffers and waits.
        c = mf.Client(uri, linger_ms=20, block_timeout_s=180.0)
        self.clients.append(c)
        return c

    def load(self, client: mf.Client, runs: int = 2, steps_per_s: float = 200.0,
             seed: int = 0) -> SteadyLoad:
        run_ids = [client.create_run("0", run_name=f"r{i}").run_id for i in range(runs)]
        return SteadyLoad(client, run_ids, steps_per_s=steps_per_s, seed=seed)

    def close(self) -> None:
        for c in self.clients:
            c.close(timeout=5)
        for p in reversed(self.procs):
            p.stop()
        for link in self.links:
            link.close()


@pytest.fixture
def rig(tmp_path: Path, kafka_cluster: KafkaCluster, kafka_topic_prefix: str) -> Iterator[Rig]:
    r = Rig(tmp_path, kafka_cluster, f"{kafka_topic_prefix}faults-{uuid.uuid4().hex[:8]}")
    try:
        yield r
    finally:
        r.close()
        for i, node in enumerate(kafka_cluster.nodes):
            if not node.running:
                kafka_cluster.start_node(i, wait_healthy=False)
        kafka_cluster.wait_healthy()


def acked(client: mf.Client) -> int:
    """Points the ingest side acknowledged to `client` (acked = durable in Kafka)."""
    health = client.health
    return int((health() if callable(health) else health).acked_points)


def stored(reads: mf.Client, load: SteadyLoad) -> int:
    return reads.count_points(load.run_ids)[0]


def watch_store(reads: mf.Client, load: SteadyLoad) -> Progress:
    """Poll the exact stored count (FINAL) for the rest of the test."""
    return Progress(lambda: stored(reads, load), interval=0.25).start()


def finish(reads: mf.Client, load: SteadyLoad, fault: str, fault_end: float, logged_at_end: int,
           acks: Progress, store: Progress, stall_window: tuple[float, float],
           timeout: float = 120.0) -> dict:
    """Stop the load, wait for every point, assert exact count and sum; report figures.

    recovery_s: from `fault_end` until the stored count reached what was logged by then.
    ack_stall_s: the longest time within `stall_window` in which no point was acked.
    """
    load.stop()
    count, total = load.expected()
    wait_for(lambda: bool(store.samples) and store.samples[-1][1] >= count, timeout,
             f"all {count} points stored")
    store.stop()
    acks.stop()
    got_count, got_total = reads.count_points(load.run_ids)
    recovery = store.reached(logged_at_end, fault_end)
    report = {"fault": fault, "written": count, "stored": got_count,
              "lost": max(0, count - got_count), "duplicated": max(0, got_count - count),
              "checksum_ok": got_total == pytest.approx(total, rel=1e-12),
              "recovery_s": None if recovery is None else round(recovery, 2),
              "ack_stall_s": round(acks.longest_stall(*stall_window), 2)}
    print("FAULT " + json.dumps(report))
    assert got_count == count, f"stored {got_count} points, logged {count}"
    assert got_total == pytest.approx(total, rel=1e-12), "sum of values differs"
    assert load.client.dropped_points == 0  # type: ignore[attr-defined]
    assert recovery is not None
    return report


def pause_until(t: float) -> None:
    time.sleep(max(0.0, t - time.monotonic()))


def wait_stored_some(reads: mf.Client, load: SteadyLoad, n: int = 1000) -> None:
    wait_for(lambda: stored(reads, load) >= n, 60, f"{n} points stored before the fault")


# ---------------------------------------------------------------------- the faults


def test_sigkill_of_the_partition_leader_mid_stream(rig: Rig) -> None:
    cluster = rig.cluster
    writer = rig.writer(partitions=1)
    c = rig.client(rig.ingest(partitions=1).uri)
    reads = rig.client(writer.uri)
    load = rig.load(c).start()
    acks = Progress(lambda: acked(c)).start()
    mon = watch_store(reads, load)
    wait_stored_some(reads, load)
    leader = cluster.leader_of(rig.topic, 0)
    # The topic the roles created is what the issue asks for: 3 replicas, each write
    # (acks=all) on at least 2 of them.
    view = cluster.describe()
    assert view is not None and [len(p.replicas) for p in view.topic(rig.topic)] == [3]
    assert cluster.topic_config(rig.topic)["min.insync.replicas"] == "2"
    killed_at, logged = time.monotonic(), load.logged
    cluster.stop_node(cluster.index_of(leader), signal.SIGKILL)
    wait_for(lambda: cluster.leader_of(rig.topic, 0) != leader, 60, "a new partition leader")
    new_leader = cluster.leader_of(rig.topic, 0)
    wait_for(lambda: mon.reached(logged, killed_at) is not None, 120,
             "the points logged before the kill to be stored")
    assert load.alive, "the load must still run: the kill is mid-stream"
    after_kill = acks.samples[-1][1]
    wait_for(lambda: acks.samples[-1][1] > after_kill, 30, "acks with one node down")
    cluster.start_node(cluster.index_of(leader))  # the fixture needs a whole cluster
    finish(reads, load, "sigkill_partition_leader", killed_at, logged, acks, mon,
           (killed_at, killed_at + 30))
    assert new_leader != leader


def test_rolling_restart_of_all_brokers(rig: Rig) -> None:
    cluster = rig.cluster
    writer = rig.writer()
    c = rig.client(rig.ingest().uri)
    reads = rig.client(writer.uri)
    load = rig.load(c).start()
    acks = Progress(lambda: acked(c)).start()
    mon = watch_store(reads, load)
    wait_stored_some(reads, load)
    began = time.monotonic()
    for i in range(cluster.size):
        t0 = time.monotonic()
        cluster.stop_node(i, signal.SIGTERM)  # controlled shutdown: leadership moves first
        t1 = time.monotonic()
        cluster.start_node(i)  # and waits until every partition is in sync again
        print(f"node {i + 1}: stopped in {t1 - t0:.1f}s, back in sync after "
              f"{time.monotonic() - t1:.1f}s")
        assert load.alive
    ended, logged = time.monotonic(), load.logged
    wait_for(lambda: mon.reached(logged, ended) is not None, 120, "the backlog to be stored")
    finish(reads, load, "rolling_restart", ended, logged, acks, mon, (began, ended))


def test_sigkill_of_ingest_node_and_writer_mid_stream(rig: Rig) -> None:
    port = free_port()
    writer = rig.writer()
    ingest = rig.ingest(port=port)
    c = rig.client(ingest.uri)
    reads = rig.client(writer.uri)
    load = rig.load(c).start()
    acks = Progress(lambda: acked(c)).start()
    mon = watch_store(reads, load)
    wait_stored_some(reads, load)
    began = time.monotonic()
    ingest.kill()
    writer.kill()
    time.sleep(2.0)  # clients keep logging into their buffers
    assert load.alive
    ingest = rig.ingest(port=port)  # same address: the client reconnects and resends
    writer = rig.writer()  # same group and chDB dir: resumes at the committed offsets
    restarted, logged = time.monotonic(), load.logged
    wait_for(lambda: mon.reached(logged, restarted) is not None, 120,
             "the points logged before the restart to be stored")
    finish(reads, load, "sigkill_ingest_and_writer", restarted, logged, acks, mon,
           (began, restarted + 30))
    assert writer.metric("metricflow_writer_record_errors_total") == 0


def test_store_outage_and_ingest_partition_30s_each(rig: Rig) -> None:
    """Two 30 s faults, overlapped to keep CI short: the store is down over [0, 30 s]
    and one of two ingest nodes is cut off from the brokers over [10, 40 s].

    Store down: chDB runs inside the writer process and cannot be stopped on its own,
    so the launcher makes every store call raise the OperationalError a refused
    ClickHouse connection raises (`_writer_launcher.py`). The writer must back off,
    leave the data in Kafka, and catch up afterwards.

    Partition: ingest node A runs in a network namespace this test made; its only way
    to the brokers is a veth link to a second namespace of this test, where a relay
    forwards to the brokers' loopback listeners. Cutting the link drops every packet.
    Ingest node B, outside, goes on acking while the store is down.
    """
    link = rig.link()
    writer = rig.writer()
    ingest_a, ingest_b = rig.ingest(link=link), rig.ingest()
    client_a, client_b = rig.client(ingest_a.uri), rig.client(ingest_b.uri)
    reads = rig.client(writer.uri)
    load_a, load_b = rig.load(client_a, seed=1).start(), rig.load(client_b, seed=2).start()
    acks_a, acks_b = Progress(lambda: acked(client_a)).start(), Progress(
        lambda: acked(client_b)).start()
    written = Progress(lambda: writer.stats()["points_written"]).start()
    wait_stored_some(reads, load_a)
    wait_stored_some(reads, load_b)

    (rig.control / "outage").touch()
    store_down = time.monotonic()
    wait_for(lambda: writer.stats()["in_backoff"], 20, "the writer to notice the outage")
    pause_until(store_down + OUTAGE_S / 3)
    link.cut()
    cut_at = time.monotonic()
    pause_until(store_down + OUTAGE_S)
    (rig.control / "outage").unlink()
    store_up, logged_b = time.monotonic(), load_b.logged
    store_b = watch_store(reads, load_b)
    pause_until(cut_at + OUTAGE_S)
    link.heal()
    healed, logged_a = time.monotonic(), load_a.logged
    store_a = watch_store(reads, load_a)
    assert load_a.alive and load_b.alive, "both loads must still run after the faults"
    written.stop()

    # While the store was down nothing was inserted, yet node B's clients were acked:
    # Kafka held their points.
    mid0, mid1 = store_down + 3, store_up - 1
    assert written.value_at(mid1) == written.value_at(mid0), "an insert succeeded mid-outage"
    assert acks_b.value_at(mid1) > acks_b.value_at(mid0), "acks stopped while the store was down"
    # Cut off means cut off: from a moment after the cut until the heal, node A acked
    # nothing (an ack needs the brokers).
    assert acks_a.value_at(healed - 0.5) == acks_a.value_at(cut_at + 2), "A acked mid-partition"

    finish(reads, load_b, "store_unavailable_30s", store_up, logged_b, acks_b, store_b,
           (store_down, store_up))
    finish(reads, load_a, "network_partition_ingest_30s", healed, logged_a, acks_a, store_a,
           (cut_at, healed))
