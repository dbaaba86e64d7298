import json

import pytest

from splitleak.tools.cli import COMMANDS, build_parser
from tests.conftest import splitleak


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: splitleak {command}" in capsys.readouterr().out


def test_bench_tflite_json(tiny_run):
    result = splitleak("bench", "tflite", tiny_run, "--runs", 5, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert set(report["results"]) == {"keras", "mobile.tflite", "mobile_int8.tflite"}
    assert all(r["median_ms"] > 0 and r["runs"] == 5 for r in report["results"].values())


def test_bench_missing_run_dir(tmp_path):
    result = splitleak("bench", "tflite", tmp_path / "nope")
    assert result.returncode == 2 and "has no mobile.tflite" in result.stderr
