"""Start an MQTT broker with a security profile: amqtt (in-process) or Mosquitto (subprocess).

    with start_broker("mosquitto", "tls", port=8883, directory="runs/broker") as broker:
        client = make_client(broker.url_for("cloud"), "cloud", ca_file=broker.ca_file)

Every file the broker needs (configuration, password and ACL files, certificates,
credentials.json, persistence database, log) lives in `directory`. `start_broker` returns
once the port accepts connections and raises OSError with the reason otherwise.
See `profiles` for what open/auth/tls mean; engine differences are in the engine modules.
"""

import errno
import signal
import socket
import subprocess
import time
from pathlib import Path

from splitleak.broker import profiles
from splitleak.broker.urls import BrokerURL

ENGINES = profiles.ENGINES


class RunningBroker:
    """A started broker. Subclasses implement `stop`, `kill`, `wait` and `is_running`."""

    engine = ""

    def __init__(self, profile: str, host: str, port: int, directory: Path,
                 passwords: dict[str, str], ca_file: Path | None):
        self.profile = profile
        self.host = host
        self.port = port
        self.directory = directory
        self.passwords = passwords  # empty for the open profile
        self.ca_file = ca_file  # the CA clients must trust (tls profile), else None

    @property
    def client_host(self) -> str:
        """Where clients connect: a wildcard listen address becomes the loopback address."""
        return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)

    @property
    def url(self) -> str:
        """The broker URL without credentials."""
        return self._url(None, None).full()

    def url_for(self, user: str) -> str:
        """The URL with `user`'s credentials (just `url` for the open profile)."""
        if self.profile == "open":
            return self.url
        if user not in self.passwords:
            raise ValueError(f"no user {user!r}: users are {', '.join(self.passwords)}")
        return self._url(user, self.passwords[user]).full()

    def _url(self, user, password) -> BrokerURL:
        scheme = "mqtts" if self.profile == "tls" else "mqtt"
        return BrokerURL(scheme, self.client_host, self.port, user, password)

    def stop(self, timeout: float = 10.0) -> None:
        raise NotImplementedError

    def kill(self) -> None:
        """Stop abruptly, as a crash would (mosquitto: SIGKILL)."""
        raise NotImplementedError

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the broker has stopped (or `timeout` passes); True if it stopped."""
        raise NotImplementedError

    def is_running(self) -> bool:
        raise NotImplementedError

    def __enter__(self) -> "RunningBroker":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{self.engine} broker, profile {self.profile}, {self.url}>"


def stop_process(proc: subprocess.Popen, timeout: float) -> int:
    """SIGTERM a child, SIGKILL it if it has not ended within `timeout` s; its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (for tests)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def check_port_free(host: str, port: int) -> None:
    """Raise OSError naming the port if something already listens on it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OSError(errno.EADDRINUSE, f"port {port} on {host} is already in use: "
                              "stop the other broker or pick another --port") from None
            raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float, alive=lambda: True) -> None:
    """Poll until host:port accepts TCP connections; TimeoutError if not, or if `alive()` fails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        if port_open(host, port):
            return
        time.sleep(0.05)
    raise TimeoutError(f"broker did not open {host}:{port} within {timeout:g} s")


def start_broker(engine: str = "amqtt", profile: str = "open", port: int = 1883,
                 directory: str | Path = "runs/broker", host: str = "127.0.0.1",
                 nodes=profiles.DEFAULT_NODES, passwords: dict[str, str] | None = None,
                 tls_names=(), bridge: str | None = None, timeout: float = 10.0) -> RunningBroker:
    """Write the broker's files into `directory`, start it and wait until it listens.

    nodes: edge node ids, each becomes a user (auth/tls) allowed its own topics (tls).
    passwords: user -> password to use instead of generated/saved ones.
    tls_names: extra host names or IP addresses for the server certificate (tls only).
    bridge: the URL of a broker to bridge the splitleak topics to (Mosquitto only).
    """
    profiles.check_profile(profile)
    if tls_names and profile != "tls":
        raise ValueError(f"certificate names are for the tls profile, not {profile!r}")
    if profile == "tls":
        from splitleak.broker.certs import server_names

        server_names(host, tls_names)  # a bad name is refused before anything is written
    if engine not in ENGINES:
        raise ValueError(f"unknown broker engine {engine!r}: choose {', '.join(ENGINES)}")
    if bridge and engine != "mosquitto":
        raise ValueError("a bridge needs --engine mosquitto (amqtt has no bridging)")
    if not 0 < port < 65536:
        raise ValueError(f"port must be in 1..65535, got {port}")
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    users = profiles.users(nodes)
    pw = {} if profile == "open" else profiles.load_or_create_passwords(directory, users,
                                                                        passwords)
    check_port_free(host, port)
    options = {"bridge": bridge} if bridge else {}
    if engine == "mosquitto":
        from splitleak.broker.mosquitto import start_mosquitto as start
    else:
        from splitleak.broker.amqtt_engine import start_amqtt as start
    return start(profile=profile, host=host, port=port, directory=directory, passwords=pw,
                 rules=profiles.acl_rules(nodes), tls_names=tuple(tls_names), timeout=timeout,
                 **options)
