"""Real brokers (amqtt in-process, Mosquitto as a subprocess) with real paho clients."""

import queue
import threading
import time

import numpy as np
import pytest

from splitleak.broker import server, topics, urls, wire
from splitleak.broker.mosquitto import wait_for_autosave
from splitleak.broker.server import free_port, start_broker
from tests.conftest import ENGINES

pytestmark = pytest.mark.e2e



class Peer:
    """A paho client that collects its messages and can wait for SUBACKs."""

    def __init__(self, client):
        self.client = client
        self.inbox = queue.Queue()
        self.subacks = {}
        self.subacked = threading.Condition()
        client.on_message = lambda c, u, msg: self.inbox.put(msg)
        client.on_subscribe = self._on_subscribe

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        with self.subacked:
            self.subacks[mid] = reason_codes
            self.subacked.notify_all()

    def subscribe(self, topic: str) -> int:
        """Subscribe at QoS 1 and return the SUBACK code (0x80 = refused)."""
        _, mid = self.client.subscribe(topic, qos=1)
        with self.subacked:
            assert self.subacked.wait_for(lambda: mid in self.subacks, timeout=5)
        return self.subacks[mid][0].value

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(timeout=5)

    def receive(self, timeout: float = 5.0):
        return self.inbox.get(timeout=timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def brokers():
    """start(engine, profile, **kw) -> broker; every broker is stopped at the end."""
    started = []

    def start(engine, profile, directory, port=None, **kwargs):
        broker = start_broker(engine, profile, port or free_port(), directory, **kwargs)
        started.append(broker)
        return broker

    yield start
    for broker in started:
        broker.stop()


@pytest.fixture
def peers():
    """connect(broker, user, **kw) -> Peer; every client is disconnected at the end."""
    made = []

    def connect(broker, user, client_id=None, persistent=False, url=None, ca_file="broker",
                protocol="3.1.1"):
        ca_file = broker.ca_file if ca_file == "broker" else ca_file
        client = urls.make_client(url or broker.url_for(user), client_id or user,
                                  ca_file=ca_file, persistent=persistent, protocol=protocol)
        peer = Peer(client)
        made.append(peer)
        urls.connect(client, timeout=5)
        return peer

    yield connect
    for peer in made:
        peer.close()


def frame(seq: int, node: str = "edge") -> bytes:
    values = np.random.default_rng(seq).standard_normal((1, 1, 8)).astype(np.float32)
    return wire.encode(wire.Frame(node, seq, time.time(), values))


@pytest.mark.parametrize("engine", ENGINES)
def test_qos1_round_trip(engine, brokers, peers, tmp_path):
    broker = brokers(engine, "open", tmp_path)
    cloud, edge = peers(broker, "cloud"), peers(broker, "edge")
    assert cloud.subscribe(topics.ALL_ACTIVATIONS) == 1
    for seq in range(50):
        edge.publish(topics.activations("edge"), frame(seq))
    got = [wire.decode(cloud.receive().payload) for _ in range(50)]
    assert [f.seq for f in got] == list(range(50))
    assert got[0].activation.shape == (1, 1, 8)


@pytest.mark.parametrize("engine", ENGINES)
def test_auth_rejects_wrong_password(engine, brokers, peers, tmp_path):
    broker = brokers(engine, "auth", tmp_path)
    wrong = broker.url_for("cloud").replace(broker.passwords["cloud"], "wrong")
    with pytest.raises(urls.BrokerConnectError, match="user name/password"):
        peers(broker, "cloud", url=wrong)
    with pytest.raises(urls.BrokerConnectError, match="refused"):
        peers(broker, "cloud", url=broker.url)  # no credentials at all
    assert peers(broker, "cloud").subscribe(topics.ALL_ACTIVATIONS) == 1


@pytest.mark.parametrize("engine", ENGINES)
def test_tls_rejects_plain_and_untrusted_connections(engine, brokers, peers, tmp_path):
    broker = brokers(engine, "tls", tmp_path)
    plain = broker.url_for("cloud").replace("mqtts://", "mqtt://")
    with pytest.raises(urls.BrokerConnectError, match="before answering|closed"):
        peers(broker, "cloud", url=plain, ca_file=None)
    other_ca = server.Path(tmp_path / "other")
    from splitleak.broker.certs import ensure_tls_files
    with pytest.raises(urls.BrokerConnectError, match="not trusted"):
        peers(broker, "cloud", ca_file=ensure_tls_files(other_ca).ca_file)


@pytest.mark.parametrize("engine", ENGINES)
def test_tls_acl(engine, brokers, peers, tmp_path):
    broker = brokers(engine, "tls", tmp_path, nodes=("edge", "pi-2"))
    cloud, edge, pi2 = peers(broker, "cloud"), peers(broker, "edge"), peers(broker, "pi-2")
    attacker = peers(broker, "attacker")
    # amqtt refuses forbidden subscriptions (SUBACK 0x80). Mosquitto 2.0's acl_file grants
    # every SUBSCRIBE and instead checks read access on each message it would deliver.
    refused = 0x80 if engine == "amqtt" else 1
    assert attacker.subscribe(topics.ALL_ACTIVATIONS) == refused
    assert attacker.subscribe("#") == refused
    assert edge.subscribe(topics.activations("pi-2")) == refused
    assert cloud.subscribe(topics.ALL_ACTIVATIONS) == 1
    assert pi2.subscribe(topics.predictions("pi-2")) == 1
    # Forbidden publishes are dropped silently; the allowed one after them arrives alone.
    edge.publish(topics.activations("pi-2"), frame(1, "pi-2"))  # impersonating pi-2
    attacker.publish(topics.predictions("pi-2"), b"forged")
    edge.publish(topics.activations("edge"), frame(2))
    got = cloud.receive()
    assert (got.topic, wire.decode(got.payload).seq) == (topics.activations("edge"), 2)
    cloud.publish(topics.predictions("pi-2"), wire.encode_prediction("pi-2", 1, 0, [1.0], 1, 2))
    assert wire.decode_prediction(pi2.receive().payload)["node_id"] == "pi-2"
    time.sleep(0.2)  # give a wrongly routed message time to arrive
    assert cloud.inbox.empty() and pi2.inbox.empty()
    assert attacker.inbox.empty() and edge.inbox.empty()


@pytest.mark.parametrize("profile", ["open", "auth", "tls"])
@pytest.mark.parametrize("engine", ENGINES)
def test_retained_messages_reach_only_subscribers_allowed_to_read_them(engine, profile, brokers,
                                                                      peers, tmp_path):
    """A retained status goes to who subscribes to it and may read it, and to nobody else: not
    to a client that merely connects (amqtt 0.12.1 sent those the retained messages of every
    other client's subscriptions, past the read ACL; broker/amqtt_engine.py fixes that)."""
    broker = brokers(engine, profile, tmp_path, nodes=("edge", "pi-2"))
    for node in ("edge", "pi-2"):
        publisher = peers(broker, node)
        publisher.client.publish(topics.status(node), wire.encode_status("offline"), qos=1,
                                 retain=True).wait_for_publish(5)
    cloud = peers(broker, "cloud")
    assert cloud.subscribe(topics.ALL_STATUS) == 1
    assert sorted(cloud.receive().topic for _ in range(2)) == [topics.status("edge"),
                                                               topics.status("pi-2")]
    pi2 = peers(broker, "pi-2", client_id="pi-2-again")  # connects after cloud subscribed
    assert pi2.subscribe(topics.predictions("pi-2")) == 1
    readers = [pi2]
    if profile == "tls":  # may not read statuses: refused (amqtt) or granted and starved
        refused = 0x80 if engine == "amqtt" else 1
        attacker, edge = peers(broker, "attacker"), peers(broker, "edge", client_id="edge-2")
        assert attacker.subscribe(topics.ALL_STATUS) == refused
        assert edge.subscribe(topics.status("pi-2")) == refused
        readers += [attacker, edge]
    time.sleep(0.5)
    leaked = [(r.client._client_id.decode(), m.topic) for r in readers
              for m in list(r.inbox.queue)]
    assert not leaked


def queue_while_offline(broker, peers, count=20, protocol="3.1.1"):
    """A persistent cloud session subscribes and leaves; the edge publishes `count` frames."""
    cloud = peers(broker, "cloud", client_id="cloud-head", persistent=True, protocol=protocol)
    assert cloud.subscribe(topics.ALL_ACTIVATIONS) == 1
    cloud.close()
    edge = peers(broker, "edge")
    for seq in range(count):
        edge.publish(topics.activations("edge"), frame(seq))
    edge.close()


def receive_all(peer, count=20) -> list[int]:
    return [wire.decode(peer.receive().payload).seq for _ in range(count)]


@pytest.mark.parametrize("engine", ENGINES)
def test_persistent_session_gets_messages_queued_while_away(engine, brokers, peers, tmp_path):
    broker = brokers(engine, "open", tmp_path)
    queue_while_offline(broker, peers)
    cloud = peers(broker, "cloud", client_id="cloud-head", persistent=True)
    assert sorted(receive_all(cloud)) == list(range(20))


def test_mosquitto_restart_keeps_queued_messages(brokers, peers, tmp_path):
    port = free_port()
    broker = brokers("mosquitto", "auth", tmp_path, port=port)
    queue_while_offline(broker, peers)
    broker.stop()  # SIGTERM: mosquitto writes its database on the way out
    assert (tmp_path / "mosquitto.db").exists()
    restarted = brokers("mosquitto", "auth", tmp_path, port=port)
    assert restarted.passwords == broker.passwords  # credentials.json is reused
    cloud = peers(restarted, "cloud", client_id="cloud-head", persistent=True)
    assert sorted(receive_all(cloud)) == list(range(20))


def test_mosquitto_sigkill_after_autosave_keeps_queued_messages(brokers, peers, tmp_path,
                                                                 monkeypatch):
    import splitleak.broker.mosquitto as mosquitto
    monkeypatch.setattr(mosquitto, "AUTOSAVE_SECONDS", 1)
    port = free_port()
    broker = brokers("mosquitto", "open", tmp_path, port=port)
    queue_while_offline(broker, peers)
    # Changes after the last autosave die with SIGKILL: wait for the next save, which
    # mosquitto writes to a new file and renames over mosquitto.db.
    wait_for_autosave(tmp_path)
    broker.kill()
    restarted = brokers("mosquitto", "open", tmp_path, port=port)
    cloud = peers(restarted, "cloud", client_id="cloud-head", persistent=True)
    assert sorted(receive_all(cloud)) == list(range(20))


def test_mosquitto_mqtt5_persistent_session(brokers, peers, tmp_path):
    broker = brokers("mosquitto", "open", tmp_path)
    queue_while_offline(broker, peers, protocol="5")
    cloud = peers(broker, "cloud", client_id="cloud-head", persistent=True, protocol="5")
    assert sorted(receive_all(cloud)) == list(range(20))


@pytest.mark.parametrize("engine", ENGINES)
def test_port_in_use_is_a_clear_error(engine, brokers, tmp_path):
    broker = brokers(engine, "open", tmp_path / "a")
    with pytest.raises(OSError, match=f"port {broker.port} .* already in use"):
        brokers(engine, "open", tmp_path / "b", port=broker.port)


def test_missing_mosquitto_is_a_clear_error(monkeypatch, tmp_path):
    import splitleak.broker.mosquitto as mosquitto
    monkeypatch.setattr(mosquitto.shutil, "which", lambda *a, **k: None)
    with pytest.raises(OSError, match="apt-get install -y mosquitto"):
        start_broker("mosquitto", "open", free_port(), tmp_path)


def test_bad_arguments_are_value_errors(tmp_path):
    with pytest.raises(ValueError, match="engine"):
        start_broker("rabbitmq", "open", 1883, tmp_path)
    with pytest.raises(ValueError, match="profile"):
        start_broker("amqtt", "paranoid", 1883, tmp_path)


def test_amqtt_stop_survives_a_hanging_shutdown(tmp_path):
    """amqtt 0.12's shutdown() has hung in CI; stop() must still free the port."""
    import asyncio

    port = free_port()
    broker = start_broker("amqtt", "open", port, tmp_path)

    async def hang():
        await asyncio.sleep(3600)

    broker._broker.shutdown = hang
    started = time.monotonic()
    broker.stop(timeout=1.0)
    assert time.monotonic() - started < 10 and not broker.is_running()
    with start_broker("amqtt", "open", port, tmp_path) as again:  # the port is free again
        assert again.is_running()


@pytest.mark.parametrize("engine", ENGINES)
def test_a_client_verifying_the_ca_connects_by_an_added_name(engine, brokers, tmp_path):
    import socket
    import ssl

    broker = brokers(engine, "tls", tmp_path, tls_names=["laptop.lan", "192.0.2.7"])
    context = ssl.create_default_context(cafile=str(broker.ca_file))

    def handshake(name: str) -> None:  # reach 127.0.0.1, but check the certificate for `name`
        with socket.create_connection((broker.client_host, broker.port), timeout=5) as sock:
            context.wrap_socket(sock, server_hostname=name).close()

    handshake("laptop.lan")
    handshake("192.0.2.7")
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        handshake("elsewhere.lan")


@pytest.mark.parametrize("profile", ["auth", "tls"])
def test_a_login_from_the_environment(profile, brokers, peers, tmp_path):
    broker = brokers("amqtt", profile, tmp_path, nodes=("pi-01",))
    env = {urls.ENV_USER: "pi-01", urls.ENV_PASSWORD: broker.passwords["pi-01"]}
    pi = peers(broker, "pi-01", url=urls.login_from_env(broker.url, env).full())
    assert pi.subscribe(topics.predictions("pi-01")) == 1
    with pytest.raises(urls.BrokerConnectError, match="user name/password"):
        peers(broker, "pi-01", url=urls.login_from_env(broker.url, {**env, urls.ENV_PASSWORD: "no"}).full())
