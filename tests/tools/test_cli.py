import argparse
import json

import pytest

from splitleak.cloud import rundir
from splitleak.tools.cli import build_parser
from tests.conftest import splitleak


def command_paths(parser, prefix=()):
    """Every (sub)command path of the CLI, nested ones included: ("attack", "live"), …"""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from command_paths(sub, (*prefix, name))


PATHS = list(command_paths(build_parser()))


def test_the_cli_has_its_commands():
    assert {("attack", "live"), ("bench", "pipeline"), ("edge",), ("broker",)} <= set(PATHS)


@pytest.mark.parametrize("path", PATHS, ids=" ".join)
def test_every_subcommand_has_help(path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*path, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: splitleak {' '.join(path)}" in capsys.readouterr().out


def test_bench_tflite_json(tiny_run):
    result = splitleak("bench", "tflite", tiny_run, "--runs", 5, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert set(report["results"]) == {"keras", *(f"{m} x{t}" for t in (1, 2) for m in (
        rundir.MOBILE_TFLITE, rundir.MOBILE_INT8, "int8 built-in kernels"))}
    assert all(r["median_ms"] > 0 and r["runs"] == 5 for r in report["results"].values())
    assert report["runtime"].startswith(("ai-edge-litert ", "tflite-runtime "))
    assert report["int8_over_float32"] > 0 and report["int8_builtin_over_float32"] > 0
    # TensorFlow was imported (Keras timing): no GPU-library chatter on a machine without one
    noise = [w for w in ("cuDNN", "cuFFT", "cuBLAS", "TensorRT", "CUDA") if w in result.stderr]
    assert not noise, result.stderr[-2000:]


def test_bench_missing_run_dir(tmp_path):
    result = splitleak("bench", "tflite", tmp_path / "nope")
    assert result.returncode == 2 and "has no mobile.tflite" in result.stderr


def test_edge_and_cloud_take_a_login_from_the_environment(monkeypatch):
    from splitleak.tools.cli import cloud as cmd_cloud
    from splitleak.tools.cli.options import broker_from

    monkeypatch.setenv("SPLITLEAK_MQTT_USER", "pi-01")
    monkeypatch.setenv("SPLITLEAK_MQTT_PASSWORD", "s3cret")
    edge = build_parser().parse_args(["edge", "--model", "m.tflite", "--broker", "mqtts://lap.lan"])
    assert broker_from(edge) == "mqtts://pi-01:s3cret@lap.lan:8883"
    cloud = build_parser().parse_args(["cloud", "--run", "r", "--broker", "mqtt://u:pw@h"])
    assert cmd_cloud.broker_url(cloud) == "mqtt://u:pw@h:1883"  # a user in the URL wins


def test_command_defaults_come_from_the_library():
    """Each default is defined once: the edge's in EdgeConfig, the MQTT versions in broker/urls,
    the white-box limit and decoder epochs in attack/config, the run folders in cloud/rundir."""
    from splitleak.attack.config import WHITEBOX_IMAGES
    from splitleak.attack.config import TrainConfig as DecoderConfig
    from splitleak.broker import urls
    from splitleak.edge.node import EdgeConfig
    from splitleak.tools.experiments.settings import Setting

    parser = build_parser()
    edge = parser.parse_args(["edge", "--model", "m.tflite"])
    config = EdgeConfig(model="m.tflite", broker="mqtt://h")
    assert (edge.node_id, edge.rate, edge.fleet, edge.wait, edge.mqtt) == (
        config.node_id, config.rate, config.fleet, config.prediction_timeout, config.protocol)
    live = parser.parse_args(["attack", "live", "--broker", "mqtt://h"])
    assert live.mqtt == urls.DEFAULT_MQTT and urls.DEFAULT_MQTT in urls.MQTT_VERSIONS
    whitebox = parser.parse_args(["attack", "whitebox", "--run", "r"])
    assert whitebox.limit == WHITEBOX_IMAGES == Setting("x").whitebox_limit
    assert parser.parse_args(["attack", "train", "--target", "t"]).epochs == DecoderConfig.epochs
    assert Setting("x").attack_epochs == DecoderConfig.epochs
    demo = parser.parse_args(["demo", "--split-after", "2"])
    assert rundir.pick_run(demo.run, demo.split_after) == (rundir.default_run_dir(split_after=2), 2)
    assert rundir.default_attack_dir(2).name == rundir.default_run_dir(split_after=2).name.replace(
        "lite", "attack-lite")
