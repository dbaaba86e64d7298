"""Receiving activation frames: strict decoding and rejections counted by reason.

Shared by every subscriber of activations (the cloud head, the eavesdropper, offline replay).
`Rejections` counts bad messages by reason and logs each (reason, node) pair once, so a flood
of junk never floods the log. `FrameInbox` adds a queue for subscribers that let paho's own
network thread receive: it only queues raw messages, the subscriber's thread decodes them.
`NodeTable` holds per-node state for a bounded number of nodes, so a flood of fake node ids
cannot grow a subscriber's memory without bound.
"""

import logging
import queue
from collections import Counter, OrderedDict

from splitleak.broker import topics, wire

MAX_LOGGED = 10_000  # (reason, node) pairs logged once each; later ones are only counted
MAX_NODES = 10_000  # nodes a subscriber keeps state for; the least recently seen goes first


class NodeTable(OrderedDict):
    """node -> state, made by `factory` on a node's first message, for at most `limit` nodes:
    reading a node marks it recently seen; a new node past the limit evicts the least recently
    seen one (counted in `evicted`, the first logged). An evicted node that comes back starts
    afresh."""

    def __init__(self, factory, log: logging.Logger, limit: int = MAX_NODES):
        super().__init__()
        if limit < 1:
            raise ValueError(f"the node limit must be at least 1, got {limit}")
        self.factory, self.log, self.limit, self.evicted = factory, log, limit, 0

    def __getitem__(self, node):
        if node in self:
            self.move_to_end(node)
            return super().__getitem__(node)
        value = self[node] = self.factory()
        if len(self) > self.limit:
            gone, _ = self.popitem(last=False)
            self.evicted += 1
            if self.evicted == 1:
                self.log.warning("more than %d nodes: forgetting the least recently seen (%s "
                                 "first); further evictions are only counted", self.limit, gone)
        return value


class Rejections(Counter):
    """reason -> count; calling it records one rejection and logs the first per (reason, node)."""

    def __init__(self, log: logging.Logger):
        super().__init__()
        self.log = log
        self._logged: set = set()

    def __call__(self, reason: str, node: str, message: str) -> None:
        """Count one rejection (log the first per reason and node); returns None."""
        self[reason] += 1
        if (reason, node) not in self._logged and len(self._logged) < MAX_LOGGED:
            self._logged.add((reason, node))
            self.log.warning("rejected a message from node %s (%s): %s; further ones are only "
                             "counted", node, reason, message)

    def node_of(self, topic: str) -> str | None:
        """The node id in splitleak/<node>/..., or None (counted as "topic") if it has none."""
        try:
            return topics.node_from_topic(topic)
        except ValueError as exc:  # a topic outside splitleak/<node>/...
            return self("topic", "?", str(exc))


def decode_frame(node: str, topic: str, payload: bytes, expect_shape) -> wire.Frame:
    """The frame in a message from `node` on `topic`; WireError if it is not a valid one."""
    frame = wire.decode(payload, expect_shape=expect_shape)
    if frame.node_id != node:
        raise wire.BadNodeId(f"frame says node {frame.node_id!r} but came on {topic}")
    return frame


class FrameInbox:
    def __init__(self, expect_shape: tuple | None, log: logging.Logger):
        self.expect_shape = tuple(expect_shape) if expect_shape is not None else None  # None: any
        self.queue: queue.Queue = queue.Queue()
        self.seen = 0
        self.rejected = Rejections(log)

    def on_message(self, client, userdata, msg) -> None:
        """paho callback: queue the message, nothing else (never blocks the network thread)."""
        self.queue.put((msg.topic, msg.payload))

    def next_batch(self, size: int, timeout: float = 0.1) -> list[tuple[str, bytes]]:
        """Up to `size` queued (topic, payload) pairs; waits `timeout` s for the first."""
        try:
            batch = [self.queue.get(timeout=timeout)]
        except queue.Empty:
            return []
        while len(batch) < size:
            try:
                batch.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def decode(self, topic: str, payload: bytes) -> wire.Frame | None:
        """The frame in a message, or None (counted by reason) if it is not a valid one."""
        self.seen += 1
        if (node := self.rejected.node_of(topic)) is None:
            return None
        try:
            return decode_frame(node, topic, payload, self.expect_shape)
        except wire.WireError as exc:
            return self.rejected(exc.reason, node, str(exc))
