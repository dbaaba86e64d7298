"""The privacy experiment's sweep: every job (setting x seed, tools/experiments/settings.py) of a
preset, each computed by tools/experiments/job.py; resumable, and shardable across machines.

Each job is one row file in the results folder (tools/experiments/results.py), written when the
job ends, with its provenance; a rerun skips the rows there. Trained targets and decoders stay in
the models folder (by default the work folder; presets may share one), grids and the work
folder's results.json/csv/md, plot and report.html in the work folder. No eval.json is written:
decoders are shared between settings, so one file would hold whichever setting ran last.
"""

import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from splitleak.cloud import artifacts
from splitleak.tools.experiments import frontier, job, provenance, report, results, settings, tables

RESULTS = "results.json"  # the work folder's rows, by key, as one file (lab 4's check reads it)
CODE_FILE = "code.json"  # the models folder's code hash (provenance.code_hash) its models came from


@dataclass
class Sweep:
    """A sweep's run: its folders, network, rows (every row of the results folder), table, the
    files written, and how long this run took."""

    out: Path
    results: Path
    recipe: str
    rows: list[dict]
    table: str
    written: list[Path]
    seconds: float


def run_sweep(preset_name: str, out: Path | None = None, config: Path | None = None,
              protocol: str = "lite", omniglot_dir=None, seeds=None, shard=None,
              results_dir: Path | None = None, models: Path | None = None,
              dry_run: bool = False) -> Sweep:
    """Run every job (setting x seed) of a preset, or of shard (I, N) of it, whose row is not in
    the results folder yet (default OUT/results), with the models in `models` (default OUT),
    then write the report there and the work folder's files. dry_run: print the plan and the
    estimate only."""
    chosen = settings.with_config(settings.preset(preset_name), config)
    network = settings.recipe(chosen)
    seeds = settings.seeds_for(preset_name, chosen, seeds)
    every = settings.jobs(chosen, seeds)
    mine = settings.shard(every, *shard) if shard else every
    out = Path(out or f"runs/experiment-{preset_name}")
    folder = Path(results_dir or out / "results")
    models = Path(models or out)
    overrides = artifacts.read_json(config) if config else None
    files = settings.code_path(chosen)
    cfg = results.config(preset_name, network, protocol, [asdict(s) for s in chosen], seeds,
                         overrides, folder, config, files)
    done = results.row_keys(folder) if (folder / results.CONFIG).is_file() else set()
    if not dry_run:
        _prepare(out, models, folder, cfg)
    print(plan(preset_name, chosen, seeds, every, mine, shard, done, models, network, folder),
          flush=True)
    if dry_run:
        return Sweep(out, folder, network, [], "", [], 0.0)
    from splitleak.cloud.data import load_protocol

    proto = load_protocol(protocol, omniglot_dir)
    stamp = provenance.stamp(files) | {"shard": f"{shard[0]}/{shard[1]}" if shard else None}
    start = time.monotonic()
    for i, s in enumerate(mine, 1):
        label = f"[{i}/{len(mine)}] {s.name}" + (f", seed {s.seed}" if s.seed is not None else "")
        if s.key() in done:
            print(f"{label}: done before, skipped", flush=True)
            continue
        began = time.monotonic()
        print(f"{label} ({s.key()})", flush=True)
        runner = frontier.run if isinstance(s, frontier.DefendedSetting) else job.run
        row, lines = runner(s, proto, models)
        grid = tables.save_grid(out, s.key(), s.name, lines)
        (folder / report.GRIDS).mkdir(exist_ok=True)
        row["grid"] = Path(shutil.copy(grid, folder / report.GRIDS / grid.name)).name
        seconds = round(time.monotonic() - began, 1)
        results.write_row(folder, row | {"provenance": stamp | {
            "date": provenance.now(), "seconds": seconds, "steps": row.pop("seconds")}})
        _write_view(out, folder)
        print(f"{label}: {seconds / 60:.1f} min", flush=True)
    return _finish(out, folder, preset_name, network, time.monotonic() - start)


def plan(preset_name, chosen, seeds, every, mine, shard, done, models, network, folder) -> str:
    """What the sweep will do and the estimated wall time, whole and what is left."""
    said = ", ".join("default" if s is None else str(s) for s in seeds)
    part = f"; shard {shard[0]}/{shard[1]}: {len(mine)} jobs" if shard else ""
    left = sum(s.key() in done for s in mine)
    return (f"preset {preset_name}: {len(chosen)} settings x {len(seeds)} seed(s) ({said}) = "
            f"{len(every)} jobs{part}, {left} already done\n"
            f"network: {network}\nresults: {folder} (rows); models: {models}\n"
            f"estimated on a 2-core CPU: the whole sweep from scratch "
            f"{duration(settings.estimate_seconds(every, set()))}; "
            f"left for this run {duration(settings.estimate_seconds(mine, done, models))}")


def duration(seconds: float) -> str:
    return f"about {seconds / 3600:.1f} h" if seconds >= 7200 else f"about {seconds / 60:.0f} min"


def _write_view(out: Path, folder: Path) -> list[dict]:
    """The work folder's results.json: the results folder's rows by key."""
    cfg, rows = results.read(folder)
    artifacts.write_json(out / RESULTS, {"preset": cfg["preset"], "recipe": cfg["recipe"],
                                         "results": str(folder),
                                         "settings": {r["key"]: r for r in rows}})
    return rows


def _prepare(out: Path, models: Path, folder: Path, cfg: dict) -> None:
    """Refuse a results folder of another sweep or other code, and a models folder whose models
    other code trained (CODE_FILE, each module's hash: reusing them would credit their rows to
    this code); then write the folders' records, keeping a results.json from before results
    folders aside. Presets share a models folder: CODE_FILE gathers the modules of each."""
    marker, files = models / CODE_FILE, cfg["code"]["files"]
    known = artifacts.read_json(marker).get("code_files", {}) if marker.is_file() else {}
    refuse = (f"{models} holds models trained by other code ({{}}); the sweep would reuse them: "
              "pass another --models (or --out), or remove that folder")
    if marker.is_file() and not known:  # written before each module's hash was kept
        old = artifacts.read_json(marker)
        names = old.get("files", provenance.CODE)
        if not all((provenance.ROOT / name).is_file() for name in names) or (
                provenance.code_hash(files=names) != old.get("sha256")):
            raise ValueError(refuse.format("the hash over its modules changed since"))
        known = {name: provenance.file_hash(provenance.ROOT / name) for name in names}
    changed = [name for name, digest in known.items() if not (provenance.ROOT / name).is_file()
               or provenance.file_hash(provenance.ROOT / name) != digest]
    if changed:
        raise ValueError(refuse.format(f"{', '.join(changed)} changed since"))
    results.open_folder(folder, cfg)
    if not marker.is_file() and (models / job.TARGETS).is_dir():
        print(f"warning: {models} holds models from before code hashes were recorded; they are "
              "reused and their rows credited to this code: pass a fresh --models to retrain",
              flush=True)
    for path in (out, models):
        path.mkdir(parents=True, exist_ok=True)
    mine = provenance.path_stamp((), files=files)["code_files"]
    artifacts.write_json(marker, {"code_files": known | mine})
    path = out / RESULTS
    if path.is_file() and "results" not in artifacts.read_json(path):
        path.replace(out / "results-legacy.json")
        print(f"kept the earlier {path} as results-legacy.json", flush=True)


def _finish(out: Path, folder: Path, preset_name: str, network: str, seconds: float) -> Sweep:
    """The report in the results folder; the work folder's results.json/csv/md, plot, report."""
    rows = _write_view(out, folder)
    done = report.write(folder)
    written = [out / RESULTS]
    if rows:
        written.append(tables.save_csv(out, rows))
    for path in done.written:
        if path.parent.resolve() != out.resolve():
            written.append(Path(shutil.copy(path, out / path.name)))
    written.append(tables.save_report(out, preset_name, network, rows, seconds))
    return Sweep(out, folder, network, rows, done.text, written + done.written, seconds)
