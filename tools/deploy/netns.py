"""The lab network: Linux network namespaces on one hub, so MQTT crosses a real wire.

    device  10.77.0.2 ──┐
    broker  10.77.0.1 ──┼── hub: a bridge in a namespace of its own that forgets every address
    eve     10.77.0.3 ──┘   it learns (ageing time 0) and so floods each frame to every port

Each host is a namespace whose `eth0` is one end of a veth pair; the other end is a port of the
hub. A hub repeats every frame to every port, as a shared medium (an unswitched Ethernet,
Wi-Fi) does, so eve, a host with no broker account, reads the device's traffic by capturing on
its own `eth0`. Real interfaces, real TCP: nothing crosses loopback, and nothing here touches
the machine's own interfaces, addresses or routes. Needs root and `ip` (iproute2).
"""

import ctypes
import os
import shutil
import subprocess
import threading
from contextlib import contextmanager
from dataclasses import dataclass

HOSTS = {"broker": 1, "device": 2, "eve": 3}  # role -> last octet of its address
IFACE = "eth0"  # each host's interface on the hub
WIRE_MTU = 1500  # Ethernet's


class NetError(OSError):
    """The lab network cannot be made or reached here; the message says why and what to do."""


@dataclass(frozen=True)
class LabNet:
    prefix: str = "splitleak"  # namespaces <prefix>-hub, <prefix>-broker, ...
    subnet: str = "10.77.0"  # a /24 that exists only inside these namespaces

    def namespace(self, role: str) -> str:
        if role != "hub" and role not in HOSTS:
            raise ValueError(f"no host {role!r} on the lab network: expected one of "
                             f"{', '.join(HOSTS)}")
        return f"{self.prefix}-{role}"

    def address(self, role: str) -> str:
        self.namespace(role)
        return f"{self.subnet}.{HOSTS[role]}"

    def namespaces(self) -> list[str]:
        return [self.namespace(role) for role in ("hub", *HOSTS)]

    def exec_args(self, role: str, *command: str) -> list[str]:
        """argv that runs `command` as a process of the host `role`."""
        return ["ip", "netns", "exec", self.namespace(role), *command]


def check_can_make() -> None:
    """NetError, in one line, where namespaces cannot be made."""
    if shutil.which("ip") is None:
        raise NetError("the lab network needs the `ip` command: install iproute2 "
                       "(apt-get install iproute2)")
    if os.geteuid() != 0:
        raise NetError("the lab network makes network namespaces, which needs root: run it with "
                       "sudo")


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode:
        raise NetError(f"`ip {' '.join(args)}` failed: {done.stderr.strip() or done.returncode}")


def existing(net: LabNet) -> list[str]:
    """The lab network's namespaces that exist now."""
    done = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    names = {line.split()[0] for line in done.stdout.splitlines() if line.strip()}
    return [name for name in net.namespaces() if name in names]


def up(net: LabNet = LabNet()) -> None:
    """Make the hub and the hosts; NetError when they cannot be made or already exist (after
    a failure half way, what was made is removed again)."""
    check_can_make()
    if found := existing(net):
        raise NetError(f"the lab network is already up ({', '.join(found)}): use it, or take it "
                       "down first with `splitleak net down`")
    hub = net.namespace("hub")
    try:
        for name in net.namespaces():
            _ip("netns", "add", name)
            _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", hub, "link", "add", "hub", "type", "bridge", "ageing_time", "0")
        _ip("-n", hub, "link", "set", "hub", "up")
        for role in HOSTS:
            host = net.namespace(role)
            _ip("-n", host, "link", "add", IFACE, "type", "veth", "peer", "name", role,
                "netns", hub)
            _ip("-n", hub, "link", "set", role, "master", "hub", "up")
            _ip("-n", host, "addr", "add", f"{net.address(role)}/24", "dev", IFACE)
            # no segmentation offload: TCP leaves in segments of the MTU, as on a real wire,
            # rather than as one large buffer that only a physical NIC would cut up
            _ip("-n", host, "link", "set", IFACE, "gso_max_size", str(WIRE_MTU),
                "gso_max_segs", "1", "up")
    except BaseException:
        down(net)
        raise


def down(net: LabNet = LabNet()) -> list[str]:
    """Remove the lab network's namespaces (their interfaces go with them); the names removed."""
    gone = existing(net)
    for name in gone:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)
    return gone


CLONE_NEWNET = 0x40000000


def enter(net: LabNet, role: str) -> None:
    """Move this process into a host's namespace: its sockets and every process and thread it
    starts afterwards are then that host's (an in-process amqtt broker, the subscribers). Only
    before a second thread runs, which would stay behind."""
    if threading.active_count() > 1:
        raise RuntimeError("enter the lab network's namespace before starting threads")
    path = f"/run/netns/{net.namespace(role)}"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        raise NetError(f"the lab network is not up (no {path})") from None
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET):
            raise NetError(f"cannot enter {net.namespace(role)}: "
                           f"{os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)


@contextmanager
def lab_network(net: LabNet = LabNet()):
    """The lab network for the length of a `with` block, taken down on leaving it (Ctrl-C too)."""
    up(net)
    try:
        yield net
    finally:
        down(net)
