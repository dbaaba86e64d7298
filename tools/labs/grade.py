"""`splitleak lab grade`: the instructor's view of many students' lab folders.

One row per folder: the lab and the student (from its lab.json), each task ✔ or ✘ with the
check's reason, and the folders it shares an artifact with: a model, decoder or capture whose
bytes are identical in two students' folders was copied, since each student's seed differs.
With the course key, each lab.json is also compared with the variant the key gives its student:
a folder started with another key, or whose lab.json was edited, is named.
"""

import csv
import hashlib
from pathlib import Path

from splitleak.cloud import rundir
from splitleak.tools.labs import checks, lab

ARTIFACTS = (f"*/{rundir.MOBILE_TFLITE}", f"*/{rundir.DECODER}", "capture*.txt", "*.pcap",
             "stolen.txt")


def fingerprints(folder: Path) -> dict[str, str]:
    """sha256 of each artifact a student's own run makes, by its path in the folder."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for pattern in ARTIFACTS for p in sorted(Path(folder).glob(pattern)) if p.is_file()}


def _variant_problem(v: dict, key: str) -> str | None:
    want = lab.variant(v["lab"], v.get("student"), v.get("size", "full"), key)
    changed = [k for k in ("course", "seed", "node") if v.get(k) != want[k]]
    return f"lab.json is not this course's variant for {v.get('student')} ({', '.join(changed)} " \
        "differ): started with another key, or edited" if changed else None


def grade(folders, key: str | None = None) -> list[dict]:
    """A row per folder: folder, lab, student, tasks {number: None or reason}, shared (and with
    `key`, the course key, a "variant" task 0 when lab.json is not the key's)."""
    rows = []
    for folder in map(Path, folders):
        try:
            v = lab.load(folder)
            lab.check_lab(v["lab"])
        except ValueError as exc:
            rows.append({"folder": str(folder), "lab": None, "student": None, "error": str(exc),
                         "tasks": {}, "shared": [], "_prints": {}})
            continue
        tasks = dict(checks.run(v["lab"], folder, v))
        if key is not None:
            tasks = {0: _variant_problem(v, key)} | tasks
        rows.append({"folder": str(folder), "lab": v["lab"], "student": v.get("student"),
                     "tasks": tasks, "shared": [], "_prints": fingerprints(folder)})
    owners: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        for digest in set(row["_prints"].values()):
            owners.setdefault(digest, []).append(i)
    for i, row in enumerate(rows):
        others = {j for digest in set(row.pop("_prints").values()) for j in owners[digest] if j != i}
        row["shared"] = sorted(rows[j]["folder"] for j in others)
    return rows


def render(rows: list[dict]) -> str:
    """A line per folder, and a line per ✘ task or shared artifact below it."""
    lines = []
    for r in rows:
        if r.get("error"):
            lines.append(f"✘ {r['folder']}: {r['error']}")
            continue
        done = sum(hint is None for hint in r["tasks"].values())
        lines.append(f"{'✔' if done == len(r['tasks']) and not r['shared'] else '✘'} "
                     f"{r['folder']}: lab {r['lab']}, student {r['student']}: "
                     f"{done}/{len(r['tasks'])} tasks")
        lines += [f"    task {k}: {hint}" for k, hint in r["tasks"].items() if hint]
        if r["shared"]:
            lines.append(f"    shares an artifact with {', '.join(r['shared'])} (copied?)")
    return "\n".join(lines)


def write_csv(rows: list[dict], path: Path) -> None:
    """folder, lab, student, passed, task 1..N (ok, or the reason), shared with."""
    numbers = sorted({k for r in rows for k in r["tasks"]})
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["folder", "lab", "student", "passed", *(f"task {k}" for k in numbers),
                      "shared with"])
        for r in rows:
            tasks = r["tasks"]
            out.writerow([r["folder"], r["lab"], r["student"],
                          r.get("error") or f"{sum(h is None for h in tasks.values())}/{len(tasks)}",
                          *("" if k not in tasks else "ok" if tasks[k] is None else tasks[k]
                            for k in numbers), "; ".join(r["shared"])])
