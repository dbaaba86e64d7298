"""The systemd unit for the edge node (edge/systemd): unprivileged, restarted on failure, after
the network, settings from a root-only file, and a command line that `splitleak edge` accepts
and that carries no password (any local user can read a process's arguments)."""

import configparser
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from splitleak.broker import urls
from splitleak.tools import cli
from tests.conftest import REPO

UNIT = REPO / "edge/systemd/splitleak-edge.service"
EXAMPLE = REPO / "edge/systemd/splitleak-edge.env.example"


def service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser


def example_env() -> dict[str, str]:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def exec_start_argv() -> list[str]:
    """ExecStart with the example's ${VAR}s substituted, each as one argument (as systemd does)."""
    env = example_env()
    words = shlex.split(service()["Service"]["ExecStart"])
    return [re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], word) for word in words]


def test_the_unit_runs_unprivileged_after_the_network_and_restarts_on_failure():
    unit = service()
    assert unit["Service"]["User"] not in ("", "root", "0")
    assert unit["Service"]["EnvironmentFile"] == "/etc/splitleak/edge.env"
    assert unit["Service"]["Restart"] == "on-failure" and int(unit["Service"]["RestartSec"]) > 0
    for key in ("After", "Wants"):
        assert "network-online.target" in unit["Unit"][key].split()
    assert unit["Service"]["NoNewPrivileges"] == "yes"
    assert unit["Service"]["ProtectSystem"] == "strict"


def test_exec_start_parses_as_splitleak_edge_and_carries_no_secret():
    argv = exec_start_argv()
    assert argv[0].endswith("/bin/splitleak")
    args = cli.build_parser().parse_args(argv[1:])
    assert args.command == "edge" and not args.check and args.ca and args.credentials is None
    env = example_env()
    assert args.node_id == env["SPLITLEAK_MQTT_USER"]  # tls profile: the user is the node id
    assert urls.parse_url(args.broker).username is None  # the login comes from the environment
    login = urls.login_from_env(args.broker, env)
    assert (login.username, login.password) == (env["SPLITLEAK_MQTT_USER"],
                                                env["SPLITLEAK_MQTT_PASSWORD"])
    assert env["SPLITLEAK_MQTT_PASSWORD"] not in " ".join(argv)
    assert "--password" not in argv and "--credentials" not in argv


def test_every_variable_the_unit_uses_is_in_the_example():
    used = set(re.findall(r"\$\{(\w+)\}", UNIT.read_text(encoding="utf-8")))
    assert used and used <= set(example_env())


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_accepts_the_unit(tmp_path):
    """systemd-analyze verify, with ExecStart pointed at this checkout's splitleak."""
    splitleak = Path(sys.executable).with_name("splitleak")
    if not splitleak.is_file():
        pytest.skip(f"no splitleak script beside {sys.executable}")
    text = UNIT.read_text(encoding="utf-8").replace("/opt/splitleak/venv/bin/splitleak",
                                                    str(splitleak))
    (tmp_path / UNIT.name).write_text(text, encoding="utf-8")
    result = subprocess.run(["systemd-analyze", "verify", str(tmp_path / UNIT.name)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and UNIT.name not in result.stderr, result.stderr


CAMERA = REPO / "edge/systemd/camera.conf"


def with_drop_in(folder: Path) -> Path:
    """The unit with the camera drop-in's [Service] lines appended to its own, as one file."""
    drop_in = CAMERA.read_text(encoding="utf-8").split("[Service]", 1)[1]
    merged = UNIT.read_text(encoding="utf-8").replace("\n[Install]", drop_in + "\n[Install]")
    (folder / UNIT.name).write_text(merged, encoding="utf-8")
    return folder / UNIT.name


def test_the_camera_drop_in_opens_the_camera_devices_only_and_streams_until_stopped(tmp_path):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(CAMERA.read_text(encoding="utf-8"))
    section = parser["Service"]
    assert section["PrivateDevices"] == "no" and section["DevicePolicy"] == "closed"
    allowed = re.findall(r"^DeviceAllow=(\S+) rw$", CAMERA.read_text(encoding="utf-8"), re.M)
    assert allowed == ["char-video4linux", "char-media", "char-dma_heap"]
    assert section["SupplementaryGroups"] == "video" and section["Restart"] == "always"
    lines = [line for line in CAMERA.read_text(encoding="utf-8").splitlines()
             if line.startswith("ExecStart=")]
    assert lines[0] == "ExecStart="  # resets the unit's command, then the camera's
    env = example_env() | {"SPLITLEAK_SOURCE": "camera"}
    words = [re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], w) for w in shlex.split(lines[1][10:])]
    args = cli.build_parser().parse_args(words[1:])
    assert args.source == "camera" and args.count is None and args.node_id == "pi-01"
    assert set(re.findall(r"\$\{(\w+)\}", lines[1])) <= set(example_env())


def exposure(unit: Path) -> str:
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit)],
                            capture_output=True, text=True, timeout=60)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
    assert found, result.stdout[-500:] + result.stderr[-500:]
    return found.group(1)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_the_guide_states_the_exposure_systemd_computes(tmp_path):
    alone, camera = exposure(UNIT), exposure(with_drop_in(tmp_path))
    guide = " ".join((REPO / "docs/pi.md").read_text(encoding="utf-8").split())
    assert f"{alone} for the unit alone, {camera} with the camera drop-in" in guide
    assert float(camera) > float(alone)  # the devices it may open now count
