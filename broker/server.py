"""Start an MQTT broker with a security profile: amqtt (in-process) or Mosquitto (subprocess).

    with start_broker("mosquitto", "tls", port=8883, directory="runs/broker") as broker:
        client = make_client(broker.url_for("cloud"), "cloud", ca_file=broker.ca_file)

Every file the broker needs (configuration, password and ACL files, certificates,
credentials.json, persistence database, log) lives in `directory`. `start_broker` returns
once the port accepts connections and raises OSError with the reason otherwise.
See `profiles` for what open/auth/tls mean; engine differences are in the engine modules
(`mosquitto`, `amqtt_engine`), which build on `running` and never import this module.
"""

import errno
import socket
from pathlib import Path

from splitleak.broker import profiles
from splitleak.broker.running import RunningBroker, port_open, stop_process, wait_for_port

# RunningBroker and the process and port helpers live in `running`, below this module and the
# engines (which import them from there); they are re-exported here for callers outside broker/.
__all__ = ["ENGINES", "RunningBroker", "check_port_free", "free_port", "port_open", "start_broker",
           "stop_process", "wait_for_port"]

ENGINES = profiles.ENGINES
DIRECTORY = Path("runs/broker")  # the broker's files: config, passwords, certificates


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


def start_broker(engine: str = "amqtt", profile: str = "open", port: int = 1883,
                 directory: str | Path = DIRECTORY, host: str = "127.0.0.1",
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
    # Imported on use: the engines need the broker extra (amqtt, cryptography); the rest of this
    # module does not.
    if engine == "mosquitto":
        from splitleak.broker.mosquitto import start_mosquitto as start
    else:
        from splitleak.broker.amqtt_engine import start_amqtt as start
    return start(profile=profile, host=host, port=port, directory=directory, passwords=pw,
                 rules=profiles.acl_rules(nodes), tls_names=tuple(tls_names), timeout=timeout,
                 **options)
