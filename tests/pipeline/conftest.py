"""Fixtures for the pipeline tests: deployments that always stop."""

import json
import shutil
from pathlib import Path

import pytest

from splitleak.cloud import rundir
from splitleak.tools.deploy.demo import Deployment


@pytest.fixture
def deploy(tiny_run):
    """deploy(engine, profile="open", **kw) -> Deployment of tiny_run; all stopped at the end."""
    made = []

    def start(engine, profile="open", **kwargs) -> Deployment:
        dep = Deployment(kwargs.pop("run_dir", tiny_run), engine, profile, **kwargs)
        made.append(dep)
        return dep

    yield start
    for dep in made:
        dep.__exit__(None, None, None)


def with_other_int8_hash(run_dir: Path, out: Path) -> Path:
    """A copy of `run_dir` whose manifest expects another mobile_int8.tflite: an edge running
    the real int8 model then has a model the cloud must refuse."""
    shutil.copytree(run_dir, out)
    manifest = json.loads((out / rundir.MANIFEST).read_text())
    manifest["artifacts"][rundir.MOBILE_INT8] = "0" * 64
    (out / rundir.MANIFEST).write_text(json.dumps(manifest))
    return out
