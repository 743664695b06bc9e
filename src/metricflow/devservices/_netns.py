"""A network link a test can cut: two namespaces it makes, joined by a veth pair.

    host ns (HOST_ADDRESS)  ==veth==  gateway ns (GATEWAY_ADDRESS)
        the process under test            relay listeners -> 127.0.0.1 ports here

The process under test runs in the host namespace (`exec_prefix()`), so its only
way out is the veth pair. In the gateway namespace a relay (`_relay.py`) listens on
the given ports and forwards each connection to the same port on this namespace's
loopback: a `KafkaCluster(gateway_host=GATEWAY_ADDRESS)` advertises exactly those
addresses, so the process sees every broker behind the link. `expose(port)` relays
a loopback port of this namespace to a port on the host namespace's loopback (the
process's gRPC and HTTP ports), and that path never crosses the link.

`cut()` takes the gateway end of the link down. Both ends have static neighbour
entries, so nothing is refused or reported unreachable: packets vanish, as in a
partition, and TCP connections hang until their timeouts. `heal()` brings it back.

Every address is inside the two namespaces this object creates; nothing outside
them is configured or contacted. Needs root and iproute2 (`ip`); without them
`start()` raises, so a test that needs a partition fails instead of skipping.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from metricflow.devservices._common import (
    LOOPBACK,
    DevServiceError,
    ManagedService,
    _pid_alive,
    free_port,
    make_workdir,
    random_suffix,
    register_for_exit,
    run_checked,
    spawn,
    stop_process,
    tail,
    unregister_for_exit,
)

GATEWAY_ADDRESS = "10.213.0.1"
HOST_ADDRESS = "10.213.0.2"
_PREFIX_LEN = 30
_NS_PREFIX = "mftest-"
_NETNS_DIR = Path("/run/netns")


def ip_binary() -> str:
    """Path of iproute2's `ip` (also looked for in /usr/sbin, often not on PATH)."""
    for candidate in (shutil.which("ip"), "/usr/sbin/ip", "/sbin/ip"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise DevServiceError("iproute2 `ip` is required for network-partition tests")


def sweep_stale_namespaces() -> list[str]:
    """Delete namespaces this module made for processes that are gone; return their names.

    Names carry the owner's PID (`mftest-<pid>-<hex>-h`), so a SIGKILLed test run's
    namespaces are removed by the next run instead of piling up.
    """
    removed: list[str] = []
    if not _NETNS_DIR.is_dir():
        return removed
    for entry in _NETNS_DIR.iterdir():
        m = re.fullmatch(rf"{_NS_PREFIX}(\d+)-[0-9a-f]+-[hg]", entry.name)
        if m and not _pid_alive(int(m.group(1))):
            subprocess.run([ip_binary(), "netns", "delete", entry.name], capture_output=True,
                           check=False)
            removed.append(entry.name)
    return removed


class NetnsLink(ManagedService):
    """Two test-made network namespaces joined by a cuttable veth pair (see module doc)."""

    def __init__(self, gateway_ports: list[int], *, expose_ports: tuple[int, ...] = ()) -> None:
        """Configure (but do not create) the namespaces.

        Args:
            gateway_ports: Ports the relay listens on at GATEWAY_ADDRESS, each forwarded
                to 127.0.0.1:<same port> here (a cluster's `gateway_ports`).
            expose_ports: Ports on the host namespace's loopback to reach from here;
                `local_port(p)` tells where each one answers on 127.0.0.1.
        """
        self._ip = ""
        tag = f"{os.getpid()}-{random_suffix(3)}"
        self.host_ns = f"{_NS_PREFIX}{tag}-h"
        self.gateway_ns = f"{_NS_PREFIX}{tag}-g"
        suffix = random_suffix(4)
        self._host_if, self._gw_if = f"mfh{suffix}", f"mfg{suffix}"  # IFNAMSIZ: 15
        self.gateway_ports = list(gateway_ports)
        self.expose_ports = tuple(expose_ports)
        self._local: dict[int, int] = {}
        self._relay: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None
        self._created: list[str] = []
        self.is_cut = False

    # ------------------------------------------------------------------ helpers
    def _run(self, *args: str) -> str:
        return run_checked([self._ip, *args], what=f"ip {' '.join(args)}", timeout=30)

    def exec_prefix(self) -> list[str]:
        """argv prefix that runs a command inside the host namespace."""
        return [self._ip or ip_binary(), "netns", "exec", self.host_ns]

    def local_port(self, host_port: int) -> int:
        """Port on 127.0.0.1 here that reaches 127.0.0.1:`host_port` in the host namespace."""
        return self._local[host_port]

    def _mac(self, ns: str, ifname: str) -> str:
        info = json.loads(self._run("-n", ns, "-j", "link", "show", ifname))
        return str(info[0]["address"])

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> NetnsLink:
        """Create the namespaces, the veth pair and the relay."""
        if os.geteuid() != 0:
            raise DevServiceError("network-partition tests need root (ip netns, veth)")
        self._ip = ip_binary()
        register_for_exit(self)
        sweep_stale_namespaces()
        for ns in (self.host_ns, self.gateway_ns):
            self._run("netns", "add", ns)
            self._created.append(ns)
            self._run("-n", ns, "link", "set", "lo", "up")
        self._run("link", "add", self._host_if, "netns", self.host_ns, "type", "veth",
                  "peer", "name", self._gw_if, "netns", self.gateway_ns)
        self._run("-n", self.host_ns, "addr", "add", f"{HOST_ADDRESS}/{_PREFIX_LEN}",
                  "dev", self._host_if)
        self._run("-n", self.gateway_ns, "addr", "add", f"{GATEWAY_ADDRESS}/{_PREFIX_LEN}",
                  "dev", self._gw_if)
        self._run("-n", self.host_ns, "link", "set", self._host_if, "up")
        self._run("-n", self.gateway_ns, "link", "set", self._gw_if, "up")
        # Static neighbours: with the link down, packets are dropped silently instead
        # of failing fast on an ARP miss ("No route to host"), as in a real partition.
        self._run("-n", self.host_ns, "neigh", "replace", GATEWAY_ADDRESS, "lladdr",
                  self._mac(self.gateway_ns, self._gw_if), "nud", "permanent", "dev",
                  self._host_if)
        self._run("-n", self.gateway_ns, "neigh", "replace", HOST_ADDRESS, "lladdr",
                  self._mac(self.host_ns, self._host_if), "nud", "permanent", "dev",
                  self._gw_if)
        self._start_relay()
        return self

    def _start_relay(self) -> None:
        routes = [{"listen": [self.gateway_ns, GATEWAY_ADDRESS, p],
                   "connect": [None, LOOPBACK, p]} for p in self.gateway_ports]
        for p in self.expose_ports:
            self._local[p] = free_port()
            routes.append({"listen": [None, LOOPBACK, self._local[p]],
                           "connect": [self.host_ns, LOOPBACK, p]})
        self._workdir = make_workdir("mf-netns-")
        log_path = self._workdir / "relay.log"
        self._relay = spawn([sys.executable, "-m", "metricflow.devservices._relay",
                             json.dumps(routes)], log_path=log_path)
        deadline = time.monotonic() + 30
        while '"ready"' not in tail(log_path):
            if self._relay.poll() is not None or time.monotonic() > deadline:
                raise DevServiceError(f"netns relay did not start:\n{tail(log_path)}")
            time.sleep(0.05)

    def cut(self) -> None:
        """Partition: packets between the namespaces are dropped from now on."""
        self._run("-n", self.gateway_ns, "link", "set", self._gw_if, "down")
        self.is_cut = True

    def heal(self) -> None:
        """End the partition."""
        self._run("-n", self.gateway_ns, "link", "set", self._gw_if, "up")
        self.is_cut = False

    def close(self) -> None:
        """Stop the relay and delete both namespaces (which deletes the veth pair)."""
        if self._relay is not None:
            stop_process(self._relay, timeout=5)
            self._relay = None
        for ns in reversed(self._created):
            subprocess.run([self._ip, "netns", "delete", ns], capture_output=True, check=False)
        self._created = []
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        unregister_for_exit(self)
