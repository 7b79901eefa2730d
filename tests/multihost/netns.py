"""Hosts as Linux network namespaces on one private /24: a bridge in the root namespace is the network.

The root namespace holds the bridge with the ``.1`` address, where the shared services (PostgreSQL, Redis, the
load balancer) listen; each host is a namespace with its own loopback and one veth pair whose other end is a
port of the bridge, so every host has the whole port space to itself (both listen on the same port, as two
machines would). Every name carries a random run token, so runs in parallel never meet, and :meth:`Network.
destroy` removes what the run made — the processes still in a host first — even when a test failed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os
import random
import secrets
import shutil
import signal
import subprocess

NETWORK_PREFIX = "10.213"  # one /24 of 10.213.0.0/16 per run, chosen among those no route uses


def unavailable_reason() -> str | None:
    """Why this machine cannot build namespaced hosts (None when it can): root, ``ip``, and a trial namespace."""
    if os.geteuid() != 0:
        return "multi-host tests create network namespaces and need root"
    if shutil.which("ip") is None:
        return "multi-host tests need the `ip` command (Debian package iproute2)"
    probe = f"voyagent-probe-{secrets.token_hex(4)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace here: {made.stderr.strip() or made.returncode}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def _free_subnet() -> ipaddress.IPv4Network:
    routes = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True).stdout
    candidates = list(range(256))
    random.shuffle(candidates)
    for third in candidates:
        if f"{NETWORK_PREFIX}.{third}." not in routes:
            return ipaddress.IPv4Network(f"{NETWORK_PREFIX}.{third}.0/24")
    raise RuntimeError(f"every /24 of {NETWORK_PREFIX}.0.0/16 is routed already")


@dataclasses.dataclass
class Host:
    """One namespace: its name, its address on the network, and how to run a command inside it."""

    name: str
    address: str

    def command(self, *args: str) -> list[str]:
        """``args`` run inside this host (``ip netns exec`` execs them: the pid is the command's own)."""
        return ["ip", "netns", "exec", self.name, *args]

    def pids(self) -> list[int]:
        listed = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True).stdout
        return [int(pid) for pid in listed.split()]


class Network:
    """The bridge and the hosts of one test run; :meth:`destroy` is safe to call after any partial build."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(3)
        self.subnet = _free_subnet()
        self.gateway = str(self.subnet.network_address + 1)  # where the shared services listen
        self.bridge = f"vy{self.token}br"
        self.hosts: list[Host] = []
        self._bridge_made = False

    def create(self) -> "Network":
        _ip("link", "add", self.bridge, "type", "bridge")
        self._bridge_made = True
        _ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        return self

    def add_host(self) -> Host:
        """A new namespace with ``lo`` up and ``eth0`` on the bridge at the next address (.11, .12, …)."""
        number = len(self.hosts) + 1
        host = Host(name=f"voyagent-{self.token}-h{number}", address=str(self.subnet.network_address + 10 + number))
        outside, inside = f"vy{self.token}h{number}", f"vy{self.token}p{number}"
        _ip("netns", "add", host.name)
        self.hosts.append(host)
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", host.name)
        _ip("link", "set", outside, "master", self.bridge, "up")
        _ip("-n", host.name, "link", "set", inside, "name", "eth0")
        _ip("-n", host.name, "addr", "add", f"{host.address}/{self.subnet.prefixlen}", "dev", "eth0")
        _ip("-n", host.name, "link", "set", "eth0", "up")
        _ip("-n", host.name, "link", "set", "lo", "up")
        return host

    def destroy(self) -> None:
        """Kill what still runs in the hosts (started by this run), delete them (their veth pairs go too), then
        the bridge."""
        for host in self.hosts:
            for pid in host.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            subprocess.run(["ip", "netns", "delete", host.name], capture_output=True)
        self.hosts = []
        if self._bridge_made:
            subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True)
            self._bridge_made = False
