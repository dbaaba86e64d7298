"""The set-up a lab needs, item by item: ✔ or ✘ with the fix. Mosquitto is optional: the
embedded broker (amqtt) is the default everywhere; its client `mosquitto_sub` is not (labs 1 and
3 subscribe with it). Lab 6's network (root, `ip`) is optional: the other labs run without it."""

import platform
import shutil
import sys
import tempfile
from dataclasses import dataclass

from splitleak.cloud.data import ENV_DIR

LAB_EXTRAS = {"edge", "broker", "train"}


@dataclass
class Item:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def check_all(omniglot_dir, web: tuple[str, int]) -> list[Item]:
    """Every item, in the order they are shown."""
    return [check_python(), *check_packages(), check_tflite(), check_omniglot(omniglot_dir),
            check_embedded_broker(), check_mosquitto(), check_mosquitto_sub(),
            check_lab_network(), check_web_port(*web)]


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


def check_python() -> Item:
    """The interpreter against TRAIN_PYTHON: the labs train models, and TensorFlow 2.15.1 needs
    it (the package itself also installs on newer Pythons, for the edge node alone)."""
    from importlib import metadata

    from splitleak.cloud import TRAIN_PYTHON

    have = platform.python_version()
    edge = metadata.metadata("splitleak")["Requires-Python"]
    ok = ".".join(platform.python_version_tuple()[:2]) == TRAIN_PYTHON
    return Item("Python", ok, f"{have} at {sys.executable} (the labs and training need "
                f"{TRAIN_PYTHON})",
                f"use Python {TRAIN_PYTHON} for the labs and training (in a fresh clone, make venv "
                f"PYTHON=python{TRAIN_PYTHON}); Python {edge} runs the edge node alone (docs/pi.md)")


def check_packages() -> list[Item]:
    """Every pinned requirement of the extras a lab uses, against what is installed."""
    from importlib import metadata

    from packaging.requirements import Requirement

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
                          f"{have or 'missing'} (needs {req.specifier or 'any'})",
                          "pip install -e '.[all]' in the project's .venv (make test does it)"))
    return items


def check_tflite() -> Item:
    from splitleak.edge.selfcheck import runtime_name

    try:
        return Item("TFLite runtime", True, runtime_name())
    except ImportError as exc:
        problem, _, fix = str(exc).partition(": ")
        return Item("TFLite runtime", False, problem, fix)


def check_omniglot(omniglot_dir) -> Item:
    from splitleak.cloud.data import resolve_dir
    from splitleak.edge.omniglot import ZIPS

    fix = (f"pass --omniglot-dir DIR or set {ENV_DIR} to a folder holding "
           f"{ZIPS['small1']} and {ZIPS['small2']}")
    directory = resolve_dir(omniglot_dir)
    if directory is None:
        return Item("Omniglot", False, f"no folder given (--omniglot-dir or {ENV_DIR})", fix)
    missing = [ZIPS[s] for s in ("small1", "small2") if not (directory / ZIPS[s]).is_file()]
    if missing:
        return Item("Omniglot", False, f"{directory}: missing {', '.join(missing)}", fix)
    return Item("Omniglot", True, f"{directory} (the lite protocol's two zips)")


def check_embedded_broker() -> Item:
    from splitleak.broker.server import free_port, start_broker

    try:
        with tempfile.TemporaryDirectory() as tmp:
            port = free_port()
            start_broker("amqtt", port=port, directory=tmp).stop()
    except Exception as exc:  # noqa: BLE001 - any failure to start is the finding
        return Item("embedded broker (amqtt)", False, f"did not start: {exc}",
                    "pip install -e '.[all]'; check that 127.0.0.1 accepts local connections")
    return Item("embedded broker (amqtt)", True, f"started and stopped on 127.0.0.1:{port}")


def check_mosquitto() -> Item:
    from splitleak.broker.mosquitto import find_mosquitto

    try:
        return Item("Mosquitto", True, find_mosquitto(), required=False)
    except OSError as exc:
        return Item("Mosquitto", False, "not installed (optional: labs use amqtt)",
                    str(exc).split(": ", 1)[-1], required=False)


def check_mosquitto_sub() -> Item:
    found = shutil.which("mosquitto_sub")
    if found is None:
        return Item("mosquitto_sub (labs 1 and 3)", False, "not installed",
                    "apt-get install mosquitto-clients (Debian, Ubuntu, Raspberry Pi OS)")
    return Item("mosquitto_sub (labs 1 and 3)", True, found)


def check_lab_network() -> Item:
    from splitleak.tools.deploy.netns import NetError, check_can_make

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
