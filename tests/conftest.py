"""Shared fixtures: the offline Omniglot copy and one tiny trained run for the whole session."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ENGINES = ["amqtt", "mosquitto"]  # CI and `make test` install Mosquitto: no skipping


def write_pngs(images, folder: Path) -> Path:
    """Images (ink = 1) as upstream-style PNGs, black ink on white: 000.png, 001.png, ..."""
    from splitleak.edge.omniglot import to_png

    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        (folder / f"{i:03d}.png").write_bytes(to_png(image))
    return folder


@pytest.fixture(scope="session")
def omniglot_dir() -> Path:
    """The folder of upstream zips (CI: ../shared/data/omniglot). Tests never download."""
    path = Path(os.environ.get("SPLITLEAK_OMNIGLOT_DIR") or REPO.parent / "shared/data/omniglot")
    if not (path / "images_background_small1.zip").is_file():
        pytest.fail(f"Omniglot zips not found in {path}: set SPLITLEAK_OMNIGLOT_DIR")
    os.environ["SPLITLEAK_OMNIGLOT_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def lite(omniglot_dir):
    from splitleak.cloud.data import load_protocol

    return load_protocol("lite", omniglot_dir)


def splitleak(*args, env=None, timeout=600) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh process, as a user would."""
    return subprocess.run([sys.executable, "-m", "splitleak.tools.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, omniglot_dir) -> Path:
    """A 1-epoch lite run on 96 images: every artifact, in seconds, not a useful model."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    result = splitleak("train", "--protocol", "lite", "--epochs", 1, "--limit", 96, "--out", out)
    assert result.returncode == 0, result.stderr[-2000:]
    return out


@pytest.fixture(scope="session")
def png_source(lite, tmp_path_factory) -> str:
    """`folder:DIR` of 20 validation images as upstream-style PNGs (black ink on white):
    an edge --source that loads in milliseconds, unlike lite-val."""
    return f"folder:{write_pngs(lite.val.images[:20], tmp_path_factory.mktemp('pngs'))}"
