"""The labs' recorded figures in the instructor notes, generated, never typed.

A block `<!-- lab:labN -->` … `<!-- /lab:labN -->` in README.md or docs/**/*.md is the table of
docs/results/labs/labN.json (written by `splitleak lab record N`, tools/labs/record.py): the
reference run and the spread over the students. `splitleak lab docs` rewrites every block; a test
fails when one differs from its record.
"""

import re
from pathlib import Path

from splitleak.cloud import artifacts
from splitleak.tools import blocks as generated
from splitleak.tools.labs import record

CHECKOUT = Path(__file__).resolve().parents[2]
RECORDS = "docs/results/labs"  # labN.json, relative to the checkout
TAG = "lab"
DOCS_COMMAND = "splitleak lab docs"


def validate(name: str) -> None:
    if not re.fullmatch(r"lab[1-9]", name):
        raise ValueError(f"unknown lab block {name!r}: expected labN")


def generate(name: str, root: Path = CHECKOUT) -> str:
    shown = f"{RECORDS}/{name}.json"
    if not (Path(root) / shown).is_file():
        raise ValueError(f"no lab record {shown}: `splitleak lab record {name[3:]} --students ID "
                         f"ID ID --out {shown}` writes one")
    return record.table(artifacts.read_json(Path(root) / shown), shown)


def render_files(root: Path = CHECKOUT, check: bool = False) -> dict:
    """Rewrite the lab blocks of README.md and docs/**/*.md from the committed records; with
    `check`, write nothing and fail (`passed` false) when one is out of date."""
    count, changed = generated.render_files(root, TAG, lambda n: generate(n, root), validate,
                                            check)
    return {"blocks": count, "changed": changed, "passed": not (check and changed)}


def describe(r: dict) -> str:
    said = f"{r['blocks']} generated lab block{'s' * (r['blocks'] != 1)}: "
    if not r["changed"]:
        return said + "all up to date"
    verb = "out of date in" if not r["passed"] else "rewrote"
    return said + f"{verb} {', '.join(r['changed'])}" + (
        f" (`{DOCS_COMMAND}` rewrites them)" if not r["passed"] else "")
