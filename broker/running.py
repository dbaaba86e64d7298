"""A started broker, whichever engine runs it, and the process and port helpers the engines share.

This module sits below `server` and the engine modules (`mosquitto`, `amqtt_engine`): the engines
subclass `RunningBroker` and use the helpers here, `server.start_broker` picks an engine and
calls it. Nothing here imports `server` or an engine, so the imports only go one way.
"""

import signal
import socket
import subprocess
import time
from pathlib import Path

from splitleak.broker.urls import BrokerURL


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
