"""Run directories: written atomically, described by a manifest of hashes and versions."""

import json
import platform
import shutil
import tempfile
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from splitleak.edge.runtime import sha256_file

PACKAGES = ("splitleak", "tensorflow", "tensorflow-privacy", "tensorflow-datasets", "numpy",
            "tflite-runtime", "paho-mqtt")


@contextmanager
def atomic_dir(out, force: bool = False):
    """Yield a temporary folder beside `out`; move it to `out` only if the block succeeds."""
    out = Path(out)
    if out.exists() and not force:
        raise FileExistsError(f"{out} already exists; pass --force to replace it")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    except OSError as exc:
        raise PermissionError(f"cannot write to {parent}: {exc.strerror or exc}") from exc
    try:
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def versions(packages=PACKAGES) -> dict:
    """Python's version and each installed package's (missing ones left out)."""
    found = {"python": platform.python_version()}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def hash_artifacts(folder) -> dict:
    """sha256 of every file in a folder (not recursing), by file name: called before the
    manifest that lists them is written."""
    return {p.name: sha256_file(p) for p in sorted(Path(folder).iterdir()) if p.is_file()}


def write_json(path, data) -> None:
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_json(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; is {path.parent} a splitleak run directory?")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc})") from exc
