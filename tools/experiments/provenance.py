"""Where a row of results comes from: the code on its computation path (a hash), the commit, the
packages, the machine and the date.

CODE names, once, the modules that train, export, query, decode and score: a results folder
records the sha256 over their source, and is stale when the code now hashes differently. The
commit is `git rev-parse HEAD` of the checkout the package runs from (None outside a checkout),
dirty when a tracked .py file differs from it.
"""

import atexit
import hashlib
import os
import platform
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from splitleak.cloud import artifacts

# the source the rows depend on, relative to the package root (the repository in a checkout)
CODE = (
    "cloud/model.py", "cloud/train.py", "cloud/data.py", "cloud/export.py", "cloud/dp.py",
    "cloud/privacy.py", "cloud/nopeek.py", "cloud/callbacks.py", "cloud/config.py",
    "cloud/rundir.py", "cloud/artifacts.py",
    "attack/blackbox.py", "attack/decoders.py", "attack/config.py", "attack/evaluate.py",
    "attack/scoring.py", "attack/metrics.py", "attack/whitebox.py", "attack/train.py",
    "attack/store.py", "attack/grids.py", "attack/replay.py",
    "edge/defences.py", "edge/runtime.py", "edge/omniglot.py",
    "tools/experiments/job.py", "tools/deploy/demo.py",
)
DP = ("cloud/dp.py", "cloud/privacy.py")  # imported by training only under DP-SGD
# a sweep that trains defences in (or scales edge noise by its target) runs these as well
DEFENDED = ("cloud/defended.py", "cloud/train_defended.py", "tools/experiments/frontier.py")
# the network experiment's path: the same, the brokers, the node, the cloud head, the deployment
# that starts them, the lab network and the passive sniffer (--wire), and itself
# (its CODE part is the list its committed results were measured with; it takes the rest of CODE
# when they are next measured)
NETWORK = tuple(f for f in CODE if f not in (
    "cloud/privacy.py", "cloud/rundir.py", "cloud/artifacts.py", "attack/train.py", "attack/store.py",
    "attack/grids.py", "attack/replay.py", "edge/omniglot.py", "tools/deploy/demo.py")) + tuple(
    f"broker/{name}.py" for name in (
    "amqtt_engine", "certs", "inbox", "mosquitto", "profiles", "running", "server", "topics",
    "urls", "wire")) + ("edge/node.py", "cloud/service.py", "tools/experiments/network.py",
                        "tools/deploy/demo.py", "tools/deploy/processes.py",
                        "tools/deploy/netns.py", "attack/sniff.py")
ROOT = Path(__file__).resolve().parents[2]  # holds cloud/, attack/, edge/, tools/
# `bench all` and the lab records measure nearly everything: every module of these folders
BENCH = ("edge", "broker", "cloud", "attack", "tools/bench", "tools/deploy")
# the labs run the node, broker, cloud head, attacks, demo deployment, experiments and commands
# (never a benchmark)
LABS = ("edge", "broker", "cloud", "attack", "tools/deploy", "tools/cli", "tools/labs",
        "tools/experiments")


def code_hash(root: Path = ROOT, files=CODE) -> str:
    """sha256 over each file's path and bytes, in the given order."""
    digest = hashlib.sha256()
    for name in files:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
    return digest.hexdigest()


OFF_PATH = ("docs.py", "provenance.py")  # render the documentation / record provenance only


def modules(folders, root: Path = ROOT) -> tuple[str, ...]:
    """Every .py file under the folders, relative to root, sorted: a path for code_hash. The
    OFF_PATH modules are left out: they compute nothing that is measured."""
    return tuple(sorted(p.relative_to(root).as_posix() for folder in folders
                        for p in (Path(root) / folder).rglob("*.py") if p.name not in OFF_PATH))


TRACE = "SPLITLEAK_TRACE_MODULES"  # a file every splitleak process appends its modules to


def imported(root: Path = ROOT) -> set[str]:
    """This process's splitleak modules, as paths relative to root (those loaded from it)."""
    out = set()
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None) if name.startswith("splitleak.") else None
        if path and path.endswith(".py"):
            try:
                out.add(Path(path).resolve().relative_to(root).as_posix())
            except ValueError:
                continue
    return out


def trace_modules(every: float = 2.0) -> None:
    """When TRACE names a file, append this process's modules to it now, every `every` seconds
    (a node killed with SIGKILL keeps what it had loaded) and at exit."""
    path = os.environ.get(TRACE)
    if not path:
        return
    written: set[str] = set()

    def write() -> None:
        new = imported() - written
        if new:
            with open(path, "a", encoding="utf-8") as out:
                out.write("".join(f"{name}\n" for name in sorted(new)))
            written.update(new)

    def loop() -> None:
        while True:
            time.sleep(every)
            write()

    write()
    atexit.register(write)
    threading.Thread(target=loop, daemon=True, name="trace-modules").start()


def traced(path: Path, root: Path = ROOT, own: bool = True) -> tuple[str, ...]:
    """The modules a trace file names, with this process's (unless not `own`), that exist under
    root, sorted."""
    names = set(Path(path).read_text(encoding="utf-8").split()) if Path(path).is_file() else set()
    mine = imported(root) if own else set()
    return tuple(sorted(n for n in names | mine if (root / n).is_file()))


def file_hash(path: Path) -> str:
    """A module's sha256, short: enough to tell which module changed."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def path_stamp(folders, root: Path = ROOT, files=None) -> dict:
    """The hash of every module under the folders (or of `files`), the folders, and each
    module's own hash: a later check names the modules that changed. A module added later is
    not on the stamped path: the run could not have executed it."""
    files = modules(folders, root) if files is None else tuple(files)
    return {"code_hash": code_hash(root, files), "code_folders": list(folders),
            "code_files": {name: file_hash(root / name) for name in files}}


def stale_path(stamp: dict, root: Path = ROOT) -> str | None:
    """None when the modules a stamp recorded hash as they did; else which changed or went."""
    since = f"since commit {str(stamp.get('commit'))[:7]}"
    if stamp.get("code_files"):
        changed = [name for name, digest in stamp["code_files"].items()
                   if not (root / name).is_file() or file_hash(root / name) != digest]
        return f"{', '.join(changed)} changed {since}" if changed else None
    if not stamp.get("code_folders"):
        return "it records no code hash (run before they were recorded)"
    if code_hash(root, modules(stamp["code_folders"], root)) != stamp["code_hash"]:
        return f"the code under {', '.join(stamp['code_folders'])} changed {since}"
    return None


def git(*args: str, root: Path = ROOT) -> str | None:
    """git's output in `root`, stripped; None outside a checkout or without git."""
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def commit(root: Path = ROOT) -> dict:
    """{"commit": HEAD or None, "dirty": whether tracked .py files differ from it}."""
    head = git("rev-parse", "HEAD", root=root)
    changed = git("diff", "--name-only", "HEAD", "--", "*.py", root=root) if head else None
    return {"commit": head, "dirty": bool(changed)}


def machine() -> dict:
    """The CPU model, its cores, the memory and the system."""
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gib": _memory_gib(),
            "system": f"{platform.system()} {platform.release()} {platform.machine()}"}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def stamp(files=CODE) -> dict:
    """What every row of one sweep run (or one network experiment, files=NETWORK) records about
    where it was computed (taken when the run starts: the code it imported); each row adds its
    own date and duration."""
    return {**commit(), "code_hash": code_hash(files=files), "versions": artifacts.versions(),
            "machine": machine()}


def now() -> str:
    """The UTC date and time, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")
