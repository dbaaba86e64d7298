"""Receive activation frames from MQTT in batches; count and log (once) what is rejected.

Shared by every subscriber of activations (the cloud head, the eavesdropper): paho's thread
only queues raw messages, the subscriber's own thread drains and decodes them.
"""

import logging
import queue
from collections import Counter

from splitleak.broker import topics, wire


class FrameInbox:
    def __init__(self, expect_shape: tuple, log: logging.Logger):
        self.expect_shape = tuple(expect_shape)
        self.log = log
        self.queue: queue.Queue = queue.Queue()
        self.seen = 0
        self.rejected: Counter = Counter()
        self._logged: set = set()

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
        node = "?"
        try:
            node = topics.node_from_topic(topic)
            frame = wire.decode(payload, expect_shape=self.expect_shape)
            if frame.node_id != node:
                raise wire.BadNodeId(f"frame says node {frame.node_id!r} but came on {topic}")
            return frame
        except wire.WireError as exc:
            self.reject(exc.reason, node, str(exc))
        except ValueError as exc:  # a topic outside splitleak/<node>/...
            self.reject("topic", node, str(exc))
        return None

    def reject(self, reason: str, node: str, message: str) -> None:
        self.rejected[reason] += 1
        if (reason, node) not in self._logged:
            self._logged.add((reason, node))
            self.log.warning("rejected a message from node %s (%s): %s; further ones are only "
                             "counted", node, reason, message)
