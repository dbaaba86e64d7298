"""MQTT topic names: one place that knows how a node id becomes a topic.

    splitleak/<node>/activations   edge -> cloud   wire frames (see `wire`), QoS 1
    splitleak/<node>/predictions   cloud -> edge   JSON predictions, QoS 1
    splitleak/<node>/status        edge            retained JSON (wire.encode_status): online with
                                                   the model hash; the last will says offline

A node id is one topic level: 1-64 bytes of UTF-8, printable, no whitespace and none of
the MQTT special characters '/', '+', '#'.
"""

PREFIX = "splitleak"
KINDS = ("activations", "predictions", "status")
MAX_NODE_ID_BYTES = 64

ALL_ACTIVATIONS = f"{PREFIX}/+/activations"
ALL_PREDICTIONS = f"{PREFIX}/+/predictions"
ALL_STATUS = f"{PREFIX}/+/status"


def shared(group: str, topic_filter: str) -> str:
    """An MQTT 5 shared subscription: the broker gives each message to one member of `group`."""
    if not group or any(c in group for c in "/+#") or any(c.isspace() for c in group):
        raise ValueError(f"share group {group!r} must be one topic level: no '/', '+', '#' or "
                         "whitespace")
    return f"$share/{group}/{topic_filter}"


def check_node_id(node: str) -> str:
    """Return `node` unchanged if it is a valid node id, else raise ValueError saying why."""
    if not isinstance(node, str) or not node:
        raise ValueError("node id must be a non-empty string")
    if len(node.encode("utf-8", "surrogatepass")) > MAX_NODE_ID_BYTES:
        raise ValueError(f"node id {node[:20]!r}... is longer than {MAX_NODE_ID_BYTES} bytes")
    bad = [c for c in node if c in "/+#" or c.isspace() or not c.isprintable()]
    if bad:
        raise ValueError(f"node id {node!r} contains {bad[0]!r}: use letters, digits, '-', '_', '.'")
    try:
        node.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"node id {node!r} is not valid UTF-8") from None
    return node


def activations(node: str) -> str:
    """Topic where `node` publishes its activation frames."""
    return f"{PREFIX}/{check_node_id(node)}/activations"


def predictions(node: str) -> str:
    """Topic where the cloud head publishes predictions for `node`."""
    return f"{PREFIX}/{check_node_id(node)}/predictions"


def status(node: str) -> str:
    """Retained online/offline status of `node`."""
    return f"{PREFIX}/{check_node_id(node)}/status"


def parse_topic(topic: str) -> tuple[str, str]:
    """(node id, kind) of a splitleak topic, kind one of KINDS; ValueError for any other topic."""
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != PREFIX or parts[2] not in KINDS:
        raise ValueError(f"{topic!r} is not a splitleak topic ({PREFIX}/<node>/<kind>)")
    return check_node_id(parts[1]), parts[2]


def node_from_topic(topic: str) -> str:
    """The node id in a splitleak topic; ValueError for any other topic."""
    return parse_topic(topic)[0]

