"""What a user sees when the broker cannot be reached or says no: one line, exit status 2."""

import json

import pytest

from splitleak.broker.server import free_port
from splitleak.cloud import rundir
from tests.conftest import ENGINES, splitleak

pytestmark = pytest.mark.e2e


def edge(tiny_run, png_source, *args, count=5):
    """Run `splitleak edge` to the end; (exit code, stderr's last line, stdout)."""
    result = splitleak("edge", "--model", rundir.mobile(tiny_run), "--source", png_source,
                       "--count", count, "--wait", 0, *args, timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
    return result.returncode, last, result.stdout


def one_line_error(result: tuple, *words: str) -> None:
    code, last, _ = result
    assert code == 2 and last.startswith("splitleak edge: error: "), last
    for word in words:
        assert word in last


@pytest.mark.parametrize("engine", ENGINES)
def test_wrong_password(engine, deploy, tiny_run, png_source):
    dep = deploy(engine, "auth")
    wrong = dep.broker.url_for("edge").replace(dep.broker.passwords["edge"], "wrong")
    one_line_error(edge(tiny_run, png_source, "--broker", wrong),
                   "refused the connection", "user name/password")


@pytest.mark.parametrize("engine", ENGINES)
def test_plain_connection_to_the_tls_port(engine, deploy, tiny_run, png_source):
    dep = deploy(engine, "tls")
    plain = dep.broker.url_for("edge").replace("mqtts://", "mqtt://")
    one_line_error(edge(tiny_run, png_source, "--broker", plain), "is it a TLS port")


def test_unknown_host_and_closed_port(tiny_run, png_source):
    one_line_error(edge(tiny_run, png_source, "--broker", "mqtt://nosuchhost.invalid"),
                   "cannot reach the broker at nosuchhost.invalid:1883")
    one_line_error(edge(tiny_run, png_source, "--broker", f"mqtt://127.0.0.1:{free_port()}"),
                   "connection refused")


def test_fleet_credentials_must_hold_every_node(deploy, tiny_run, png_source):
    dep = deploy("amqtt", "tls", nodes=("pi-0", "pi-1"))
    one_line_error(edge(tiny_run, png_source, *dep.login(), "--node-id", "pi", "--fleet", 3),
                   "no password for user 'pi-2'", "--node pi-2")


def test_forbidden_publish_is_refused_with_mqtt5(deploy, tiny_run, png_source):
    dep = deploy("mosquitto", "tls", nodes=("edge", "pi-0"))
    as_edge = ["--broker", dep.broker.url_for("edge"), "--ca", dep.broker.ca_file,
               "--node-id", "pi-0"]  # user edge speaking for pi-0: the ACL forbids it
    one_line_error(edge(tiny_run, png_source, *as_edge, "--mqtt", "5"), "the broker refused",
                   "frames on splitleak/pi-0/activations: not authorised (reason code 0x87)")
    # MQTT 3.1.1 has no way to say no: the broker acknowledges and drops (the documented limit).
    code, _, out = edge(tiny_run, png_source, *as_edge, "--json")
    summary = json.loads(out)
    assert code == 0 and summary["acknowledged"] == 5 and summary["predictions"] == 0


@pytest.mark.slow
def test_forbidden_subscription_stops_the_cloud(deploy, tiny_run):
    # amqtt answers SUBACK 0x80; Mosquitto 2.0 grants the subscription and delivers nothing.
    dep = deploy("amqtt", "tls")
    result = splitleak("cloud", "--run", tiny_run, "--broker", dep.broker.url_for("attacker"),
                       "--ca", dep.broker.ca_file, timeout=120)
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert last == ("splitleak cloud: error: the broker refused the subscription to "
                    "splitleak/+/activations and splitleak/+/status (failure (reason code 0x80)):"
                    " this user may not read them")
