"""The results folders' figures in the documentation, generated, never typed.

A block `<!-- results:NAME/PART -->` … `<!-- /results:NAME/PART -->` in README.md or
docs/**/*.md is PART of the committed results folder docs/results/NAME, made from its rows by the
same code as its results.md (tools/experiments/report.py):

  utility, naive, adaptive, blackbox_subset, whitebox, whitebox_blank
            that table of results.md with its notes, after a line naming the folder, its rows and
            the commits that computed them
  status    that line alone (inline)
  top1, whitebox-top1, accuracy
            inline: per setting, the mean over seeds [95 % interval] of the stronger black box's
            top-1 (or the white box's, or the deployment's accuracy), with chance
  time      inline: the folder's hours of computing, and the estimate for all its jobs
  answer    inline: the frontier's answer (tools/experiments/pareto.py): which settings keep
            accuracy and stop identification, or the closest
  frontier  the frontier's table (every setting's point, the front marked) with its notes
  network   a network experiment's folder (docs/results/network-ENGINE): its table, with the
            commit and date of its run

and two blocks computed, not read from a folder: `computed/seed-epsilon` (the seed's ε,
recomputed by the accountants) and `computed/estimates` (each preset's estimated time).

`splitleak experiment docs` rewrites every block; a test fails when one differs.
"""

from functools import lru_cache
from pathlib import Path

from splitleak.tools import blocks as generated
from splitleak.tools.experiments import network, pareto, report, results, settings, tables
from splitleak.tools.experiments.sweep import duration

CHECKOUT = Path(__file__).resolve().parents[2]
FOLDERS = "docs/results"  # the committed results folders, relative to the checkout
TAG = "results"
DOCS_COMMAND = "splitleak experiment docs"
TABLES = ("utility", *tables.ATTACKS, "frontier")
INLINE = ("status", "top1", "whitebox-top1", "accuracy", "time", "answer")
NETWORK_RESULT = "results.json"  # a network experiment's folder: results.json and results.md


class Folder:
    """One committed results folder, read once: config, rows and rows grouped by setting."""

    def __init__(self, root: Path, name: str):
        path = Path(root) / FOLDERS / name
        if not (path / results.CONFIG).is_file():
            raise ValueError(f"no results folder {FOLDERS}/{name}")
        self.name, self.shown = name, f"{FOLDERS}/{name}"
        self.cfg, self.rows = results.read(path)
        self.found = report.groups(self.cfg, self.rows)


def status(f: Folder) -> str:
    """Which folder, how many of its rows, which seeds and commits."""
    expected = len(f.cfg["settings"]) * len(f.cfg["seeds"])
    commits = sorted({(r.get("provenance") or {}).get("commit") or "none" for r in f.rows})
    said = ", ".join(c[:7] for c in commits) or "none yet"
    return (f"from `{f.shown}`: {len(f.rows)} of {expected} rows, seeds "
            f"{', '.join(map(str, f.cfg['seeds']))}, commit {said}")


def table(f: Folder, kind: str) -> str:
    """One table of the folder's results.md with its notes."""
    if kind == "utility":
        body = report.utility(f.found, report.classes(f.cfg, f.rows))
        note = report.T_NOTE
    elif kind == "frontier":
        section = pareto.section(f.rows, [s["name"] for s in f.cfg["settings"]])
        if not section:
            return f"No rows yet ({status(f)}).\n"
        body, note = section[4:-2], section[-2]
    else:
        sizes = sorted({r[kind]["n"] for r in f.rows if r.get(kind)})
        if not sizes:
            return f"No rows with {tables.ATTACKS[kind]} yet ({status(f)}).\n"
        body = [line for n in sizes for line in report.reconstruction(f.found, kind, n)]
        note = f"{report.T_NOTE} {report.WILSON_NOTE} {report.BASE_NOTE}"
    return (f"{status(f)[0].upper()}{status(f)[1:]}:\n\n" + "\n".join(body) + f"\n\n{note}\n")


def _per_setting(f: Folder, values, digits: int) -> str:
    parts = []
    for s, rs in f.found:
        got = [v for v in map(values, rs) if v is not None]
        if got:
            parts.append(f"{report.label(s)} {report.cell(got, digits)}")
    return "; ".join(parts) if parts else "no rows yet"


def top1(f: Folder, kind: str | None = None) -> str:
    """Per setting, top-1 of the stronger black box (or of `kind`) over its N test images."""
    pick = tables.best if kind is None else (lambda r: r.get(kind))
    sizes = sorted({pick(r)["n"] for r in f.rows if pick(r)})
    n = sizes[-1] if sizes else 0
    said = _per_setting(f, lambda r: pick(r)["top1"] if pick(r) and pick(r)["n"] == n else None,
                        3)
    chance = f"; chance {report.num(1 / n, 3)} (1 of {n:,})" if n else ""
    return f"{said}{chance} ({_means(f)})"


def accuracy(f: Folder) -> str:
    classes = report.classes(f.cfg, f.rows)
    return (f"{_per_setting(f, lambda r: r.get('accuracy'), 3)}; chance "
            f"{report.num(1 / classes, 3)} (1 of {classes}) ({_means(f)})")


def _means(f: Folder) -> str:
    seeds = sorted({len(rs) for _, rs in f.found if rs}) or [0]
    n = " or ".join(map(str, seeds))
    return f"means over {n} seed{'s' * (seeds != [1])} [95 % t-interval]; {status(f)}"


def answer(f: Folder) -> str:
    """The frontier's answer in one sentence, and where it comes from."""
    found = pareto.points(f.rows, [s["name"] for s in f.cfg["settings"]])
    return f"{pareto.sentence(found)[:-1]} ({_means(f)})." if found else f"no rows yet ({status(f)})"


def hours(f: Folder) -> str:
    """Hours computed so far and the estimate for every job of the folder from nothing."""
    spent = sum((r.get("provenance") or {}).get("seconds") or 0 for r in f.rows) / 3600
    jobs = settings.jobs([settings.from_dict(s) for s in f.cfg["settings"]], f.cfg["seeds"])
    whole = settings.estimate_seconds(jobs, set()) / 3600
    return (f"{spent:.1f} h of computing for its {len(f.rows)} rows so far; all "
            f"{len(jobs)} jobs from nothing, estimated {whole:.1f} h on 2 cores ({status(f)})")


def network_table(root: Path, name: str) -> str:
    """A network experiment's table (tools/experiments/network.py) with where it comes from."""
    from splitleak.cloud import artifacts

    shown = f"{FOLDERS}/{name}"
    path = Path(root) / shown / NETWORK_RESULT
    if not path.is_file():
        raise ValueError(f"no network result {shown}/{NETWORK_RESULT}: `splitleak experiment "
                         f"network --engine ENGINE --out {shown}` writes one")
    result = artifacts.read_json(path)
    stamp = result["provenance"]
    dirty = " with uncommitted .py changes off its path" if stamp.get("dirty") else ""
    return (f"From `{shown}`: {result['frames']} lite test images a profile, commit "
            f"{str(stamp['commit'])[:7]}{dirty}, {stamp['date'][:10]}, "
            f"`{network.command(result, shown)}`:\n\n" + network.table(result["rows"]))


def seed_epsilon(_root: Path) -> str:
    """The seed's three DP-SGD settings' ε, recomputed (cloud/privacy.seed_table): computed, not
    measured, so the block is current whenever the accountants are."""
    from splitleak.cloud.config import SEED_DP

    passed, trained = SEED_DP["n_passed"], SEED_DP["n_trained"]

    def pair(row, kind, n, digits):
        return " / ".join(f"{row[f'{kind}_{acc}_{n}']:.{digits}f}" for acc in ("rdp", "pld"))

    rows = [f"| {r['noise']:g} | {r['seed']:g} | {r[f'classic_rdp_{passed}']:.2f} | "
            f"{pair(r, 'poisson', passed, 2)} | {pair(r, 'poisson', trained, 2)} | "
            f"{pair(r, 'shuffle', trained, 1)} |" for r in _seed_rows()]
    return (f"Computed by `splitleak privacy epsilon --seed-table` (dp-accounting; batch "
            f"{SEED_DP['batch']}, {SEED_DP['epochs']} epochs, δ = {SEED_DP['delta']:g}):\n\n"
            f"| noise | seed | same, older RDP conversion | Poisson RDP / PLD, n {passed:,} | "
            f"Poisson RDP / PLD, n {trained:,} | shuffled batches RDP / PLD, n {trained:,} |\n"
            "|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")


def estimates(_root: Path) -> str:
    """What each preset's sweep prints before it starts: its jobs and the estimated time."""
    rows = []
    for name in settings.PRESETS:
        chosen = settings.preset(name)
        seeds = settings.seeds_for(name, chosen)
        jobs = settings.jobs(chosen, seeds)
        said = ", ".join("the student's" if s is None else str(s) for s in seeds)
        rows.append(f"| `{name}` | {len(chosen)} | {said} | {len(jobs)} | "
                    f"{duration(settings.estimate_seconds(jobs, set()))} |")
    return ("Printed by `splitleak experiment sweep --preset P --dry-run` (from "
            "`tools/experiments/settings.py`; `lab` at the preset's own sizes, which lab 4 "
            "shrinks with its `sweep.json`):\n\n| preset | settings | seeds | jobs | estimate "
            "from nothing (2 cores) |\n|---|---|---|---|---|\n" + "\n".join(rows) + "\n")


@lru_cache(maxsize=1)
def _seed_rows() -> list[dict]:
    """cloud/privacy.seed_table, once a process (the PLD accountant takes seconds)."""
    from splitleak.cloud.privacy import seed_table

    return seed_table()


COMPUTED = {"seed-epsilon": seed_epsilon, "estimates": estimates}


def generate(name: str, root: Path = CHECKOUT) -> str:
    folder, part = _parse(name)
    if folder == "computed":
        return COMPUTED[part](root)
    if part == "network":
        return network_table(root, folder)
    f = _folder(str(root), folder)
    if part in TABLES:
        return table(f, part)
    return {"status": status, "top1": top1, "accuracy": accuracy, "time": hours,
            "answer": answer, "whitebox-top1": lambda f: top1(f, "whitebox")}[part](f)


@lru_cache(maxsize=32)
def _folder(root: str, name: str) -> Folder:
    return Folder(Path(root), name)


def _parse(name: str) -> tuple[str, str]:
    folder, _, part = name.partition("/")
    return folder, part


def validate(name: str) -> None:
    folder, part = _parse(name)
    if folder == "computed" and part not in COMPUTED:
        raise ValueError(f"unknown computed block {name!r}: expected computed/PART, PART one of "
                         f"{', '.join(COMPUTED)}")
    if folder != "computed" and part not in TABLES + INLINE + ("network",):
        raise ValueError(f"unknown results block {name!r}: expected FOLDER/PART, PART one of "
                         f"{', '.join(TABLES + INLINE)}, network")


def render_files(root: Path = CHECKOUT, check: bool = False) -> dict:
    """Rewrite the results blocks of README.md and docs/**/*.md from the committed folders; with
    `check`, write nothing and fail (`passed` false) when one is out of date."""
    _folder.cache_clear()
    count, changed = generated.render_files(root, TAG, lambda n: generate(n, root), validate,
                                            check)
    return {"blocks": count, "changed": changed, "check": check,
            "passed": not (check and changed)}


def describe(r: dict) -> str:
    head = f"{r['blocks']} generated results block{'s' * (r['blocks'] != 1)}: "
    if not r["changed"]:
        return head + "all up to date"
    if r["check"]:
        return head + f"out of date in {', '.join(r['changed'])} (`{DOCS_COMMAND}` rewrites them)"
    return head + f"rewrote {', '.join(r['changed'])}"

