"""NodeTable: per-node state for a bounded number of nodes, least recently seen evicted first."""

import logging

import pytest

from splitleak.broker.inbox import NodeTable


def test_a_node_table_keeps_the_most_recently_seen_nodes_and_counts_evictions(caplog):
    table = NodeTable(int, logging.getLogger("test"), limit=3)
    for node in "abc":
        table[node] += 1
    table["a"] += 1  # seen again: now the most recent
    with caplog.at_level(logging.WARNING):
        for node in "def":
            table[node] += 1
    assert list(table) == ["d", "e", "f"] and table.evicted == 3
    table["a"] += 1  # evicted: it starts afresh
    assert table["a"] == 1 and list(table) == ["e", "f", "a"] and table.evicted == 4
    assert [r.message for r in caplog.records].count(
        "more than 3 nodes: forgetting the least recently seen (b first); further evictions "
        "are only counted") == 1


def test_a_node_table_needs_room_for_one_node():
    with pytest.raises(ValueError, match="at least 1"):
        NodeTable(int, logging.getLogger("test"), limit=0)
