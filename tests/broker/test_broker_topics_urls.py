"""Topic names, broker URLs, profiles and the engines' generated files (no processes)."""

import base64
import hashlib
import json

import paho.mqtt.client as mqtt
import pytest

from splitleak.broker import profiles, topics, urls
from splitleak.broker.mosquitto import acl_text, config_text, hash_password


def test_topic_names():
    assert topics.activations("pi-01") == "splitleak/pi-01/activations"
    assert topics.predictions("pi-01") == "splitleak/pi-01/predictions"
    assert topics.status("pi-01") == "splitleak/pi-01/status"
    assert topics.ALL_ACTIVATIONS == "splitleak/+/activations"
    assert topics.node_from_topic("splitleak/pi-01/activations") == "pi-01"
    assert topics.parse_topic("splitleak/pi-01/status") == ("pi-01", "status")


@pytest.mark.parametrize("topic", ["other/pi/activations", "splitleak/pi", "splitleak/pi/x",
                                   "splitleak/a/b/activations", "splitleak//activations",
                                   "splitleak/+/activations"])
def test_foreign_topics_are_rejected(topic):
    with pytest.raises(ValueError):
        topics.parse_topic(topic)
    with pytest.raises(ValueError):
        topics.node_from_topic(topic)


def test_topic_builders_reject_wildcards():
    with pytest.raises(ValueError, match="contains '#'"):
        topics.activations("#")


def test_parse_url():
    u = urls.parse_url("mqtt://broker.lan")
    assert (u.scheme, u.host, u.port, u.username, u.password, u.tls) == (
        "mqtt", "broker.lan", 1883, None, None, False)
    u = urls.parse_url("mqtts://edge:p%40ss@127.0.0.1:9999")
    assert (u.host, u.port, u.username, u.password, u.tls) == (
        "127.0.0.1", 9999, "edge", "p@ss", True)
    assert str(u) == "mqtts://edge:***@127.0.0.1:9999"
    assert u.full() == "mqtts://edge:p%40ss@127.0.0.1:9999"
    assert urls.parse_url("mqtts://[::1]").port == 8883
    assert urls.parse_url(u.full()) == u


@pytest.mark.parametrize("text, words", [
    ("http://host", "scheme"), ("host:1883", "scheme"), ("mqtt://", "no host"),
    ("mqtt://host:99999", "out of range"), ("mqtt://host/topic", "path"),
    ("mqtt://host:abc", "bad broker URL"), ("mqtt://host:0", "port 0"),
])
def test_parse_url_errors(text, words):
    with pytest.raises(ValueError, match=words):
        urls.parse_url(text)


def test_make_client_options(tmp_path):
    client = urls.make_client("mqtt://u:p@127.0.0.1:1", "c1", persistent=True)
    assert client.protocol == mqtt.MQTTv311 and (client.host, client.port) == ("127.0.0.1", 1)
    v5 = urls.make_client("mqtt://127.0.0.1", "c2", protocol="5", persistent=True)
    assert v5.protocol == mqtt.MQTTv5
    with pytest.raises(ValueError, match="protocol"):
        urls.make_client("mqtt://127.0.0.1", "c3", protocol="4")
    with pytest.raises(ValueError, match="mqtts://"):
        urls.make_client("mqtt://127.0.0.1", "c4", ca_file=tmp_path / "ca.crt")
    with pytest.raises(FileNotFoundError):
        urls.make_client("mqtts://127.0.0.1", "c5", ca_file=tmp_path / "missing.crt")


def test_connect_to_a_closed_port_is_a_clear_error():
    from splitleak.broker.server import free_port
    client = urls.make_client(f"mqtt://127.0.0.1:{free_port()}", "nobody")
    with pytest.raises(urls.BrokerConnectError, match="connection refused"):
        urls.connect(client, timeout=2)


def test_connect_error_messages():
    assert "user name or password" in urls.connect_error_message(4)
    assert "not authorised" in urls.connect_error_message(0x87)
    assert "reason code 99" in urls.connect_error_message(99)


def test_profile_users_and_rules():
    assert profiles.users(["pi-1", "pi-2"]) == ["pi-1", "pi-2", "cloud", "attacker"]
    with pytest.raises(ValueError, match="reserved"):
        profiles.users(["cloud"])
    rules = profiles.acl_rules(["pi-1"])
    assert profiles.Rule("pi-1", "write", "splitleak/pi-1/activations") in rules
    assert profiles.Rule("cloud", "read", "splitleak/+/activations") in rules
    assert not [r for r in rules if r.user == "attacker"]
    with pytest.raises(ValueError, match="unknown broker profile"):
        profiles.check_profile("wide-open")


def test_passwords_are_kept_in_the_directory(tmp_path):
    first = profiles.load_or_create_passwords(tmp_path, ["edge", "cloud"])
    assert profiles.load_or_create_passwords(tmp_path, ["edge", "cloud"]) == first
    given = profiles.load_or_create_passwords(tmp_path, ["edge", "cloud"], {"edge": "pw"})
    assert given == {"edge": "pw", "cloud": first["cloud"]}
    saved = json.loads((tmp_path / "credentials.json").read_text())
    assert saved == {"cloud": first["cloud"]}  # a given password is not written down in clear
    assert (tmp_path / "credentials.json").stat().st_mode & 0o077 == 0
    with pytest.raises(ValueError, match="unknown user"):
        profiles.load_or_create_passwords(tmp_path, ["edge"], {"mallory": "x"})


def test_mosquitto_password_hash_format():
    salt = bytes(range(12))
    line = hash_password("secret", salt)
    _, kind, rounds, b64salt, b64hash = line.split("$")
    assert (kind, rounds, base64.b64decode(b64salt)) == ("7", "101", salt)
    assert base64.b64decode(b64hash) == hashlib.pbkdf2_hmac("sha512", b"secret", salt, 101)


def test_mosquitto_config_keeps_queued_messages(tmp_path):
    text = config_text("auth", "127.0.0.1", 1883, tmp_path)
    for line in ["listener 1883 127.0.0.1", "allow_anonymous false", "persistence true",
                 "max_queued_messages 1000000", f"persistence_location {tmp_path}/"]:
        assert line in text.splitlines()
    acl = acl_text(profiles.acl_rules(["edge"]))
    assert "user edge\ntopic write splitleak/edge/activations" in acl
    assert "topic write splitleak/+/predictions" in acl and "attacker" not in acl


def test_a_url_without_a_user_takes_its_login_from_the_environment():
    env = {urls.ENV_USER: "pi-01", urls.ENV_PASSWORD: "p@ss word"}
    u = urls.login_from_env("mqtts://laptop.lan", env)
    assert (u.username, u.password, u.host, u.port) == ("pi-01", "p@ss word", "laptop.lan", 8883)
    assert urls.parse_url(u.full()) == u and "p@ss" not in str(u)
    assert urls.login_from_env("mqtt://cloud:pw@h", env).username == "cloud"  # the URL wins
    assert urls.login_from_env("mqtt://h", {}) == urls.parse_url("mqtt://h")
    assert urls.login_from_env("mqtt://h", {urls.ENV_USER: "u"}).password is None
    with pytest.raises(ValueError, match="SPLITLEAK_MQTT_USER is not"):
        urls.login_from_env("mqtt://h", {urls.ENV_PASSWORD: "pw"})


def test_the_server_certificate_names_the_hosts_clients_use(tmp_path):
    from cryptography import x509

    from splitleak.broker.certs import ensure_tls_files, server_names

    assert server_names("0.0.0.0") == ["127.0.0.1", "::1", "localhost"]
    files = ensure_tls_files(tmp_path, "0.0.0.0", ["laptop.local", "192.168.1.20", "localhost"])
    cert = x509.load_pem_x509_certificate(files.cert_file.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "laptop.local"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == [
        "127.0.0.1", "::1", "192.168.1.20"]
    for bad in ("two words", "-x.lan", "a..b", "*.lan"):
        with pytest.raises(ValueError, match="not an IP address or a DNS name"):
            server_names("127.0.0.1", [bad])


def test_a_certificate_for_another_name_says_which_name_to_add(monkeypatch):
    import ssl

    client = urls.make_client("mqtts://laptop.lan:8883", "pi-01")
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_code, error.verify_message = 62, "Hostname mismatch"

    def refuse():
        raise error

    monkeypatch.setattr(client, "reconnect", refuse)
    with pytest.raises(urls.BrokerConnectError, match="does not name laptop.lan .*--tls-name laptop.lan"):
        urls.connect(client, timeout=1)
