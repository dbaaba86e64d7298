"""splitleak doctor: every required item passes here; a missing Omniglot folder and a port in
use are reported as ✘ with their fix, and the exit status says not ready."""

import json
import re
import socket
import tomllib

from packaging.specifiers import SpecifierSet

from splitleak.broker.server import free_port
from splitleak.cloud import TRAIN_PYTHON
from splitleak.tools import cli
from splitleak.tools.labs import doctor
from tests.conftest import REPO


def _doctor(capsys, *args) -> tuple[int, dict]:
    rc = cli.main(["doctor", "--json", *map(str, args)])
    return rc, json.loads(capsys.readouterr().out)


def _item(report: dict, name: str) -> dict:
    return next(i for i in report["items"] if i["name"] == name)


def test_this_machine_is_ready(capsys, omniglot_dir):
    rc, report = _doctor(capsys, "--omniglot-dir", omniglot_dir, "--web",
                         f"127.0.0.1:{free_port()}")
    failed = [i for i in report["items"] if i["required"] and not i["ok"]]
    assert rc == 0 and report["passed"] and not failed, failed
    assert _item(report, "embedded broker (amqtt)")["ok"]
    assert any(i["name"] == "package tensorflow" for i in report["items"])


def test_missing_omniglot_and_a_busy_port_are_reported_with_their_fix(capsys, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        rc, report = _doctor(capsys, "--omniglot-dir", tmp_path / "nowhere", "--web",
                             f"127.0.0.1:{port}")
    assert rc == 1 and not report["passed"]
    omniglot, web = _item(report, "Omniglot"), _item(report, "live page port")
    assert not omniglot["ok"] and "images_background_small1.zip" in omniglot["detail"]
    assert "--omniglot-dir" in omniglot["fix"]
    assert not web["ok"] and "already in use" in web["detail"] and "--web" in web["fix"]


def test_the_text_report_marks_each_item(capsys, tmp_path):
    rc = cli.main(["doctor", "--omniglot-dir", str(tmp_path), "--web", f"127.0.0.1:{free_port()}"])
    out = capsys.readouterr().out
    assert rc == 1 and "✘ Omniglot" in out and "    fix: pass --omniglot-dir" in out
    assert "✔ embedded broker (amqtt)" in out and out.rstrip().endswith("fix the ✘ items above")


def test_a_newer_python_installs_the_edge_but_fails_the_doctor(monkeypatch):
    assert doctor.check_python().ok  # the project's .venv
    monkeypatch.setattr(doctor.platform, "python_version", lambda: "3.13.0")
    monkeypatch.setattr(doctor.platform, "python_version_tuple", lambda: ("3", "13", "0"))
    item = doctor.check_python()
    assert not item.ok and f"need {TRAIN_PYTHON}" in item.detail
    assert f"PYTHON=python{TRAIN_PYTHON}" in item.fix and "docs/pi.md" in item.fix


def test_the_training_python_is_the_one_the_build_files_name():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert SpecifierSet(project["project"]["requires-python"]).contains(TRAIN_PYTHON + ".0")
    assert project["tool"]["ruff"]["target-version"] == "py" + TRAIN_PYTHON.replace(".", "")
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^PYTHON \?= (\S+)$", makefile, re.M).group(1) == f"python{TRAIN_PYTHON}"


def test_without_mosquitto_sub_the_doctor_fails_and_names_mosquitto_clients(monkeypatch):
    monkeypatch.setattr(doctor.shutil, "which", lambda name: None)
    item = doctor.check_mosquitto_sub()
    assert not item.ok and item.required and "apt-get install mosquitto-clients" in item.fix


def test_the_lab_network_is_optional_and_says_what_it_lacks(monkeypatch):
    from splitleak.tools.deploy import netns

    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    item = doctor.check_lab_network()
    assert not item.ok and not item.required and "sudo" in item.fix
