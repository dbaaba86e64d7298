"""The passive sniffer on a real wire: the lab network's namespaces, a broker, the edge node.

Needs root and `ip` (CI has both); elsewhere these tests are skipped with the reason.
"""

import json
import os
import signal
import subprocess
import sys

import pytest

from splitleak.cloud import rundir
from splitleak.tools.deploy import netns
from tests.conftest import splitleak

pytestmark = pytest.mark.e2e

FRAMES = 5


@pytest.fixture
def lab_net():
    """A lab network of this test's own (a prefix no other run uses), taken down afterwards."""
    try:
        netns.check_can_make()
    except netns.NetError as exc:
        pytest.skip(str(exc))
    with netns.lab_network(netns.LabNet(prefix=f"sltest{os.getpid()}")) as net:
        yield net


def _start(net, role, *argv) -> subprocess.Popen:
    return subprocess.Popen(net.exec_args(role, sys.executable, *argv), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_line(proc, starts: str, limit: int = 40) -> list[str]:
    lines = []
    for _ in range(limit):
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"exited before {starts!r}: {lines} {proc.stderr.read()[-2000:]}")
        lines.append(line.rstrip())
        if line.startswith(starts):
            return lines
    raise AssertionError(f"no {starts!r} in {lines}")


def test_the_hub_carries_tcp_from_the_device_to_the_broker_host(lab_net):
    reach = "import socket,sys; socket.create_connection((sys.argv[1], 9), timeout=2)"
    done = subprocess.run(lab_net.exec_args("device", sys.executable, "-c", reach,
                                            lab_net.address("broker")), capture_output=True,
                          text=True)
    assert "Connection refused" in done.stderr  # the broker host answered (nothing on port 9)
    assert netns.existing(lab_net) == lab_net.namespaces()


@pytest.mark.parametrize(("profile", "mqtt"), [("open", "3.1.1"), ("auth", "3.1.1"), ("auth", "5"),
                                             ("tls", "3.1.1")])
def test_a_passive_sniffer_reads_frames_and_passwords_off_plain_mqtt_not_off_tls(
        profile, mqtt, lab_net, run_dir, attack_dir, png_source, tmp_path):
    host = lab_net.address("broker")
    broker = _start(lab_net, "broker", "-m", "splitleak.tools.cli", "broker", "--engine",
                    "mosquitto", "--profile", profile, "--host", host, "--dir", tmp_path,
                    *(["--tls-name", host] if profile == "tls" else []))
    spy = None
    try:
        banner = _wait_for_line(broker, "Press Ctrl-C")
        url = next(line.split()[-1] for line in banner
                   if line.strip().startswith(("edge:", "url:")))
        ca = [line.split()[-1] for line in banner if line.strip().startswith("CA file:")]
        port = int(url.rsplit(":", 1)[1])
        # plain MQTT: the sniffer stops by itself at the last frame (a signal sent when the edge
        # exits can beat the capture's last packets on a busy machine); TLS shows it none
        until = [] if profile == "tls" else ["--count", str(FRAMES)]
        spy = _start(lab_net, "eve", "-m", "splitleak.tools.cli", "attack", "sniff", "--iface",
                     "eth0", "--port", str(port), "--write", tmp_path / "eve.pcap", "--json", *until)
        _wait_for_line(spy, "sniffing on eth0")
        edge = subprocess.run(lab_net.exec_args(
            "device", sys.executable, "-m", "splitleak.tools.cli", "edge", "--model",
            rundir.mobile(run_dir), "--broker", url, "--source", png_source, "--count",
            str(FRAMES), "--wait", "0", "--mqtt", mqtt, *(["--ca", ca[0]] if ca else [])),
            capture_output=True, text=True, timeout=120)
        assert edge.returncode == 0, edge.stderr[-2000:]
        if not until:
            spy.send_signal(signal.SIGTERM)
        seen = json.loads(spy.communicate(timeout=60)[0].strip().splitlines()[-1])
        again = splitleak("attack", "sniff", "--pcap", tmp_path / "eve.pcap", "--port", port,
                          "--json", "--decoder", attack_dir, "--save", tmp_path / "recon")
        assert again.returncode == 0, again.stderr[-2000:]
        offline = json.loads(again.stdout.splitlines()[-1])  # from the capture it wrote
        assert offline.pop("reconstructed") == offline["frames"] == seen.pop("reconstructed") \
            + seen["frames"]
        assert offline == seen
        assert len(list(tmp_path.glob("recon/edge/*.png"))) == seen["frames"]
    finally:
        for proc in (spy, broker):
            if proc and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=30)
    passwords = {c["password"] for c in seen["credentials"]}
    if profile == "tls":
        assert (seen["frames"], seen["credentials"], seen["mqtt_packets"]) == (0, [], 0)
        assert seen["unreadable"] > 0  # it saw the traffic: TLS records only
    else:
        assert seen["frames"] == FRAMES and seen["nodes"] == {"edge": FRAMES}
        assert not seen["rejected"] and {c["mqtt"] for c in seen["credentials"]} == {mqtt}
        assert passwords == ({None} if profile == "open" else {url.split(":")[2].split("@")[0]})


def test_net_up_holds_the_network_until_ctrl_c_and_exec_runs_as_a_host(tmp_path):
    try:
        netns.check_can_make()
    except netns.NetError as exc:
        pytest.skip(str(exc))
    net = netns.LabNet(prefix=f"slcli{os.getpid()}")
    cli = [sys.executable, "-m", "splitleak.tools.cli", "net", "--prefix", net.prefix]
    up = subprocess.Popen([*cli, "up"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = _wait_for_line(up, "Press Ctrl-C")
        assert any(net.address("eve") in line for line in banner)
        assert netns.existing(net) == net.namespaces()
        again = subprocess.run([*cli, "up"], capture_output=True, text=True)
        assert again.returncode == 2 and "already up" in again.stderr
        addr = subprocess.run([*cli, "exec", "device", "--", "ip", "-4", "-o", "addr", "show",
                               netns.IFACE], capture_output=True, text=True)
        assert f"inet {net.address('device')}/24" in addr.stdout, addr.stderr
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=30)
    assert up.returncode == 0 and netns.existing(net) == []
    down = subprocess.run([*cli, "down"], capture_output=True, text=True)
    assert down.returncode == 0 and "was not up" in down.stdout


def test_without_root_or_ip_the_network_is_refused_in_one_line(monkeypatch):
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    with pytest.raises(netns.NetError, match="needs root: run it with sudo"):
        netns.up(netns.LabNet(prefix="slnever"))
    monkeypatch.setattr(netns.shutil, "which", lambda name: None)
    with pytest.raises(netns.NetError, match="install iproute2"):
        netns.up(netns.LabNet(prefix="slnever"))
