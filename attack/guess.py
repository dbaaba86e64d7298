"""Online password guessing against a broker on this machine (lab 5: why weak passwords fail).

One MQTT CONNECT per candidate, in word-list order, until the broker accepts one. Only
loopback brokers are attacked: the point is to show the weakness on a broker you run, never
to test someone else's.
"""

import ipaddress
import socket
import time
from dataclasses import replace
from pathlib import Path

from splitleak.broker.urls import BrokerConnectError, connect, make_client, parse_url


def loopback(host: str) -> bool:
    """Whether every address `host` resolves to is this machine's loopback."""
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def read_words(path) -> list[str]:
    """Candidate passwords, one per line; blank lines and lines starting with # skipped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"word list {path} does not exist")
    words = [w.strip() for w in path.read_text(encoding="utf-8").splitlines()]
    words = [w for w in words if w and not w.startswith("#")]
    if not words:
        raise ValueError(f"word list {path} holds no candidate (one password per line expected)")
    return words


def guess(url: str, user: str, words: list[str], timeout: float = 5.0) -> dict:
    """Try each word as `user`'s password at `url`; stop at the first the broker accepts."""
    url = parse_url(url)
    if not loopback(url.host):
        raise ValueError(f"refusing to guess passwords at {url.host}: only a broker on this "
                         "machine (127.0.0.1, ::1, localhost) may be attacked")
    if url.tls:
        raise ValueError("guessing over mqtts:// is not supported; use the auth profile's mqtt:// URL")
    start, found, tried = time.monotonic(), None, 0
    for word in words:
        tried += 1
        client = make_client(replace(url, username=user, password=word), f"guess-{tried}")
        try:
            connect(client, timeout, thread=False)
        except BrokerConnectError as exc:
            if exc.reason_code is None:  # unreachable, not a wrong password
                raise
            continue
        client.disconnect()
        found = word
        break
    seconds = time.monotonic() - start
    return {"broker": str(url), "user": user, "tried": tried, "candidates": len(words),
            "found": found is not None, "password": found, "seconds": round(seconds, 3),
            "guesses_per_s": round(tried / seconds, 1) if seconds else None}
