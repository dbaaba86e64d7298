"""`splitleak broker` (tools/cmd_broker.py) run in a subprocess, stopped with SIGTERM."""

import argparse
import queue
import re
import signal
import subprocess
import sys
import threading

import pytest

from splitleak.broker import topics, urls
from splitleak.broker.server import free_port, start_broker
from splitleak.tools.cli import broker as cmd_broker

RUN_CLI = ("import argparse, sys; from splitleak.tools.cli import broker as m; "
           "p = argparse.ArgumentParser(); m.add_arguments(p); "
           "sys.exit(m.run(p.parse_args(sys.argv[1:])))")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cmd_broker.add_arguments(parser)
    return parser.parse_args(argv)


@pytest.fixture
def cli():
    """cli(*args) -> (process, lines queue); the process gets SIGTERM (then SIGKILL) at the end."""
    procs = []

    def start(*args):
        proc = subprocess.Popen([sys.executable, "-c", RUN_CLI, *args], text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        procs.append(proc)
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
        return proc, lines

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def read_banner(lines: queue.Queue) -> str:
    text = ""
    while "Press Ctrl-C" not in text:
        text += lines.get(timeout=20)
    return text


@pytest.mark.e2e
@pytest.mark.parametrize("engine", ["amqtt", "mosquitto"])
def test_cli_runs_until_sigterm(engine, cli, tmp_path):
    port = free_port()
    proc, lines = cli("--engine", engine, "--profile", "tls", "--port", str(port),
                      "--dir", str(tmp_path), "--password", "cloud=s3cret")
    banner = read_banner(lines)
    # a password given on the command line stays with whoever gave it: masked, not printed
    assert f"mqtts://cloud:***@127.0.0.1:{port} (the password given)" in banner
    assert "s3cret" not in banner and "s3cret" not in (tmp_path / "credentials.json").read_text()
    ca_file = re.search(r"CA file:\s+(\S+)", banner).group(1)
    client = urls.make_client(f"mqtts://cloud:s3cret@127.0.0.1:{port}", "cloud",
                              ca_file=ca_file)
    urls.connect(client, timeout=5)
    client.subscribe(topics.ALL_ACTIVATIONS, qos=1)
    client.disconnect()
    client.loop_stop()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    assert "broker stopped" in "".join(lines.queue)


def test_cli_defaults_and_bad_password_option():
    args = parse([])
    assert (args.engine, args.profile, args.port, args.host) == ("amqtt", "open", None, "127.0.0.1")
    with pytest.raises(ValueError, match="USER=PASS"):
        cmd_broker.run(parse(["--password", "cloud", "--port", "1"]))


@pytest.mark.e2e
def test_cli_reports_a_busy_port(tmp_path):
    with start_broker("amqtt", "open", free_port(), tmp_path / "a") as broker:
        with pytest.raises(OSError, match="already in use"):
            cmd_broker.run(parse(["--port", str(broker.port), "--dir", str(tmp_path / "b")]))


def test_tls_names_are_repeatable_and_only_for_the_tls_profile(tmp_path):
    args = parse(["--profile", "tls", "--tls-name", "laptop.local", "--tls-name", "192.168.1.20"])
    assert args.tls_name == ["laptop.local", "192.168.1.20"] and parse([]).tls_name == []
    with pytest.raises(ValueError, match="tls profile"):
        cmd_broker.run(parse(["--tls-name", "laptop.local", "--dir", str(tmp_path)]))
    with pytest.raises(ValueError, match="not an IP address or a DNS name"):
        cmd_broker.run(parse(["--profile", "tls", "--tls-name", "bad name", "--dir", str(tmp_path)]))
    assert not list(tmp_path.iterdir())  # refused before anything was written
