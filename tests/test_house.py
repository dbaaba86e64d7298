"""The shape of the code: import-linter's contracts (pyproject.toml) hold, and break when a module
imports across them; run-folder file names appear only in cloud/rundir.py."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from splitleak.cloud import rundir
from tests.conftest import REPO

PACKAGES = ("edge", "broker", "cloud", "attack", "tools")
LINT = [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"]


def lint(cwd: Path, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(LINT, cwd=cwd, capture_output=True, text=True, env=env, timeout=120)


def test_import_contracts_hold():
    result = lint(REPO)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "Contracts: 4 kept, 0 broken." in result.stdout


@pytest.fixture
def tree_copy(tmp_path):
    """A copy of the source, laid out as installed (a namespace package `splitleak`) and imported
    ahead of the installed one."""
    package = tmp_path / "src" / "splitleak"
    package.mkdir(parents=True)
    for name in PACKAGES:
        shutil.copytree(REPO / name, package / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    env = {"PYTHONPATH": str(tmp_path / "src"), "PATH": "/usr/bin:/bin"}
    return tmp_path, package, env


@pytest.mark.parametrize("module, line, broken", [
    ("edge/node.py", "from splitleak.cloud import rundir", "The edge runs without the cloud"),
    ("edge/runtime.py", "import tensorflow", "The edge runs without the cloud"),
    ("cloud/rundir.py", "from splitleak.attack import store", "Layers"),
    ("tools/deploy/demo.py", "from splitleak.tools.cli import options", "Nothing imports the command line"),
    ("broker/running.py", "from splitleak.broker import server", "No import cycles"),
])
def test_a_deliberate_violation_breaks_its_contract(tree_copy, module, line, broken):
    root, package, env = tree_copy
    assert lint(root, env).returncode == 0  # the copy itself is clean
    path = package / module
    path.write_text(f"def _violation():\n    {line}\n\n\n" + path.read_text())  # lazy imports count
    result = lint(root, env)
    assert result.returncode != 0
    broken_lines = [x for x in result.stdout.splitlines() if x.endswith(" BROKEN")]
    assert len(broken_lines) >= 1 and any(x.startswith(broken) for x in broken_lines), result.stdout


def _literals(tree: ast.AST):
    """String constants in code (docstrings left out), with their line numbers."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def test_run_folder_names_are_typed_only_in_rundir():
    names = (rundir.MOBILE_TFLITE, rundir.MOBILE_INT8, rundir.MOBILE_KERAS, rundir.HEAD_KERAS,
             rundir.METRICS, rundir.MANIFEST, rundir.DECODER, rundir.HISTORY, rundir.EVAL)
    found = []
    for name in PACKAGES:
        for path in sorted((REPO / name).rglob("*.py")):
            if path == REPO / "cloud" / "rundir.py":
                continue
            for lineno, text in _literals(ast.parse(path.read_text())):
                if any(n in text for n in names):
                    found.append(f"{path.relative_to(REPO)}:{lineno}: {text!r}")
    assert not found, "\n".join(found)
