"""The labs' recorded figures in the instructor notes, generated, never typed.

A block `<!-- lab:labN -->` … `<!-- /lab:labN -->` in README.md or docs/**/*.md is the table of
docs/results/labs/labN.json (written by `splitleak lab record N`, tools/labs/record.py): the
reference run and the spread over the students (`table`). `splitleak lab docs` rewrites every block; a test
fails when one differs from its record.
"""

import math
import re
from pathlib import Path

from splitleak.cloud import artifacts
from splitleak.tools import blocks as generated

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
    return table(artifacts.read_json(Path(root) / shown), shown)


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


SECONDS = "the lab's commands (s)"


def fmt(label: str, value) -> str:
    """A figure as the notes print it: counts as integers, MSE to 4 decimals, ε, times, spreads
    and signal-to-noise ratios to 2, ranks as they are, other fractions to 3. The figure's own
    name decides (after a setting's "NAME: "), so a setting named "2std" formats as any other."""
    label = label.rsplit(": ", 1)[-1]
    if value is None:
        return "–"
    if isinstance(value, bool) or isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if math.isinf(value):
        return "∞"
    if label == SECONDS:
        return f"{value:.0f}"
    if "rank" in label:
        return f"{value:g}"
    if "MSE" in label:
        return f"{value:.4f}"
    if any(k in label for k in ("ε", "(ms)", "seconds", "std", "SNR")):
        return f"{value:.2f}"
    if "per second" in label:
        return f"{value:.0f}"
    return f"{value:.3f}"


def spread(label: str, values: list) -> str:
    """min – max of numbers (one value when they agree); distinct strings, joined."""
    numbers = [x for x in values if isinstance(x, (int, float)) and not isinstance(x, bool)]
    if len(numbers) == len(values) and numbers:
        low, high = fmt(label, min(numbers)), fmt(label, max(numbers))
        return low if low == high else f"{low} – {high}"
    distinct = list(dict.fromkeys(fmt(label, x) for x in values))
    return " / ".join(distinct)


def table(rec: dict, source=None) -> str:
    """Markdown: where the figures come from, then per figure the reference run (the first
    student) and the range over all students."""
    students = rec["students"]
    first = next(iter(students))
    p = rec["provenance"]
    commit = (p.get("commit") or "no commit")[:7]
    if p.get("dirty"):
        commit += " with uncommitted changes"
    machine = p.get("machine") or {}
    many = f"{len(students)} student" + ("s" if len(students) != 1 else "")
    origin = f"From `{source}`, written by" if source else "Written by"
    lines = [f"{origin} `{rec['command']}`: reference run "
             f"{first}, {many}, {rec['size']} size, commit {commit}, "
             f"{str(p.get('date') or '?')[:10]}, {machine.get('cores', '?')} cores "
             f"({machine.get('cpu', '?')}).",
             "",
             f"| what | reference ({first}) | over {many}: min – max |",
             "|---|---|---|"]
    rows = [(label, [s["figures"][label] for s in students.values()])
            for label in students[first]["figures"]]
    rows.append((SECONDS, [s["seconds"] for s in students.values()]))
    for label, values in rows:
        lines.append(f"| {label} | {fmt(label, values[0])} | {spread(label, values)} |")
    return "\n".join(lines) + "\n"
