"""The broker stops mid-stream and comes back on the same port and folder (QoS 1 throughout).

Mosquitto persists sessions and queued messages. After SIGTERM (it saves on exit) nothing is
lost. After SIGKILL it restores its last autosave: everything up to it survives, but a message
it acknowledged after that save and had not yet passed on dies with it — a handful at most,
in either direction. amqtt keeps nothing across a restart: the edge's local queue still
delivers every frame to the broker, but frames reaching it before the cloud head has
subscribed again are dropped.
"""


import pytest

import splitleak.broker.mosquitto as mosquitto
from splitleak.tools.deploy.demo import PredictionLog

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
FRAMES, RATE = 300, 100
OUTAGE_S = 0.3 + 1.0 + 0.7  # broker down, the edge's first reconnect delay, slack


def stream_with_restart(dep, png_source, restart, wait=10):
    """Stream FRAMES frames at RATE Hz and call restart() once 50 predictions are back; the
    edge waits up to `wait` s for the last predictions (it is still running at the restart)."""
    cloud = dep.start_cloud("--json")
    answers = PredictionLog(dep.broker.url)
    dep.callback(answers.close)
    edge = dep.start_edge("--node-id", "n", "--count", FRAMES, "--rate", RATE, "--source",
                          png_source, "--json", "--wait", wait)
    assert answers.wait_for(50, timeout=60), f"only {len(answers.labels)} predictions"
    restart()
    assert edge.wait(120) == 0, edge.tail()
    cloud.stop()
    assert "lost the broker" in "".join(edge.output)  # it was mid-stream
    return edge.json(), cloud.json()


def test_mosquitto_sigterm_loses_nothing(deploy, png_source):
    dep = deploy("mosquitto")
    edge, cloud = stream_with_restart(dep, png_source, lambda: dep.restart_broker(pause=0.3))
    assert (edge["sent"], edge["acknowledged"], edge["predictions"]) == (FRAMES,) * 3
    assert cloud["accepted"] == FRAMES and cloud["nodes"]["n"]["frames"] == FRAMES
    assert cloud["gaps"] == 0 and cloud["rejected"] == {}


def test_mosquitto_sigkill_after_a_save_loses_at_most_what_was_in_flight(
        deploy, png_source, monkeypatch):
    monkeypatch.setattr(mosquitto, "AUTOSAVE_SECONDS", 1)
    dep = deploy("mosquitto")

    def kill_after_save():
        mosquitto.wait_for_autosave(dep.directory)
        dep.restart_broker(kill=True, pause=0.3)

    edge, cloud = stream_with_restart(dep, png_source, kill_after_save, wait=5)
    assert edge["sent"] == edge["acknowledged"] == FRAMES
    frames_lost, predictions_lost = cloud["gaps"], FRAMES - edge["predictions"]
    print(f"mosquitto SIGKILL: {frames_lost} frames and {predictions_lost} predictions lost")
    assert cloud["nodes"]["n"]["frames"] == FRAMES - frames_lost  # the stream went on
    assert frames_lost + predictions_lost <= 5


def test_amqtt_restart_the_edge_queue_survives(deploy, png_source):
    dep = deploy("amqtt")
    edge, cloud = stream_with_restart(dep, png_source, lambda: dep.restart_broker(pause=0.3),
                                      wait=5)
    assert edge["sent"] == edge["acknowledged"] == FRAMES  # every frame reached the broker
    answered = cloud["nodes"]["n"]["frames"]
    print(f"amqtt restart: {FRAMES - answered} frames lost, {edge['predictions']} predictions "
          "back at the edge")
    assert cloud["gaps"] == FRAMES - answered  # the stream went on after the loss
    assert answered >= FRAMES - OUTAGE_S * RATE  # at most the outage and the reconnect backoff
    assert edge["predictions"] <= cloud["accepted"] == answered
