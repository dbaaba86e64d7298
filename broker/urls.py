"""Broker URLs and ready-made paho clients.

    mqtt://[user:pass@]host[:port]     plain TCP, default port 1883
    mqtts://[user:pass@]host[:port]    TLS, default port 8883, certificate checked by default

A URL without user:pass may take its login from SPLITLEAK_MQTT_USER and SPLITLEAK_MQTT_PASSWORD
(`login_from_env`, used by `splitleak edge`, `cloud` and `attack live`), which keeps the
password off the command line: any local user can read a process's arguments.

Typical use:

    client = make_client("mqtts://edge:pw@127.0.0.1:8883", "edge", ca_file="runs/broker/ca.crt")
    client.will_set(topics.status("edge"), wire.encode_status("offline"), qos=1, retain=True)
    connect(client)          # waits for CONNACK, raises BrokerConnectError, starts the loop

or, to do the network work in your own thread (lower latency under load):

    connect(client, thread=False)
    loop = CallerLoop(client)
    loop.step(0.01)          # call often: sends, receives, runs callbacks, reconnects
"""

import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
PROTOCOLS = {"3.1.1": mqtt.MQTTv311, "5": mqtt.MQTTv5}  # the MQTT versions every node speaks
MQTT_VERSIONS = tuple(PROTOCOLS)
DEFAULT_MQTT = "3.1.1"  # the default: every broker speaks it (MQTT 5 says why it refuses)
NEVER_EXPIRE = 0xFFFFFFFF  # MQTT 5 session expiry interval meaning "keep the session forever"
ENV_USER, ENV_PASSWORD = "SPLITLEAK_MQTT_USER", "SPLITLEAK_MQTT_PASSWORD"
NAME_MISMATCH = (62, 64)  # OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH


@dataclass(frozen=True)
class BrokerURL:
    """A parsed broker URL; `str()` gives it back with the password hidden."""

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @property
    def tls(self) -> bool:
        return self.scheme == "mqtts"

    def full(self) -> str:
        """The URL including the password (for clients; do not log it)."""
        return self._format(self.password)

    def __str__(self) -> str:
        return self._format("***" if self.password is not None else None)

    def _format(self, password: str | None) -> str:
        auth = ""
        if self.username is not None:
            auth = quote(self.username, safe="")
            if password is not None:
                auth += ":" + (password if password == "***" else quote(password, safe=""))
            auth += "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{auth}{host}:{self.port}"


def parse_url(text: str) -> BrokerURL:
    """Parse mqtt:// or mqtts:// URLs; ValueError with a hint for anything else."""
    hint = "expected mqtt://[user:pass@]host[:port] or mqtts://[user:pass@]host[:port]"
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad broker URL {text!r}: {exc}; {hint}") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise ValueError(f"bad broker URL {text!r}: scheme must be mqtt or mqtts; {hint}")
    if not parts.hostname:
        raise ValueError(f"bad broker URL {text!r}: no host; {hint}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"bad broker URL {text!r}: unexpected path or query; {hint}")
    if port == 0:
        raise ValueError(f"bad broker URL {text!r}: port 0 is not a broker port")
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return BrokerURL(parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme],
                     username, password)


def login_from_env(url: str | BrokerURL, environ: Mapping[str, str] | None = None) -> BrokerURL:
    """`url` logged in as $SPLITLEAK_MQTT_USER with $SPLITLEAK_MQTT_PASSWORD, unless the URL
    names a user itself (then the environment is ignored) or neither variable is set."""
    url = parse_url(url) if isinstance(url, str) else url
    environ = os.environ if environ is None else environ
    user, password = environ.get(ENV_USER) or None, environ.get(ENV_PASSWORD) or None
    if url.username is not None or (user is None and password is None):
        return url
    if user is None:
        raise ValueError(f"{ENV_PASSWORD} is set but {ENV_USER} is not: set both, or neither")
    return replace(url, username=user, password=password)


def read_credentials(path: str | Path) -> dict[str, str]:
    """user -> password from a broker's credentials.json (written by `splitleak broker`)."""
    path = Path(path)
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"credentials file {path} does not exist") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"credentials file {path} is not valid JSON") from None
    if not isinstance(found, dict) or not all(isinstance(v, str) for v in found.values()):
        raise ValueError(f"credentials file {path} must map user names to passwords")
    return found


def url_for_user(url: str | BrokerURL, user: str, credentials: dict[str, str],
                 source: str = "the credentials") -> BrokerURL:
    """`url` logged in as `user` with the password from `credentials`."""
    url = parse_url(url) if isinstance(url, str) else url
    if user not in credentials:
        raise ValueError(f"{source} has no password for user {user!r}: the broker creates one "
                         f"user per node (splitleak broker --node {user})")
    return replace(url, username=user, password=credentials[user])


def make_client(url: str | BrokerURL, client_id: str, *, ca_file: str | Path | None = None,
                insecure: bool = False, protocol: str = DEFAULT_MQTT, persistent: bool = False,
                keepalive: int = 30, max_inflight: int = 100) -> mqtt.Client:
    """A configured paho client (callback API v2); nothing is sent until `connect`.

    persistent=True asks the broker to keep the session (subscriptions and queued QoS 1
    messages) while the client is away: clean_session=False in MQTT 3.1.1, clean_start=False
    with a never-expiring session in MQTT 5. TLS verifies the broker against `ca_file` (or
    the system CAs); insecure=True turns verification off (lab use only).
    """
    url = parse_url(url) if isinstance(url, str) else url
    if protocol not in PROTOCOLS:
        raise ValueError(f"MQTT protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    v5 = protocol == "5"
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         clean_session=None if v5 else not persistent,
                         protocol=PROTOCOLS[protocol])
    client.max_queued_messages_set(0)  # unbounded: a QoS 1 message is never dropped locally
    client.on_socket_open = _no_delay
    client.max_inflight_messages_set(max_inflight)
    if url.username is not None:
        client.username_pw_set(url.username, url.password)
    if url.tls:
        _set_tls(client, ca_file, insecure)
    elif ca_file is not None or insecure:
        raise ValueError(f"TLS options given but {url} is plain mqtt://; use mqtts://")
    properties = None
    if v5 and persistent:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = NEVER_EXPIRE
    client.connect_async(url.host, url.port, keepalive, clean_start=not persistent,
                         properties=properties)
    client.reconnect_delay_set(1, 30)
    return client


def _no_delay(client, userdata, sock) -> None:
    """Send each small MQTT packet at once: Nagle's algorithm adds tens of ms under load."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass


def _set_tls(client: mqtt.Client, ca_file: str | Path | None, insecure: bool) -> None:
    if ca_file is not None and not Path(ca_file).is_file():
        raise FileNotFoundError(f"CA file {ca_file} does not exist")
    client.tls_set(ca_certs=str(ca_file) if ca_file else None,
                   cert_reqs=ssl.CERT_NONE if insecure else ssl.CERT_REQUIRED)
    if insecure:
        client.tls_insecure_set(True)


class BrokerConnectError(ConnectionError):
    """The broker could not be reached or refused the connection; `reason_code` if refused."""

    def __init__(self, message: str, reason_code=None):
        super().__init__(message)
        self.reason_code = reason_code


def connect_error_message(reason_code) -> str:
    """A sentence explaining a refused CONNACK (paho ReasonCode or MQTT 3 return code)."""
    value = getattr(reason_code, "value", reason_code)
    messages = {
        1: "the broker does not speak this MQTT protocol version",
        2: "the broker rejected the client id",
        3: "the broker is unavailable",
        4: "wrong user name or password",
        5: "not authorised: wrong or missing user name/password, or this user may not connect",
        0x84: "the broker does not speak this MQTT protocol version",
        0x85: "the broker rejected the client id",
        0x86: "wrong user name or password",
        0x87: "not authorised: wrong or missing user name/password, or this user may not connect",
        0x88: "the broker is unavailable",
    }
    text = messages.get(value, f"refused with reason code {value} ({reason_code})")
    return f"the broker refused the connection: {text}"


def refusal_text(reason_code) -> str:
    """A refused PUBACK or SUBACK in words, e.g. "not authorised (reason code 0x87)"."""
    value = getattr(reason_code, "value", reason_code)
    words = {0x80: "failure", 0x87: "not authorised", 0x97: "quota exceeded",
             0x90: "topic name invalid", 0x95: "packet too large"}
    return f"{words.get(value, str(reason_code).lower())} (reason code {value:#04x})"


def acknowledged(info: mqtt.MQTTMessageInfo) -> bool:
    """Whether a QoS 1 message was acknowledged; False, never an exception, if it cannot be
    (published while disconnected, or not queued)."""
    try:
        return info.is_published()
    except (RuntimeError, ValueError):
        return False


def connect(client: mqtt.Client, timeout: float = 10.0, thread: bool = True) -> None:
    """Connect (blocking until CONNACK) and start paho's network thread (unless thread=False:
    then drive the client with a `CallerLoop`).

    Raises BrokerConnectError with a one-line explanation when the broker is unreachable,
    the TLS handshake fails, or the broker refuses the connection.
    """
    where = f"{client.host}:{client.port}"
    answer: dict = {}
    done = threading.Event()
    users_callback = client.on_connect

    def on_connect(c, userdata, flags, reason_code, properties):
        answer["rc"] = reason_code
        done.set()
        if users_callback is not None:
            users_callback(c, userdata, flags, reason_code, properties)

    client.on_connect = on_connect
    try:
        _handshake(client, where, done, timeout)
    finally:
        client.on_connect = users_callback
    if answer["rc"].is_failure:
        client.disconnect()
        raise BrokerConnectError(connect_error_message(answer["rc"]), answer["rc"])
    if thread:
        client.loop_start()


class CallerLoop:
    """Does a connected client's network work in the caller's thread, instead of paho's.

    Without a second thread no message waits for the GIL to change hands, which at high message
    rates shows in the tail latency. Call `step` often (well within
    the keepalive); after a lost connection it reconnects with paho's backoff, 1 s doubling
    up to 30 s, and paho then resends the unacknowledged QoS 1 messages.
    """

    def __init__(self, client: mqtt.Client, min_delay: float = 1.0, max_delay: float = 30.0):
        self.client = client
        self.min_delay, self.max_delay = min_delay, max_delay
        self.delay = min_delay
        self.retry_at: float | None = None  # set while disconnected

    def step(self, timeout: float = 0.0) -> None:
        """Send and receive what is pending, waiting up to `timeout` s for incoming data."""
        if self.retry_at is not None:
            self._reconnect(timeout)
        elif self.client.loop(timeout) != mqtt.MQTT_ERR_SUCCESS:
            self._schedule_retry()
        elif self.client.is_connected():
            self.delay = self.min_delay

    def run_until(self, done, timeout: float) -> bool:
        """Step until done() is true or `timeout` s have passed; done()'s last answer."""
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            self.step(0.01)
        return done()

    def _reconnect(self, timeout: float) -> None:
        wait = self.retry_at - time.monotonic()
        if wait > 0:
            time.sleep(min(timeout, wait))
            return
        try:
            self.client.reconnect()
            self.retry_at = None
        except OSError:  # refused, unreachable, TLS failure: try again later
            self._schedule_retry()

    def _schedule_retry(self) -> None:
        self.retry_at = time.monotonic() + self.delay
        self.delay = min(self.delay * 2, self.max_delay)


def _handshake(client: mqtt.Client, where: str, done: threading.Event, timeout: float) -> None:
    try:
        client.reconnect()
    except ssl.SSLCertVerificationError as exc:
        if exc.verify_code in NAME_MISMATCH:
            raise BrokerConnectError(f"the certificate of {where} does not name {client.host} "
                                     f"({exc.verify_message}): connect by a name it holds, or "
                                     f"start the broker with --tls-name {client.host}") from None
        raise BrokerConnectError(f"the certificate of {where} is not trusted "
                                 f"({exc.verify_message}): pass the broker's CA file") from None
    except ssl.SSLError as exc:
        raise BrokerConnectError(f"TLS handshake with {where} failed ({exc.reason}): "
                                 "is it a plain mqtt:// port?") from None
    except ConnectionRefusedError:
        raise BrokerConnectError(f"no MQTT broker at {where} (connection refused)") from None
    except OSError as exc:
        raise BrokerConnectError(f"cannot reach the broker at {where}: {exc}") from None
    deadline = time.monotonic() + timeout
    while not done.is_set():
        rc = client.loop(timeout=0.05)
        if done.is_set():
            break
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise BrokerConnectError(f"{where} closed the connection before answering: "
                                     "is it a TLS port (use mqtts://)?")
        if time.monotonic() > deadline:
            client.disconnect()
            hint = ": does it speak MQTT 5? (amqtt does not)" if client.protocol == mqtt.MQTTv5 else ""
            raise BrokerConnectError(f"no answer from {where} within {timeout:g} s{hint}")
