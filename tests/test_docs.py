"""The documentation: the mkdocs site builds with --strict (no broken link or anchor, no page left
out of the navigation), and the README, which GitHub shows rather than mkdocs, links only to files
that exist and keeps its two set-up commands."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

MKDOCS = str(Path(sys.executable).with_name("mkdocs"))
README = REPO / "README.md"


def build(config: Path, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [MKDOCS, "build", "--strict", "--config-file", str(config), "--site-dir", str(site)]
    return subprocess.run(command, cwd=config.parent, capture_output=True, text=True, env=env, timeout=300)


def test_the_site_builds_strictly(tmp_path):
    result = build(REPO / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stderr[-4000:]
    for page in ("index.html", "results.html", "reliability.html", "labs/lab1.html",
                 "labs/instructor/lab1.html"):
        assert (tmp_path / "site" / page).is_file(), page


def test_a_broken_link_fails_the_build(tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(REPO / "docs", copy / "docs")
    shutil.copy(REPO / "mkdocs.yml", copy)
    assert build(copy / "mkdocs.yml", tmp_path / "ok").returncode == 0  # the copy itself is clean
    index = copy / "docs" / "index.md"
    index.write_text(index.read_text(encoding="utf-8") + "\n[gone](results.md#no-such-section)\n",
                     encoding="utf-8")
    result = build(copy / "mkdocs.yml", tmp_path / "broken")
    assert result.returncode != 0 and "no-such-section" in result.stderr


def test_the_readme_links_only_to_files_that_exist():
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [t.split("#", 1)[0] for t in targets if not re.match(r"[a-z]+://", t)]
    assert local, "the README links to the docs"
    missing = [t for t in local if t and not (REPO / t).exists()]
    assert not missing, missing


def test_the_readme_is_a_front_page_with_the_two_setup_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    assert "make demo   #" in text and "make test   #" in text
