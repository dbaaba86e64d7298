"""Capture files: one MQTT message per line, `<topic> <payload as hex>`.

This is exactly what Mosquitto's own client writes with

    mosquitto_sub -h HOST -p PORT -t 'splitleak/+/activations' -F '%t %x' > capture.txt

so a capture can be made with or without splitleak, and replayed offline
(`splitleak attack eval ATTACK_DIR --from-capture capture.txt`).
"""

from pathlib import Path


def format_line(topic: str, payload: bytes) -> str:
    return f"{topic} {bytes(payload).hex()}\n"


def read(path) -> list[tuple[str, bytes]]:
    """All (topic, payload) pairs in a capture file; ValueError naming the first bad line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"capture file not found: {path}")
    messages = []
    with path.open() as f:
        for number, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            topic, _, hex_payload = line.rpartition(" ")
            try:
                messages.append((topic, bytes.fromhex(hex_payload)))
            except ValueError:
                raise ValueError(f"{path}:{number}: expected '<topic> <hex payload>' as written by "
                                 "mosquitto_sub -F '%t %x'") from None
            if not topic:
                raise ValueError(f"{path}:{number}: no topic before the payload")
    return messages
