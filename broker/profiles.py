"""Security profiles: who may connect and what each user may do, independent of the engine.

    open   anonymous clients, no passwords, no topic rules (the lab default)
    auth   user names and passwords required; no topic rules: any user may read everything,
           which is what an eavesdropping insider exploits
    tls    auth + TLS listener + per-user topic rules (ACL), below

Users: one per edge node, named after its node id (default node: "edge"), plus "cloud" and
"attacker". Passwords are generated once and kept in <dir>/credentials.json (mode 0600).

ACL of the tls profile (anything not listed is denied):

    <node>     write splitleak/<node>/activations, write splitleak/<node>/status,
               read splitleak/<node>/predictions     (a device can only speak for itself)
    cloud      read splitleak/+/activations, read splitleak/+/status,
               write splitleak/+/predictions
    attacker   nothing (a valid account without rights: shows the ACL stopping eavesdropping)
"""

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from splitleak.broker import topics

PROFILES = ("open", "auth", "tls")
ENGINES = ("amqtt", "mosquitto")  # here, not in server.py, so the CLI parser needs no paho
DEFAULT_NODES = ("edge",)
CLOUD = "cloud"
ATTACKER = "attacker"
CREDENTIALS_FILE = "credentials.json"


@dataclass(frozen=True)
class Rule:
    """`user` may `access` ("read" or "write") topics matching the MQTT filter `topic`."""

    user: str
    access: str
    topic: str


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown broker profile {profile!r}: choose {', '.join(PROFILES)}")
    return profile


def users(nodes=DEFAULT_NODES) -> list[str]:
    """All user names of the auth and tls profiles: the edge nodes, cloud, attacker."""
    nodes = [topics.check_node_id(n) for n in nodes]
    if not nodes:
        raise ValueError("at least one edge node is needed")
    clash = {CLOUD, ATTACKER} & set(nodes)
    if clash:
        raise ValueError(f"node id {clash.pop()!r} is reserved for a broker user")
    return [*dict.fromkeys(nodes), CLOUD, ATTACKER]


def acl_rules(nodes=DEFAULT_NODES) -> list[Rule]:
    """Topic rules of the tls profile (see the module docstring)."""
    rules = []
    for node in dict.fromkeys(nodes):
        rules += [Rule(node, "write", topics.activations(node)),
                  Rule(node, "write", topics.status(node)),
                  Rule(node, "read", topics.predictions(node))]
    rules += [Rule(CLOUD, "read", topics.ALL_ACTIVATIONS),
              Rule(CLOUD, "read", topics.ALL_STATUS),
              Rule(CLOUD, "write", topics.ALL_PREDICTIONS)]
    return rules


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o600)


def load_or_create_passwords(directory: str | Path, names: list[str],
                             given: dict[str, str] | None = None) -> dict[str, str]:
    """Passwords for `names`: given ones win, then those saved in the directory, else new. Only
    the saved and new ones are written to credentials.json: a given password stays with whoever
    gave it (a device's own, say), and is not copied into the broker's folder in clear."""
    path = Path(directory) / CREDENTIALS_FILE
    saved = {}
    if path.exists():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            raise ValueError(f"{path} is not valid JSON: fix or delete it") from None
    unknown = set(given or {}) - set(names)
    if unknown:
        raise ValueError(f"password given for unknown user {sorted(unknown)[0]!r}; "
                         f"users are {', '.join(names)}")
    given = {n: p for n, p in (given or {}).items() if p}
    kept = {n: saved.get(n) or secrets.token_urlsafe(12) for n in names if n not in given}
    if kept != saved:
        write_private(path, json.dumps(kept, indent=2) + "\n")
    return {n: given.get(n) or kept[n] for n in names}
