"""Run amqtt 0.12 (pure Python, MQTT 3.1.1 only) in this process, on its own event loop thread.

Profiles map onto amqtt plugins:

    open   OpenAuthPlugin (below): everyone may connect. amqtt's own AnonymousAuthPlugin marks
           sessions anonymous, and amqtt then drops their persistent sessions and queued
           QoS 1 messages; this plugin does not.
    auth   amqtt's FileAuthPlugin with <dir>/amqtt.passwd ("user:argon2-hash" lines).
    tls    auth + TLS listener (certs.py) + AclPlugin (below): publish, subscribe and receive
           rules per user, the same rules as Mosquitto's ACL file.

Limits, compared with Mosquitto: sessions and queued messages live in memory only, so a
restart loses them; no packet size limit; last-will topics are not checked against the ACL;
no MQTT 5. Queued messages are delivered with the retain flag set on reconnect.

Retained messages go through `PolicyBroker` (below): amqtt 0.12.1 sends a connecting client the
retained messages matching *every* client's subscriptions, without checking its read ACL (a node
got the other nodes' statuses; under tls, so did the attacker account).
"""

import asyncio
import ipaddress
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from splitleak.broker.certs import ensure_tls_files
from splitleak.broker.profiles import write_private
from splitleak.broker.running import RunningBroker

logger = logging.getLogger(__name__)

try:
    from amqtt.broker import Broker
    from amqtt.contexts import Action
    from amqtt.plugins.base import BaseAuthPlugin
    from amqtt.plugins.topic_checking import TopicAccessControlListPlugin
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(f"amqtt is not installed ({exc}): pip install 'splitleak[broker]' "
                      "or use --engine mosquitto") from exc


class OpenAuthPlugin(BaseAuthPlugin):
    """Accept every client, keeping persistent sessions (see the module docstring)."""

    async def authenticate(self, *, session) -> bool:
        return True


class AclPlugin(TopicAccessControlListPlugin):
    """amqtt's topic ACL plugin with all three rule sets; a user not listed may do nothing."""

    @dataclass
    class Config:
        publish_acl: dict[str, list[str]] = field(default_factory=dict)
        subscribe_acl: dict[str, list[str]] = field(default_factory=dict)
        receive_acl: dict[str, list[str]] = field(default_factory=dict)


class PolicyBroker(Broker):
    """amqtt's broker, handing out retained messages only for the client's own subscriptions and
    only on topics its read ACL (Action.RECEIVE, as for live messages) allows."""

    async def _publish_retained_messages_for_subscription(self, subscription, session) -> None:
        topic_filter, qos = subscription
        members = self._subscriptions.get(topic_filter, [])
        if not any(member.client_id == session.client_id for member, _ in members):
            return  # amqtt calls this on connect for every filter anyone subscribed to
        handler = self._get_handler(session)
        if handler is None:
            return
        sends = [handler.mqtt_publish(topic, message.data, min(qos, message.qos or qos),
                                      retain=True)
                 for topic, message in list(self._retained_messages.items())
                 if self._matches(topic, topic_filter)
                 and await self._topic_filtering(session, topic, Action.RECEIVE)]
        if sends:
            await asyncio.gather(*sends)


def password_file_text(passwords: dict[str, str]) -> str:
    """amqtt's password file; Argon2id at OWASP's minimum cost keeps start and login fast."""
    hasher = PasswordHash((Argon2Hasher(time_cost=2, memory_cost=19456, parallelism=1),))
    return "".join(f"{user}:{hasher.hash(pw)}\n" for user, pw in passwords.items())


def acl_config(rules) -> dict:
    """Rules -> AclPlugin config: 'read' allows subscribe and receive, 'write' publish."""
    config = {"publish_acl": {}, "subscribe_acl": {}, "receive_acl": {}}
    for r in rules:
        keys = ["publish_acl"] if r.access == "write" else ["subscribe_acl", "receive_acl"]
        for key in keys:
            config[key].setdefault(r.user, []).append(r.topic)
    return config


def _bind(host: str, port: int) -> str:
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]:{port}"
    except ValueError:
        pass
    return f"{host}:{port}"


def broker_config(profile, host, port, directory: Path, passwords, rules, tls=None) -> dict:
    """The amqtt BrokerConfig dictionary for `profile`."""
    listener = {"type": "tcp", "bind": _bind(host, port)}
    if tls is not None:
        listener.update(ssl=True, certfile=str(tls.cert_file), keyfile=str(tls.key_file))
    plugins = {}
    if profile == "open":
        plugins[f"{__name__}.OpenAuthPlugin"] = {}
    else:
        pw_file = directory / "amqtt.passwd"
        write_private(pw_file, password_file_text(passwords))
        plugins["amqtt.plugins.authentication.FileAuthPlugin"] = {"password_file": str(pw_file)}
    if profile == "tls":
        plugins[f"{__name__}.AclPlugin"] = acl_config(rules)
    return {"listeners": {"default": listener}, "plugins": plugins}


class AmqttBroker(RunningBroker):
    """amqtt on a daemon thread running its own asyncio loop."""

    engine = "amqtt"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(_quiet_disconnects)
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name=f"amqtt-{self.port}")
        self._broker = None

    def _call(self, coro, timeout: float):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self, config: dict, timeout: float) -> None:
        self._thread.start()
        try:
            self._call(self._start(config), timeout)
        except Exception as exc:
            self._end_loop(timeout)
            raise OSError(f"amqtt did not start on {self.host}:{self.port}: {exc}") from exc

    async def _start(self, config: dict) -> None:
        self._broker = PolicyBroker(config)
        await self._broker.start()

    def stop(self, timeout: float = 10.0) -> None:
        if not self._thread.is_alive():
            return
        try:
            if self._broker is not None and self._broker.transitions.state == "started":
                self._call(self._drop_clients(), timeout)
                self._call(self._broker.shutdown(), timeout)
        except TimeoutError:  # seen in CI: amqtt 0.12's broadcast loop dies and shutdown hangs
            logger.warning("amqtt did not shut down within %g s: closing its listeners", timeout)
            self._loop.call_soon_threadsafe(self._close_listeners)
        finally:
            self._end_loop(timeout)

    async def _drop_clients(self) -> None:
        """Cut every client's connection first, as a broker process going down would: amqtt's own
        shutdown stops one session at a time and has hung on one (amqtt keeps them in a private
        dict; the writer adapter wraps an asyncio StreamWriter)."""
        for _, handler in list(self._broker._sessions.values()):
            stream = getattr(getattr(handler, "writer", None), "_writer", None)
            if stream is not None:
                stream.transport.abort()

    def _close_listeners(self) -> None:
        """Stop accepting connections (amqtt keeps its asyncio servers in a private dict)."""
        for server in self._broker._servers.values():
            if server.instance is not None:
                server.instance.close()

    def _end_loop(self, timeout: float) -> None:
        try:
            self._call(_cancel_other_tasks(), timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self._loop.close()

    def kill(self) -> None:
        """In-process, so the same as stop (amqtt keeps nothing across restarts anyway)."""
        self.stop()

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def is_running(self) -> bool:
        return self._thread.is_alive()


def _quiet_disconnects(loop, context) -> None:
    """amqtt leaves a task failing when a refused client hangs up first: not worth a traceback."""
    if isinstance(context.get("exception"), ConnectionError):
        logger.debug("amqtt: %s", context.get("exception"))
        return
    loop.default_exception_handler(context)


async def _cancel_other_tasks() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def start_amqtt(*, profile, host, port, directory: Path, passwords, rules, tls_names=(),
                timeout=10.0) -> AmqttBroker:
    """Start amqtt for `profile` in this process; see `server.start_broker`."""
    tls = ensure_tls_files(directory, host, tls_names) if profile == "tls" else None
    config = broker_config(profile, host, port, directory, passwords, rules, tls)
    broker = AmqttBroker(profile=profile, host=host, port=port, directory=directory,
                         passwords=passwords, ca_file=tls.ca_file if tls else None)
    broker.start(config, timeout)
    return broker
