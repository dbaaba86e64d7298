"""A results folder: a sweep's raw results, meant to be committed (docs/results/NAME), apart from
the work folder that holds its models (runs/experiment-PRESET, never committed).

  config.json      the sweep: preset, network recipe, settings (without seeds), seeds, --config's
                   fields, the code hash over the modules its rows run (settings.code_path) and
                   the command that re-runs it all; "wider_hashes": the hashes its rows recorded
                   over a longer list of modules, when the list was narrowed to what they run
  rows/KEY.json    one row per (setting, seed), KEY = the seeded setting's key: every metric
                   (sweep.run_setting) and its provenance (commit, dirty, code hash, package
                   versions, machine, date, seconds, shard)
  results.md, privacy-utility.png   written by `splitleak experiment report` from the rows alone

Resuming skips the rows that exist; merging shards is the union of their row files. Folders agree
when their configs do, seeds and command aside (seeds are unioned); a folder whose code hash
differs from the code's is stale. A work folder's results.json (written before results folders)
reads as a folder without provenance.
"""

import json
import os
from pathlib import Path

from splitleak.cloud import artifacts
from splitleak.tools.experiments import provenance

CONFIG = "config.json"
ROWS = "rows"
LEGACY = "results.json"
FORMAT = 1
VARIES = ("seeds", "command", "results", "config_file")  # what folders of one sweep may differ in


def config(preset: str, recipe: str, protocol: str, settings: list[dict], seeds: list,
           overrides: dict | None, folder: Path, config_file: Path | None = None,
           files=provenance.CODE) -> dict:
    """A results folder's config.json (settings as dicts without their seed); `files`: the
    modules its rows run (settings.code_path)."""
    out = {"format": FORMAT, "preset": preset, "recipe": recipe, "protocol": protocol,
           "settings": [{k: v for k, v in s.items() if k != "seed"} for s in settings],
           "overrides": overrides, "config_file": str(config_file) if config_file else None,
           "code": {"sha256": provenance.code_hash(files=files), "files": list(files)},
           "seeds": seeds, "results": shown(folder)}
    return out | {"command": command(out)}


def shown(folder: Path) -> str:
    """The folder as the commands in config.json name it: relative to the working directory when
    it lies below it (so a committed folder names docs/results/NAME), else as given."""
    folder = Path(folder)
    try:
        return str(folder.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(folder)


def command(cfg: dict) -> str:
    """The command that (re)computes every row of a config's folder."""
    seeds = [s for s in cfg["seeds"] if s is not None]
    parts = ["splitleak experiment sweep --preset", cfg["preset"]]
    if cfg.get("protocol", "lite") != "lite":
        parts += ["--protocol", cfg["protocol"]]
    if cfg.get("config_file"):
        parts += ["--config", cfg["config_file"]]
    if seeds and "seed" not in (cfg.get("overrides") or {}):
        parts += ["--seeds", *map(str, seeds)]
    return " ".join([*parts, "--results", cfg["results"]])


def open_folder(folder: Path, cfg: dict) -> dict:
    """Write config.json, or check the folder's agrees with `cfg` and add cfg's seeds to it."""
    folder = Path(folder)
    if (folder / CONFIG).is_file():
        cfg = union(read_config(folder), cfg, folder, "this sweep")
    (folder / ROWS).mkdir(parents=True, exist_ok=True)
    _write(folder / CONFIG, dump(cfg))
    return cfg


def union(mine: dict, other: dict, folder: Path, what: str) -> dict:
    """`mine` with `other`'s seeds added; ValueError if they are not one sweep on one code."""
    differ = sorted(k for k in set(mine) | set(other)
                    if k not in VARIES and _compared(mine, k) != _compared(other, k))
    if differ == ["code"]:
        raise ValueError(
            f"{folder}'s rows were computed by other code (sha256 {mine['code']['sha256'][:12]}) "
            f"than {what} (sha256 {other['code']['sha256'][:12]}): the modules in "
            "tools/experiments/provenance.py CODE changed; use another results folder (and "
            "work folder), or remove it to re-run it")
    if differ:
        raise ValueError(f"{folder} holds another sweep than {what} (they differ in "
                         f"{', '.join(differ)}); use another results folder")
    seeds = sorted({*mine["seeds"], *other["seeds"]}, key=lambda s: (s is None, s or 0))
    out = mine | {"seeds": seeds}
    return out | {"command": command(out)}


def _compared(cfg: dict, key: str):
    """What two configs must agree in: the code by its modules and hash (not the hashes its
    rows recorded over a longer list)."""
    value = cfg.get(key)
    if key == "code" and isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "wider_hashes"}
    return value


def read_config(folder: Path) -> dict:
    return artifacts.read_json(Path(folder) / CONFIG)


def row_keys(folder: Path) -> set[str]:
    return {p.stem for p in (Path(folder) / ROWS).glob("*.json")}


def write_row(folder: Path, row: dict) -> Path:
    """rows/KEY.json."""
    path = Path(folder) / ROWS / f"{row['key']}.json"
    _write(path, dump(row))
    return path


def _write(path: Path, text: str) -> None:
    """Written whole: shards sharing a folder never read half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def dump(obj) -> str:
    """JSON as the folder stores it: sorted keys, two-space indent, a final newline."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def read(folder: Path) -> tuple[dict, list[dict]]:
    """A folder's config and rows (sorted by key). A work folder: its results folder, or, for a
    results.json from before results folders, a config without code or seeds."""
    folder = Path(folder)
    if (folder / CONFIG).is_file():
        rows = [artifacts.read_json(p) for p in sorted((folder / ROWS).glob("*.json"))]
        return read_config(folder), rows
    if (folder / LEGACY).is_file():
        old = artifacts.read_json(folder / LEGACY)
        if old.get("results") and (Path(old["results"]) / CONFIG).is_file():
            return read(Path(old["results"]))  # a work folder's view of its results folder
        rows = list(old["settings"].values())  # in the sweep's order
        return {"format": 0, "preset": old.get("preset", "?"), "recipe": old.get("recipe"),
                "settings": [], "seeds": [], "code": None, "results": str(folder)}, rows
    raise FileNotFoundError(f"{folder} holds neither {CONFIG} (a results folder) nor {LEGACY}")


def merge(dest: Path, sources: list[Path]) -> dict:
    """Copy every source's rows into dest (a union by key), after checking that the configs
    agree and that no row differs between folders; returns {"added", "present", "rows"}."""
    dest = Path(dest)
    folders = [_results_in(Path(s)) for s in sources]
    cfg = read_config(dest) if (dest / CONFIG).is_file() else None
    rows: dict[str, tuple[Path, str]] = {}
    for folder in ([dest] if cfg else []) + folders:
        other = read_config(folder)
        cfg = other | {"results": str(dest)} if cfg is None else union(cfg, other, dest, folder)
        for path in sorted((folder / ROWS).glob("*.json")):
            text = path.read_text()
            if path.stem in rows and rows[path.stem][1] != text:
                raise ValueError(f"row {path.stem} differs between {rows[path.stem][0]} and "
                                 f"{folder}: remove one of them first")
            rows.setdefault(path.stem, (folder, text))
    before = row_keys(dest) if (dest / ROWS).is_dir() else set()
    open_folder(dest, cfg | {"command": command(cfg)})
    for key, (_, text) in rows.items():
        if key not in before:
            (dest / ROWS / f"{key}.json").write_text(text)
    return {"added": len(set(rows) - before), "present": len(before), "rows": len(rows)}


def _results_in(folder: Path) -> Path:
    """A results folder, or the default one inside a work folder (WORK/results)."""
    for candidate in (folder, folder / "results"):
        if (candidate / CONFIG).is_file():
            return candidate
    raise FileNotFoundError(f"{folder} is not a results folder: no {CONFIG}")


def stale(folder: Path) -> str | None:
    """None when the folder's rows were computed by the code as it is now; else why not, with
    the producing commit and the command that re-runs it."""
    cfg, rows = read(folder)
    code = cfg.get("code") or {}
    now = provenance.code_hash(files=code.get("files") or provenance.CODE)
    wider = set(code.get("wider_hashes", []))
    recorded = {code.get("sha256")} | {
        (r.get("provenance") or {}).get("code_hash") for r in rows} - wider
    if recorded == {now}:
        return None
    commits = sorted({str((r.get("provenance") or {}).get("commit")) for r in rows})
    rerun = command(cfg) if cfg.get("format") else f"splitleak experiment sweep --preset {cfg['preset']}"
    return (f"{folder} is stale: computed by code sha256 {sorted(map(str, recorded))} at commit "
            f"{', '.join(commits) or 'none'}; the code on its computation path now hashes to "
            f"{now}. Re-run it from scratch: remove {folder} and the work folder (or pass another "
            f"--out), then {rerun}")
