"""splitleak doctor per OS: the OS is detected from platform facts (so every OS is tested here,
on Linux) and shown first, and each ✘ item's fix is in that OS's terms: apt on Debian, Ubuntu and
WSL, brew on macOS, winget and the py launcher on Windows."""

import json
import sys

import pytest

from splitleak.broker.server import free_port
from splitleak.cloud import TRAIN_PYTHON
from splitleak.cloud.data import ENV_DIR
from splitleak.tools import cli
from splitleak.tools.labs import doctor

PY = TRAIN_PYTHON
DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nID=debian\n'
UBUNTU = 'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nID=ubuntu\nID_LIKE=debian\n'
FEDORA = 'PRETTY_NAME="Fedora Linux 40 (Workstation Edition)"\nID=fedora\n'
HOSTS = {
    "debian": doctor.detect_host("Linux", "x86_64", "Linux version 6.1.0-18-amd64 (gcc)", DEBIAN),
    "wsl": doctor.detect_host("Linux", "x86_64",
                              "Linux version 5.15.153.1-microsoft-standard-WSL2 (gcc)", UBUNTU),
    "fedora": doctor.detect_host("Linux", "aarch64", "Linux version 6.8.5 (gcc)", FEDORA),
    "macos-arm64": doctor.detect_host("Darwin", "arm64"),
    "macos-x86_64": doctor.detect_host("Darwin", "x86_64"),
    "windows": doctor.detect_host("Windows", "AMD64"),
}
URLS = [f"https://github.com/brendenlake/omniglot/raw/master/python/images_background_small{i}.zip"
        for i in (1, 2)]


def test_each_os_is_told_apart_from_its_platform_facts():
    kinds = {name: (h.kind, h.wsl) for name, h in HOSTS.items()}
    assert kinds == {"debian": ("debian", False), "wsl": ("debian", True),
                     "fedora": ("linux", False), "macos-arm64": ("macos", False),
                     "macos-x86_64": ("macos", False), "windows": ("windows", False)}
    assert HOSTS["debian"].label == "Debian GNU/Linux 12 (bookworm) x86_64"
    assert HOSTS["wsl"].label == "Ubuntu 22.04.4 LTS x86_64 under WSL"
    assert HOSTS["macos-arm64"].label == "macOS arm64 (Apple silicon)"
    assert HOSTS["macos-x86_64"].label == "macOS x86_64 (Intel)"
    assert HOSTS["windows"].label.startswith("Windows AMD64 (native")
    assert doctor.detect_host("Linux", "x86_64").kind == "linux"  # no /etc/os-release


@pytest.mark.parametrize(("host", "install", "venv"), [
    ("debian", f"sudo apt-get install python{PY} python{PY}-venv", f"make venv PYTHON=python{PY}"),
    ("wsl", f"sudo apt-get install python{PY} python{PY}-venv", f"make venv PYTHON=python{PY}"),
    ("fedora", f"install Python {PY} and its venv module", f"make venv PYTHON=python{PY}"),
    ("macos-arm64", f"brew install python@{PY}", f"make venv PYTHON=python{PY}"),
    ("macos-x86_64", f"brew install python@{PY}", f"make venv PYTHON=python{PY}"),
    ("windows", f"winget install Python.Python.{PY}", f"py -{PY} -m venv .venv"),
])
def test_a_wrong_python_is_fixed_in_the_terms_of_each_os(monkeypatch, host, install, venv):
    monkeypatch.setattr(doctor.platform, "python_version", lambda: "3.13.0")
    monkeypatch.setattr(doctor.platform, "python_version_tuple", lambda: ("3", "13", "0"))
    item = doctor.check_python(HOSTS[host])
    assert not item.ok and install in item.fix and venv in item.fix and "\n" not in item.fix
    other = {"debian": "apt-get", "macos": "brew ", "windows": "winget"}
    assert not [word for kind, word in other.items() if kind != HOSTS[host].kind and word in item.fix]


@pytest.mark.parametrize("host", HOSTS)
def test_missing_omniglot_says_where_to_get_the_zips_and_where_to_put_them(tmp_path, host):
    item = doctor.check_omniglot(tmp_path / "nowhere", HOSTS[host])
    assert not item.ok and "images_background_small1.zip" in item.detail
    assert item.fix.startswith("pass --omniglot-dir DIR or ") and "\n" not in item.fix
    assert all(url in item.fix for url in URLS) and "tensorflow-datasets' omniglot" in item.fix
    if host == "windows":
        assert f'$env:{ENV_DIR} = "DIR"' in item.fix and "curl.exe -L -O" in item.fix
    else:
        assert f"export {ENV_DIR}=DIR" in item.fix and "curl -L -O" in item.fix


def test_no_folder_at_all_names_both_settings_and_the_download(monkeypatch):
    monkeypatch.delenv(ENV_DIR, raising=False)
    item = doctor.check_omniglot(None, HOSTS["macos-arm64"])
    assert not item.ok and "--omniglot-dir" in item.detail and f"${ENV_DIR}" in item.detail
    assert "tensorflow-datasets" in item.detail


@pytest.mark.parametrize(("host", "mosquitto", "mosquitto_sub"), [
    ("debian", "sudo apt-get install mosquitto mosquitto-clients",
     "sudo apt-get install mosquitto-clients"),
    ("macos-arm64", "brew install mosquitto", "brew install mosquitto"),
    ("windows", "the embedded broker (amqtt) is the default", "WSL2"),
])
def test_mosquitto_is_optional_and_installed_the_way_of_each_os(monkeypatch, host, mosquitto,
                                                                mosquitto_sub):
    monkeypatch.setattr(doctor.shutil, "which", lambda *args, **kwargs: None)  # shared by both
    broker, client = doctor.check_mosquitto(HOSTS[host]), doctor.check_mosquitto_sub(HOSTS[host])
    assert not broker.ok and not broker.required and mosquitto in broker.fix
    assert not client.ok and client.required and mosquitto_sub in client.fix


@pytest.mark.parametrize("host", ["macos-arm64", "macos-x86_64", "windows"])
def test_the_lab_network_needs_linux(host):
    item = doctor.check_lab_network(HOSTS[host])
    assert not item.ok and not item.required and "Linux network namespaces" in item.detail
    assert "Linux VM" in item.fix and ("WSL2" in item.fix) == (host == "windows")


def test_without_a_runtime_intel_macos_is_sent_to_tensorflow(monkeypatch):
    for name in ("ai_edge_litert", "ai_edge_litert.interpreter", "tflite_runtime",
                 "tflite_runtime.interpreter", "tensorflow", "tensorflow.lite.python.interpreter"):
        monkeypatch.setitem(sys.modules, name, None)
    intel, arm = (doctor.check_tflite(HOSTS[h]) for h in ("macos-x86_64", "macos-arm64"))
    assert not intel.ok and intel.detail == "no TFLite interpreter" and "tf.lite" in intel.fix
    assert ".venv/bin/pip install -e '.[all]'" in intel.fix and "tf.lite" not in arm.fix
    windows = doctor.check_tflite(HOSTS["windows"])
    assert windows.fix == '.venv\\Scripts\\pip install -e ".[all]"'


def test_the_tensorflow_fallback_passes_and_says_so(monkeypatch):
    for name in ("ai_edge_litert", "ai_edge_litert.interpreter", "tflite_runtime",
                 "tflite_runtime.interpreter"):
        monkeypatch.setitem(sys.modules, name, None)
    item = doctor.check_tflite(HOSTS["macos-x86_64"])
    assert item.ok and item.detail.startswith("tensorflow ") and "tf.lite" in item.detail


def test_this_machine_shows_its_os_first_and_passes_as_before(capsys, omniglot_dir, tmp_path):
    here = doctor.this_host()
    assert here.kind in ("debian", "linux")  # tests run on Linux
    web = f"127.0.0.1:{free_port()}"
    assert cli.main(["doctor", "--json", "--omniglot-dir", str(omniglot_dir), "--web", web]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and report["os"]["label"] == here.label
    assert report["items"][0] == {"name": "OS", "ok": True, "detail": here.label, "fix": "",
                                  "required": True}
    assert cli.main(["doctor", "--omniglot-dir", str(tmp_path), "--web", web]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"✔ OS: {here.label}\n") and "✘ Omniglot" in out
