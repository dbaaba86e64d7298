"""CITATION.cff is valid CFF 1.2.0 (cffconvert, the format's own validator) and agrees with
pyproject.toml and LICENSE on the version and the licence."""

import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from tests.conftest import REPO

CFFCONVERT = str(Path(sys.executable).with_name("cffconvert"))
CITATION = REPO / "CITATION.cff"


def validate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CFFCONVERT, "--validate", "--infile", str(path)],
                          capture_output=True, text=True, timeout=120)


def test_citation_cff_is_valid():
    result = validate(CITATION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid according to schema version 1.2.0" in result.stdout


def test_the_validator_rejects_a_broken_file(tmp_path):
    broken = tmp_path / "CITATION.cff"
    text = CITATION.read_text(encoding="utf-8")
    broken.write_text(text.replace("cff-version: 1.2.0", "cff-version: 1.2.0\nnot-a-cff-key: x"),
                      encoding="utf-8")
    assert validate(broken).returncode != 0


def test_citation_agrees_with_pyproject_and_license():
    citation = yaml.safe_load(CITATION.read_text(encoding="utf-8"))
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert str(citation["version"]) == project["version"]
    assert citation["license"] == project["license"]["text"] == "MIT"
    license_text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert license_text.startswith("MIT License") and "the splitleak authors" in license_text
    titles = [ref["title"] for ref in citation["references"]]
    assert "Hacking deep learning: model inversion attack by example" in titles
    assert "Model inversion attacks against collaborative inference" in titles
