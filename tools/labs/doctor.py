"""The set-up a lab needs, item by item: ✔ or ✘ with the fix in the terms of the OS it runs on
(apt on Debian, Ubuntu and WSL; brew on macOS; winget and the py launcher on Windows), which is
shown first. Mosquitto is optional: the embedded broker (amqtt) is the default everywhere; its
client `mosquitto_sub` is not (labs 1 and 3 subscribe with it). Lab 6's network (Linux network
namespaces, root, `ip`) is optional: the other labs run without it. docs/laptops.md has the
steps per OS."""

import platform
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from splitleak.cloud import TRAIN_PYTHON
from splitleak.cloud.data import ENV_DIR
from splitleak.edge.omniglot import ZIPS

LAB_EXTRAS = {"edge", "broker", "train"}
OMNIGLOT_URL = "https://github.com/brendenlake/omniglot/raw/master/python/"  # the upstream zips


@dataclass(frozen=True)
class Host:
    """The OS the fixes are worded for. `kind`: debian (apt: Debian, Ubuntu, and WSL with
    either), linux (another distribution), macos, windows (native), or other."""
    kind: str
    label: str
    machine: str = ""
    wsl: bool = False


def detect_host(system: str, machine: str, proc_version: str = "", os_release: str = "") -> Host:
    """The host from platform facts: `platform.system()` and `.machine()`, and the text of
    /proc/version and /etc/os-release ("" where they do not exist)."""
    if system == "Darwin":
        chip = "Apple silicon" if machine == "arm64" else "Intel"
        return Host("macos", f"macOS {machine} ({chip})", machine)
    if system == "Windows":
        return Host("windows", f"Windows {machine} (native; WSL2 with Ubuntu is recommended)",
                    machine)
    if system != "Linux":
        return Host("other", f"{system or 'unknown OS'} {machine}".strip(), machine)
    release = dict(line.split("=", 1) for line in os_release.splitlines() if "=" in line)
    release = {key: value.strip().strip('"') for key, value in release.items()}
    family = f"{release.get('ID', '')} {release.get('ID_LIKE', '')}".split()
    wsl = "microsoft" in proc_version.lower()
    label = f"{release.get('PRETTY_NAME') or 'Linux'} {machine}" + (" under WSL" if wsl else "")
    return Host("debian" if {"debian", "ubuntu"} & set(family) else "linux", label, machine, wsl)


def this_host() -> Host:
    return detect_host(platform.system(), platform.machine(), _read("/proc/version"),
                       _read("/etc/os-release"))


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


# Installing Python ({py}) and Mosquitto per kind of host; "linux" stands for any other Linux.
SYSTEM_FIXES = {
    "debian": {"python": "sudo apt-get install python{py} python{py}-venv (where apt has no "
                         "python{py}: docs/laptops.md)",
               "mosquitto": "sudo apt-get install mosquitto mosquitto-clients",
               "mosquitto_sub": "sudo apt-get install mosquitto-clients"},
    "macos": {"python": "brew install python@{py}", "mosquitto": "brew install mosquitto",
              "mosquitto_sub": "brew install mosquitto (it carries mosquitto_sub)"},
    "windows": {"python": "winget install Python.Python.{py}",
                "mosquitto": "nothing to do: the embedded broker (amqtt) is the default",
                "mosquitto_sub": "run the labs in WSL2 (Ubuntu: sudo apt-get install "
                                 "mosquitto-clients); natively, the Mosquitto installer from "
                                 "mosquitto.org carries mosquitto_sub.exe (add its folder to PATH)"},
    "linux": {"python": "install Python {py} and its venv module (your distribution's packages, "
                        "or pyenv)",
              "mosquitto": "install your distribution's mosquitto package",
              "mosquitto_sub": "install your distribution's mosquitto clients package"},
}


def fixes(host: Host) -> dict[str, str]:
    """Each item's fix in the host's terms."""
    py, windows = TRAIN_PYTHON, host.kind == "windows"
    system = {k: v.format(py=py) for k, v in SYSTEM_FIXES.get(host.kind, SYSTEM_FIXES["linux"]).items()}
    pip = ('.venv\\Scripts\\pip install -e ".[all]"' if windows
           else ".venv/bin/pip install -e '.[all]' (make venv does it)")
    venv = (f"py -{py} -m venv .venv, then {pip}" if windows
            else f"in a fresh clone make venv PYTHON=python{py}")
    small = [ZIPS["small1"], ZIPS["small2"]]
    fetch = f"{'curl.exe' if windows else 'curl'} -L " + " ".join(f"-O {OMNIGLOT_URL}{z}" for z in small)
    where = f"set {ENV_DIR} ($env:{ENV_DIR} = \"DIR\" in PowerShell)" if windows else f"export {ENV_DIR}=DIR"
    intel_mac = host.kind == "macos" and host.machine != "arm64"
    return {
        "python": f"use Python {py} for the labs and training: {system['python']}, then {venv}",
        "packages": pip,
        "runtime": pip + ("; TensorFlow's tf.lite is the runtime here (ai-edge-litert has no "
                          "Intel-macOS wheel)" if intel_mac else ""),
        "broker": f"{pip}; check that 127.0.0.1 accepts local connections",
        "omniglot": f"pass --omniglot-dir DIR or {where}, DIR holding the Omniglot repository's "
                    f"{small[0]} and {small[1]} (in DIR: {fetch}); or, online, set neither: "
                    "tensorflow-datasets' omniglot downloads them",
        "mosquitto": system["mosquitto"], "mosquitto_sub": system["mosquitto_sub"],
        "lab_network": "run lab 6 in WSL2 with Ubuntu, or in a Linux VM" if windows
                       else "run lab 6 in a Linux VM (Ubuntu)",
    }


@dataclass
class Item:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def check_all(omniglot_dir, web: tuple[str, int], host: Host | None = None) -> list[Item]:
    """Every item, in the order they are shown: the OS first."""
    host = host or this_host()
    return [Item("OS", True, host.label), check_python(host), *check_packages(host),
            check_tflite(host), check_omniglot(omniglot_dir, host), check_embedded_broker(host),
            check_mosquitto(host), check_mosquitto_sub(host), check_lab_network(host),
            check_web_port(*web)]


def passed(items: list[Item]) -> bool:
    return all(i.ok for i in items if i.required)


def render(items: list[Item]) -> str:
    """One line per item, ✔ or ✘ (– for an optional one) with its fix, then the verdict."""
    lines = []
    for i in items:
        mark = "✔" if i.ok else ("✘" if i.required else "–")
        lines.append(f"{mark} {i.name}: {i.detail}" + (f"\n    fix: {i.fix}" if not i.ok else ""))
    lines.append("ready for the labs" if passed(items) else "not ready: fix the ✘ items above")
    return "\n".join(lines)


def check_python(host: Host | None = None) -> Item:
    """The interpreter against TRAIN_PYTHON: the labs train models, and TensorFlow 2.15.1 needs
    it (the package itself also installs on newer Pythons, for the edge node alone)."""
    from importlib import metadata

    have = platform.python_version()
    edge = metadata.metadata("splitleak")["Requires-Python"]
    ok = ".".join(platform.python_version_tuple()[:2]) == TRAIN_PYTHON
    return Item("Python", ok, f"{have} at {sys.executable} (the labs and training need "
                f"{TRAIN_PYTHON})",
                f"{fixes(host or this_host())['python']}; Python {edge} runs the edge node alone "
                "(docs/pi.md)")


def check_packages(host: Host | None = None) -> list[Item]:
    """Every pinned requirement of the extras a lab uses, against what is installed."""
    from importlib import metadata

    from packaging.requirements import Requirement

    fix = fixes(host or this_host())["packages"]
    items = []
    for text in metadata.requires("splitleak") or []:
        req = Requirement(text)
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in LAB_EXTRAS | {""}):
            continue
        try:
            have = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            have = None
        ok = have is not None and req.specifier.contains(have, prereleases=True)
        items.append(Item(f"package {req.name}", ok,
                          f"{have or 'missing'} (needs {req.specifier or 'any'})", fix))
    return items


def check_tflite(host: Host | None = None) -> Item:
    """The runtime the edge will use; TensorFlow's tf.lite is the full install's fallback."""
    from splitleak.edge.selfcheck import runtime_name

    try:
        name = runtime_name()
    except ImportError as exc:
        problem, _, fix = str(exc).partition(": ")
        if problem == "no TFLite interpreter":
            fix = fixes(host or this_host())["runtime"]
        return Item("TFLite runtime", False, problem, fix)
    if name.startswith("tensorflow "):
        name += " (its tf.lite: neither ai-edge-litert nor tflite-runtime is installed)"
    return Item("TFLite runtime", True, name)


def check_omniglot(omniglot_dir, host: Host | None = None) -> Item:
    """The lite protocol's two zips, in the folder cloud/data.py would read."""
    from splitleak.cloud.data import resolve_dir

    fix = fixes(host or this_host())["omniglot"]
    directory = resolve_dir(omniglot_dir)
    if directory is None:
        return Item("Omniglot", False, f"no folder given (--omniglot-dir, else ${ENV_DIR}; with "
                    "neither, tensorflow-datasets downloads Omniglot, online only)", fix)
    missing = [ZIPS[s] for s in ("small1", "small2") if not (directory / ZIPS[s]).is_file()]
    if missing:
        return Item("Omniglot", False, f"{directory}: missing {', '.join(missing)}", fix)
    return Item("Omniglot", True, f"{directory} (the lite protocol's two zips)")


def check_embedded_broker(host: Host | None = None) -> Item:
    from splitleak.broker.server import free_port, start_broker

    try:
        with tempfile.TemporaryDirectory() as tmp:
            port = free_port()
            start_broker("amqtt", port=port, directory=tmp).stop()
    except Exception as exc:  # noqa: BLE001 - any failure to start is the finding
        return Item("embedded broker (amqtt)", False, f"did not start: {exc}",
                    fixes(host or this_host())["broker"])
    return Item("embedded broker (amqtt)", True, f"started and stopped on 127.0.0.1:{port}")


def check_mosquitto(host: Host | None = None) -> Item:
    from splitleak.broker.mosquitto import find_mosquitto

    try:
        return Item("Mosquitto", True, find_mosquitto(), required=False)
    except OSError:
        return Item("Mosquitto", False, "not installed (optional: labs use amqtt)",
                    fixes(host or this_host())["mosquitto"], required=False)


def check_mosquitto_sub(host: Host | None = None) -> Item:
    found = shutil.which("mosquitto_sub")
    if found is None:
        return Item("mosquitto_sub (labs 1 and 3)", False, "not installed",
                    fixes(host or this_host())["mosquitto_sub"])
    return Item("mosquitto_sub (labs 1 and 3)", True, found)


def check_lab_network(host: Host | None = None) -> Item:
    """Lab 6 makes Linux network namespaces: elsewhere, WSL2 or a Linux VM."""
    from splitleak.tools.deploy.netns import NetError, check_can_make

    host = host or this_host()
    if host.kind not in ("debian", "linux"):
        return Item("lab network (lab 6)", False, "needs Linux network namespaces (and root)",
                    fixes(host)["lab_network"], required=False)
    try:
        check_can_make()
    except NetError as exc:
        return Item("lab network (lab 6)", False, str(exc).split(": ", 1)[0],
                    str(exc).split(": ", 1)[-1], required=False)
    return Item("lab network (lab 6)", True, "root and ip: network namespaces can be made",
                required=False)


def check_web_port(host: str, port: int) -> Item:
    from splitleak.broker.server import check_port_free

    try:
        check_port_free(host, port)
    except OSError as exc:
        return Item("live page port", False, exc.strerror or str(exc),
                    f"stop what listens on {host}:{port}, or pass --web HOST:PORT to the lab "
                    "commands (and here)")
    return Item("live page port", True, f"{host}:{port} is free")
