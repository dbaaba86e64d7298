"""The live eavesdropper against a real broker stream, its page in Chromium, captures."""

import json
import socket
import subprocess
import time

import numpy as np
import pytest
from PIL import Image

from splitleak.broker import topics, wire
from splitleak.broker.server import free_port, start_broker
from splitleak.broker.urls import connect, make_client
from splitleak.cloud import rundir
from splitleak.tools.deploy.processes import Node
from tests.conftest import splitleak, write_pngs
from tests.headless import browser_tab

pytestmark = pytest.mark.e2e


@pytest.fixture
def broker(request, tmp_path):
    engine = getattr(request, "param", "amqtt")
    with start_broker(engine, "open", free_port(), tmp_path / "broker") as running:
        yield running


@pytest.fixture
def publisher(broker):
    client = make_client(broker.url, "test-publisher")
    connect(client)
    yield client
    client.disconnect()
    client.loop_stop()


def send_frames(client, node: str, n: int, start: int = 0) -> None:
    rng = np.random.default_rng(start)
    for seq in range(start, start + n):
        activation = rng.random((1, 1, 32), dtype=np.float32)
        frame = wire.Frame(node, seq, time.time(), activation)
        client.publish(topics.activations(node), wire.encode(frame), qos=1).wait_for_publish(5)


def send_junk(client, node: str) -> int:
    good = wire.encode(wire.Frame(node, 99, time.time(), np.zeros((1, 1, 32), np.float32)))
    junk = [b"XXXX" + good[4:], good[:20], wire.encode(wire.Frame(node, 98, time.time(),
                                                                  np.zeros((1, 1, 16), np.float32)))]
    for payload in junk:
        client.publish(topics.activations(node), payload, qos=1).wait_for_publish(5)
    return len(junk)


def start_spy(attack_dir, broker, tmp_path, *extra) -> Node:
    spy = Node("attacker", "attack", "live", "--decoder", attack_dir, "--broker", broker.url,
               "--save", tmp_path / "saved", "--record", tmp_path / "capture.txt", "--json", *extra)
    spy.wait_for("attacker: listening")
    return spy


@pytest.mark.parametrize("broker", ["amqtt", "mosquitto"], indirect=True)
def test_live_attacker_reconstructs_stream_and_counts_junk(attack_dir, broker, publisher, tmp_path):
    spy = start_spy(attack_dir, broker, tmp_path, "--count", 10)
    try:
        time.sleep(0.5)  # the subscription is made in on_connect
        junk = send_junk(publisher, "cam1")
        send_frames(publisher, "cam1", 6)
        send_frames(publisher, "cam2", 4)
        assert spy.wait(60) == 0, spy.tail()
    finally:
        spy.stop()
    stats = json.loads(spy.output[-1])
    assert stats["reconstructed"] == 10 and stats["rejected_total"] == junk
    assert stats["seen"] == 10 + junk and stats["nodes"] == {"cam1": 6, "cam2": 4}
    assert set(stats["rejected"]) == {"magic", "truncated", "shape"}
    saved = sorted(p.relative_to(tmp_path / "saved").as_posix()
                   for p in (tmp_path / "saved").rglob("*.png"))
    assert saved[0] == "cam1/000000.png" and len(saved) == 10
    assert Image.open(tmp_path / "saved/cam2/000003.png").size == (105, 105)
    # The recording replays offline: the same frames reconstructed, the same junk rejected.
    assert len((tmp_path / "capture.txt").read_text().splitlines()) == 10 + junk
    result = splitleak("attack", "eval", attack_dir, "--from-capture", tmp_path / "capture.txt")
    assert result.returncode == 0, result.stderr[-2000:]
    capture = json.loads((attack_dir / rundir.EVAL).read_text())["blackbox"]["capture"]
    assert capture["frames"] == 10 and sum(capture["rejected"].values()) == junk
    result = splitleak("attack", "eval", attack_dir, "--from-capture", tmp_path / "capture.txt",
                       "--limit", 4)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((attack_dir / rundir.EVAL).read_text())["blackbox"]["capture"]["frames"] == 4


def test_without_a_decoder_the_eavesdropper_decodes_counts_and_records(broker, publisher, tmp_path):
    spy = Node("attacker", "attack", "live", "--broker", broker.url, "--record",
               tmp_path / "capture.txt", "--count", 6, "--json")
    spy.wait_for("attacker: listening")
    try:
        time.sleep(0.5)
        junk = send_junk(publisher, "cam3")
        send_frames(publisher, "cam3", 5)
        assert spy.wait(60) == 0, spy.tail()
    finally:
        spy.stop()
    stats = json.loads(spy.output[-1])
    # with no model to match, any well-formed shape is a frame: the 1x1x16 one of the junk too
    assert (stats["frames"], stats["reconstructed"], stats["nodes"]) == (6, 0, {"cam3": 6})
    assert stats["rejected_total"] == junk - 1 and set(stats["rejected"]) == {"magic", "truncated"}
    assert len((tmp_path / "capture.txt").read_text().splitlines()) == 5 + junk


def test_reconstructions_on_a_page_or_disk_need_a_decoder(tmp_path):
    result = splitleak("attack", "live", "--broker", "mqtt://127.0.0.1:1", "--save", tmp_path)
    assert result.returncode == 2 and "need --decoder" in result.stderr


def test_live_page_in_headless_chromium(attack_dir, broker, publisher, tmp_path):
    spy = start_spy(attack_dir, broker, tmp_path, "--web", "127.0.0.1:0")
    try:
        url = next(line for line in spy.output if "live page at" in line).split()[-1]
        with browser_tab() as tab:
            tab.call("Page.navigate", url=url)
            time.sleep(1.5)  # the page opens its event stream
            send_frames(publisher, "cam7", 5)
            deadline = time.monotonic() + 20
            while tab.evaluate("document.querySelectorAll('figure.frame').length") < 5:
                assert time.monotonic() < deadline, "reconstructions did not appear on the page"
                time.sleep(0.2)
            assert tab.evaluate("document.querySelector('.node h2').textContent") == "node cam7"
            src = tab.evaluate("document.querySelector('figure.frame img').src")
            assert src.startswith("data:image/png;base64,")
            time.sleep(1.2)  # counters are pushed once a second
            assert "reconstructed 5" in tab.evaluate("document.getElementById('stats').textContent")
    finally:
        spy.stop()


def test_web_port_in_use_is_a_clear_error(attack_dir, broker):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = splitleak("attack", "live", "--decoder", attack_dir, "--broker", broker.url,
                           "--web", f"127.0.0.1:{port}")
    assert result.returncode == 2 and f"port {port} on 127.0.0.1 is in use" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("broker", ["mosquitto"], indirect=True)
def test_capture_from_real_mosquitto_sub(attack_dir, run_dir, broker, lite, tmp_path):
    folder = write_pngs(lite.test.images[:8], tmp_path / "pngs")
    capture = tmp_path / "sub.txt"
    with capture.open("w") as out:
        sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1",
                                "-t", topics.ALL_ACTIVATIONS, "-F", "%t %x", "-C", "8"], stdout=out)
        try:
            time.sleep(0.5)
            edge = splitleak("edge", "--model", rundir.mobile(run_dir), "--broker", broker.url,
                             "--node-id", "pi", "--source", f"folder:{folder}", "--json")
            assert edge.returncode == 0, edge.stderr[-2000:]
            assert sub.wait(30) == 0
        finally:
            sub.kill()
    result = splitleak("attack", "eval", attack_dir, "--from-capture", capture,
                       "--truth", f"folder:{folder}")
    assert result.returncode == 0, result.stderr[-2000:]
    scored = json.loads((attack_dir / rundir.EVAL).read_text())["blackbox"]["capture"]
    assert scored["frames"] == 8 and scored["nodes"] == {"pi": 8}
    assert 0 < scored["reconstruction"]["mse"] < 1 and scored["n"] == 8


@pytest.mark.parametrize("broker", ["mosquitto"], indirect=True)
def test_noise_defence_moves_published_activations_by_sigma(run_dir, broker, lite, tmp_path):
    from splitleak.attack import replay
    from splitleak.cloud.data import load_source
    from splitleak.edge.runtime import MobileStage

    images = lite.test.images[:16]
    folder = write_pngs(images, tmp_path / "pngs")
    capture, status = tmp_path / "sub.txt", tmp_path / "status.txt"
    listen = [["-t", topics.ALL_ACTIVATIONS, "-F", "%t %x", "-C", "16"],
              ["-t", "splitleak/pi/status", "-F", "%p", "-C", "1"]]
    with capture.open("w") as out, status.open("w") as out_status:
        subs = [subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port),
                                  "-q", "1", *args], stdout=f)
                for args, f in zip(listen, (out, out_status), strict=True)]
        try:
            time.sleep(0.5)
            edge = splitleak("edge", "--model", rundir.mobile(run_dir), "--broker", broker.url,
                             "--node-id", "pi", "--source", f"folder:{folder}", "--json",
                             "--defense", "noise:gauss:0.5", "--defense-seed", 3)
            assert edge.returncode == 0, edge.stderr[-2000:]
            assert all(sub.wait(30) == 0 for sub in subs)
        finally:
            for sub in subs:
                sub.kill()
    assert json.loads(status.read_text())["defense"] == "noise:gauss:0.5"
    stage = MobileStage(rundir.mobile(run_dir))
    frames, _ = replay.read_frames(capture, stage.output_shape)
    published = np.stack([f.as_float32() for f in sorted(frames, key=lambda f: f.seq)])
    clean = stage.run(load_source(f"folder:{folder}"))  # the images as the edge read them
    assert np.std(published - clean) == pytest.approx(0.5, rel=0.15)


def test_a_refused_subscription_ends_the_eavesdropper_in_one_line(tmp_path):
    """amqtt's tls ACL refuses the attacker's subscription (SUBACK 0x80): one line naming the
    topic, not a silent wait (Mosquitto grants it and delivers nothing instead)."""
    with start_broker("amqtt", "tls", free_port(), tmp_path / "broker") as broker:
        result = splitleak("attack", "live", "--broker", broker.url_for("attacker"), "--ca",
                           broker.ca_file, timeout=60)
    err = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2 and "attacker: listening" not in result.stdout
    assert err.startswith("splitleak attack: error: the broker refused the subscription to "
                          f"{topics.ALL_ACTIVATIONS}")
