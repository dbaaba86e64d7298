"""Run the system Mosquitto (2.x) as a subprocess with a generated configuration.

Files in the broker directory: mosquitto.conf, mosquitto.passwd (PBKDF2-SHA512, the "$7$"
format of mosquitto_passwd), mosquitto.acl, mosquitto.db (persistence), mosquitto.log.

Settings that matter for the testbed (Mosquitto's defaults silently drop QoS 1 messages
for a slow subscriber once 1000 are queued):

    max_queued_messages 1000000   per client, above the 20 in flight
    persistence true              sessions, subscriptions and queued QoS 1 messages survive a
    autosave_interval 30          restart: SIGTERM saves everything on exit; after SIGKILL
                                  up to the last 30 s of changes are lost
    max_packet_size               a bit above the wire format's MAX_PAYLOAD
    set_tcp_nodelay true          no Nagle delay on small frames (the latency it saves:
                                  docs/reliability.md, The pipeline)
"""

import base64
import hashlib
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

from splitleak.broker.profiles import write_private
from splitleak.broker.running import RunningBroker, stop_process, wait_for_port
from splitleak.broker.wire import MAX_PAYLOAD

AUTOSAVE_SECONDS = 30
MAX_QUEUED_MESSAGES = 1_000_000
PBKDF2_ROUNDS = 101  # what mosquitto_passwd 2.0 uses


def find_mosquitto() -> str:
    """Path of the mosquitto binary; OSError with the install command if it is missing."""
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise FileNotFoundError("mosquitto is not installed: apt-get install -y mosquitto "
                                "(or use --engine amqtt)")
    return found


def hash_password(password: str, salt: bytes | None = None) -> str:
    """A Mosquitto 2.0 password hash: $7$<rounds>$<base64 salt>$<base64 PBKDF2-SHA512>."""
    salt = salt or os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, PBKDF2_ROUNDS)
    b64 = base64.b64encode
    return f"$7${PBKDF2_ROUNDS}${b64(salt).decode()}${b64(digest).decode()}"


def acl_text(rules) -> str:
    """Mosquitto ACL file: one `user` block per user with its `topic read|write` lines."""
    lines = ["# Written by splitleak: anything not listed is denied."]
    for user in dict.fromkeys(r.user for r in rules):
        lines += ["", f"user {user}"]
        lines += [f"topic {r.access} {r.topic}" for r in rules if r.user == user]
    return "\n".join(lines) + "\n"


def bridge_text(remote: str) -> str:
    """A bridge section: this broker, next to the nodes, forwards their frames and statuses to
    the broker at `remote` (mqtt://[user:pass@]host:port, the cloud side) and brings the
    predictions back, at QoS 1 with a persistent session there (nothing is lost while the link
    is down: each side queues)."""
    from splitleak.broker import topics
    from splitleak.broker.urls import parse_url

    url = parse_url(remote)
    if url.tls:
        raise ValueError(f"--bridge-to {url}: only mqtt:// bridges are generated here; for TLS "
                         "add bridge_cafile to the bridge section yourself (Mosquitto's manual)")
    lines = ["", "# Bridge to the cloud-side broker (splitleak broker --bridge-to).",
             "connection splitleak-bridge",
             f"address {url.host}:{url.port}",
             "bridge_protocol_version mqttv311",
             "cleansession false",
             f"remote_clientid splitleak-bridge-{url.port}",
             f"topic {topics.ALL_ACTIVATIONS} out 1",
             f"topic {topics.ALL_STATUS} out 1",
             f"topic {topics.ALL_PREDICTIONS} in 1"]
    if url.username is not None:
        lines += [f"remote_username {url.username}", f"remote_password {url.password}"]
    return "\n".join(lines) + "\n"


def config_text(profile: str, host: str, port: int, directory: Path, tls=None,
                bridge: str | None = None) -> str:
    """The mosquitto.conf for `profile` (with a bridge to the broker at `bridge`, if given)."""
    me = pwd.getpwuid(os.getuid()).pw_name  # started as root, mosquitto would become 'mosquitto'
    lines = [f"# Written by splitleak for profile {profile}; rewritten at every start.",
             f"user {me}",
             "per_listener_settings false",
             f"listener {port} {host}"]
    if tls is not None:
        lines += [f"cafile {tls.ca_file}", f"certfile {tls.cert_file}",
                  f"keyfile {tls.key_file}", "tls_version tlsv1.2"]
    lines.append(f"allow_anonymous {'true' if profile == 'open' else 'false'}")
    if profile != "open":
        lines.append(f"password_file {directory / 'mosquitto.passwd'}")
    if profile == "tls":
        lines.append(f"acl_file {directory / 'mosquitto.acl'}")
    lines += ["persistence true",
              f"persistence_location {directory}/",
              "persistence_file mosquitto.db",
              f"autosave_interval {AUTOSAVE_SECONDS}",
              f"max_queued_messages {MAX_QUEUED_MESSAGES}",
              "max_inflight_messages 20",
              f"max_packet_size {MAX_PAYLOAD + 1024}",
              "set_tcp_nodelay true",
              "log_dest stderr",
              "log_type error", "log_type warning", "log_type notice", "log_type information",
              "log_timestamp_format %Y-%m-%dT%H:%M:%S"]
    return "\n".join(lines) + "\n" + (bridge_text(bridge) if bridge else "")


def last_save(directory: Path) -> float | None:
    """When Mosquitto last finished saving its database in `directory` (unix s); None before
    its first save. Mosquitto is single-threaded: nothing is acknowledged during a save."""
    try:
        return (Path(directory) / "mosquitto.db").stat().st_mtime
    except FileNotFoundError:
        return None


def wait_for_autosave(directory: Path, timeout: float | None = None) -> float:
    """Wait for the next save (a new file renamed over mosquitto.db: a new inode); its time.
    TimeoutError after `timeout` s (default: the autosave interval and 5 s)."""
    db = Path(directory) / "mosquitto.db"
    before = db.stat().st_ino if db.exists() else None
    deadline = time.monotonic() + (AUTOSAVE_SECONDS + 5 if timeout is None else timeout)
    while not db.exists() or db.stat().st_ino == before:
        if time.monotonic() > deadline:
            raise TimeoutError(f"mosquitto did not save {db} within the autosave interval")
        time.sleep(0.01)
    return last_save(directory)


class MosquittoBroker(RunningBroker):
    engine = "mosquitto"

    def __init__(self, process: subprocess.Popen, log_file: Path, **kwargs):
        super().__init__(**kwargs)
        self.process = process
        self.log_file = log_file

    def log_tail(self, lines: int = 5) -> str:
        text = self.log_file.read_text(encoding="utf-8", errors="replace")
        return " | ".join(text.strip().splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (mosquitto saves its database and exits), SIGKILL if it hangs."""
        stop_process(self.process, timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def wait(self, timeout: float | None = None) -> bool:
        try:
            self.process.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def is_running(self) -> bool:
        return self.process.poll() is None

    def cpu_seconds(self) -> float | None:
        """CPU time the broker has used so far (user + system, from /proc); None once it ended."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_mosquitto(*, profile, host, port, directory: Path, passwords, rules,
                    tls_names=(), bridge=None, timeout=10.0) -> MosquittoBroker:
    """Write mosquitto's files into `directory` and run it; see `server.start_broker`."""
    binary = find_mosquitto()
    if any(c.isspace() for c in str(directory)):
        raise ValueError(f"mosquitto cannot use a directory with spaces: {directory}")
    tls = None
    if profile == "tls":  # certificates need the broker extra's cryptography; the rest does not
        from splitleak.broker.certs import ensure_tls_files

        tls = ensure_tls_files(directory, host, tls_names)
    if passwords:
        write_private(directory / "mosquitto.passwd",
                      "".join(f"{u}:{hash_password(p)}\n" for u, p in passwords.items()))
    if profile == "tls":
        (directory / "mosquitto.acl").write_text(acl_text(rules), encoding="utf-8")
    conf = directory / "mosquitto.conf"
    conf.write_text(config_text(profile, host, port, directory, tls, bridge), encoding="utf-8")
    log_file = directory / "mosquitto.log"
    with open(log_file, "ab") as log:
        process = subprocess.Popen([binary, "-c", str(conf)], stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    broker = MosquittoBroker(process, log_file, profile=profile, host=host, port=port,
                             directory=directory, passwords=passwords,
                             ca_file=tls.ca_file if tls else None)
    try:
        wait_for_port(broker.client_host, port, timeout, alive=broker.is_running)
    except TimeoutError:
        broker.kill()
        raise OSError(f"mosquitto did not start on {host}:{port}: {broker.log_tail()} "
                      f"(log: {log_file})") from None
    return broker
