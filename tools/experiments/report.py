"""The page of a results folder: results.md and the privacy-utility plot, from its rows alone (no
models); the same rows give the same results.md, byte for byte.

Rows are grouped by their setting without its seed, in the config's order. Per setting: n (the
seeds present) and, for accuracy, dCor, MSE, SSIM and top-1, the mean over seeds with its 95 %
Student-t interval (stats.t_interval); top-1 also with Wilson's interval on the hits pooled over
seeds x test images. The utility table ends with chance accuracy and shows, beside each setting,
the undefended setting's accuracy at its cut; each reconstruction table ends with its baselines
(chance 1/N, the attacker-mean image, the blank page). The footer names the rows' commits, code
hash, packages and machines, and the commands that produced and regenerate the page. The plot
shows the means. A folder without rows gets a figure saying so in place of each, never an older
run's.
"""

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from splitleak.cloud.data import LITE_TARGET
from splitleak.tools.experiments import pareto, results, settings, stats, tables

PAGE = "results.md"
GRIDS = "grids"  # a results folder's grids, one per row: grids/KEY.png (the sweep copies them)
GRID = "grid.png"  # the first seed's grids, one setting under the other
T_NOTE = ("Cells: the mean over the n seeds [its 95 % interval: mean ± t·s/√n, t the 0.975 "
          "quantile of Student's t with n − 1 degrees of freedom, s the seeds' standard "
          "deviation; none where n = 1].")
WILSON_NOTE = ("top-1, images: the 95 % Wilson score interval (Wilson 1927) on the hits pooled "
               "over the n seeds × N test images (the seeds share the images: it reflects the "
               "images' sampling, not the seeds').")
BASE_NOTE = ("Baselines, from the test images alone: chance 1/N; the attacker set's mean image "
             "given as every reconstruction; the blank page (all zeros, no ink).")


@dataclass
class Page:
    text: str
    written: list[Path]
    stale: str | None  # why the folder is stale (results.stale), or None


def write(folder: Path, out: Path | None = None) -> Page:
    """OUT/results.md (default: the folder itself) and the plot, from the folder's rows."""
    cfg, rows = results.read(folder)
    found = groups(cfg, rows)
    text = markdown(cfg, rows, found)
    out = Path(out or folder)
    out.mkdir(parents=True, exist_ok=True)
    (out / PAGE).write_text(text, encoding="utf-8")
    written = [out / PAGE]
    means = [mean_row(s, rs) for s, rs in found if rs]
    pending = f"No rows yet: {results.command(cfg)}"
    written.append(tables.save_plot(out, means) if means
                   else tables.save_pending(out / tables.PLOT, pending))
    if defended_in(cfg):
        if rows:
            pareto.plot(pareto.points(rows), out / pareto.PLOT)
        written.append(out / pareto.PLOT if rows else tables.save_pending(out / pareto.PLOT, pending))
    grid = compose_grid(Path(folder), cfg, found, out / GRID)
    written.append(grid or tables.save_pending(out / GRID, pending))
    return Page(text, written, results.stale(folder))


def compose_grid(folder: Path, cfg: dict, found: list, path: Path) -> Path | None:
    """The first seed's row grids (grids/KEY.png), one setting under the other, in the config's
    order; None when there are none."""
    from PIL import Image

    first = cfg["seeds"][0] if cfg.get("seeds") else None
    files = [folder / GRIDS / f"{r['key']}.png" for _, rs in found for r in rs
             if r["setting"].get("seed") == first]
    images = [Image.open(f).convert("RGB") for f in files if f.is_file()]
    if not images:
        return None
    canvas = Image.new("RGB", (max(i.width for i in images), sum(i.height for i in images)),
                       "white")
    y = 0
    for image in images:
        canvas.paste(image, (0, y))
        y += image.height
    canvas.save(path)
    return path


def groups(cfg: dict, rows: list[dict]) -> list[tuple[dict, list[dict]]]:
    """(setting without seed, its rows by seed) per setting of the config, then any other."""
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(settings.unseeded_key(r["setting"]), []).append(r)
    out = [(s, by.pop(settings.unseeded_key(s), [])) for s in cfg["settings"]]
    out += [({k: v for k, v in rs[0]["setting"].items() if k != "seed"}, rs)
            for rs in by.values()]
    return [(s, sorted(rs, key=lambda r: _seed_order(r["setting"].get("seed")))) for s, rs in out]


def _seed_order(seed):
    return (seed is None, seed or 0)


def markdown(cfg: dict, rows: list[dict], found: list) -> str:
    note = [f"**{cfg['note']}**", ""] if cfg.get("note") else []
    lines = [f"# splitleak experiment sweep --preset {cfg['preset']}", "", *note,
             f"Network: {cfg.get('recipe')}. {_count(cfg, rows, found)}", "",
             "## Utility", "", *utility(found, classes(cfg, rows)), "",
             f"{T_NOTE} Accuracy: the deployment's on the validation images (TFLite stage, edge "
             "defence, cloud head), beside chance (1/classes); undefended: the setting without "
             "any defence at the same cut.", ""]
    if defended_in(cfg):
        lines += pareto.section(rows, [s["name"] for s in cfg.get("settings", [])])
    for kind, title in tables.ATTACKS.items():
        for n in sorted({r[kind]["n"] for r in rows if r.get(kind)}):
            lines += [f"## Reconstruction: {title}, N = {n:,} test images", "",
                      *reconstruction(found, kind, n), "", f"{T_NOTE} {WILSON_NOTE} {BASE_NOTE}",
                      ""]
    return "\n".join(lines + ["---", "", *footer(cfg, rows)]) + "\n"


def _count(cfg: dict, rows: list[dict], found: list) -> str:
    if not cfg.get("format"):
        return f"Rows: {len(rows)}, from a work folder's results.json: no seeds or code recorded."
    seeds = ", ".join("default" if s is None else str(s) for s in cfg["seeds"])
    expected = len(cfg["settings"]) * len(cfg["seeds"])
    missing = [f"{label(s)} seed {seed}" for s, rs in found for seed in cfg["seeds"]
               if seed not in {r["setting"].get("seed") for r in rs}]
    return (f"Seeds: {seeds} (each seeds the target's and the attacker's training). Rows: "
            f"{len(rows)} of {expected} ({len(cfg['settings'])} settings × {len(cfg['seeds'])} "
            f"seeds)" + (f"; missing: {', '.join(missing)}." if missing else "."))


def label(setting: dict) -> str:
    return tables.setting_cell({"setting": setting})


def utility(found: list, classes: int) -> list[str]:
    cuts = len({s["split_after"] for s, _ in found}) > 1
    dp = any(s["dp"] for s, _ in found)
    plain = {s["split_after"]: rs for s, rs in found if rs and not _defended(s)}
    head = ["setting", "n"] + (["activation", "bytes/frame"] if cuts else []) + [
        "accuracy, defended", "undefended, same cut", "ε (RDP / PLD)"] + (
        ["the seed: ε, accuracy"] if dp else []) + ["dCor (stage)"]
    body = []
    for s, rs in found:
        cells = [label(s), str(len(rs))]
        if cuts:
            first = rs[0] if rs else {}
            cells += ["x".join(map(str, first["activation"])) if first.get("activation") else "–",
                      f"{first['bytes_per_frame']:,}" if first.get("bytes_per_frame") else "–"]
        base = plain.get(s["split_after"])
        cells += [cell([r["accuracy"] for r in rs], 3),
                  num(stats.t_interval([r["accuracy"] for r in base]).mean, 3) if base else "–",
                  _epsilon(s, rs)] + ([tables.seed_cell(s)] if dp else [])
        body.append(cells + [cell([r["dcor"] for r in rs if r.get("dcor") is not None], 2)])
    chance = [f"chance (1/{classes})", ""] + [""] * (2 * cuts) + [num(1 / classes, 3)]
    return _table(head, body + [chance + [""] * (len(head) - len(chance))])


def defended_in(cfg: dict) -> bool:
    """Whether a folder sweeps the frontier's settings (tools/experiments/frontier.py): its
    page gets the frontier's section and plot, pending until rows come."""
    return any("adversarial" in s for s in cfg.get("settings", []))


def _defended(s: dict) -> bool:
    return pareto.defended(s)


def _epsilon(s: dict, rs: list[dict]) -> str:
    eps = [r["epsilon"] for r in rs if r.get("epsilon")]
    if not s["dp"]:
        return "∞"
    if not eps:
        return "–"
    return " / ".join(num(stats.t_interval([e[k] for e in eps]).mean, 2) for k in ("rdp", "pld"))


def reconstruction(found: list, kind: str, n: int) -> list[str]:
    head = ["setting", "n", "MSE", "SSIM", "top-1", "top-1, images"]
    body, scored = [], []
    for s, rs in found:
        got = [r[kind] for r in rs if r.get(kind) and r[kind]["n"] == n]
        if got:
            scored += got
            hits = sum(round(g["top1"] * g["n"]) for g in got)
            low, high = stats.wilson(hits, sum(g["n"] for g in got))
            body.append([label(s), str(len(got)), cell([g["mse"] for g in got], 4),
                         cell([g["ssim"] for g in got], 3), cell([g["top1"] for g in got], 3),
                         f"[{num(low, 3)}, {num(high, 3)}]"])
    body.append([f"chance (1/{n:,})", "", "", "", num(1 / n, 3), ""])
    for name, prefix in (("attacker-mean image", "mean_image"), ("blank page", "blank_page")):
        body.append([name, ""] + [_baseline(scored, f"{prefix}_{m}", d)
                                  for m, d in (("mse", 4), ("ssim", 3), ("top1", 3))] + [""])
    return _table(head, body)


def _baseline(scored: list[dict], key: str, digits: int) -> str:
    values = [g[key] for g in scored if g.get(key) is not None]
    return num(stats.t_interval(values).mean, digits) if values else "–"


def cell(values: list, digits: int) -> str:
    """The mean and [its t interval], or – without values."""
    iv = stats.t_interval([v for v in values if v is not None])
    if iv.n == 0:
        return "–"
    if iv.low is None:
        return num(iv.mean, digits)
    return f"{num(iv.mean, digits)} [{num(iv.low, digits)}, {num(iv.high, digits)}]"


def num(x: float, digits: int) -> str:
    """Fixed-point, without a sign on zero."""
    text = f"{x:.{digits}f}"
    return text.lstrip("-") if float(text) == 0 else text


def _table(head: list[str], body: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|---" * len(head) + "|",
            *("| " + " | ".join(row) + " |" for row in body)]


def classes(cfg: dict, rows: list[dict]) -> int:
    found = sorted({r["classes"] for r in rows if r.get("classes")})
    return found[0] if found else len(LITE_TARGET)  # rows before "classes": the lite protocol


def footer(cfg: dict, rows: list[dict]) -> list[str]:
    """Where the rows come from, counted over rows, and the commands."""
    prov = [r.get("provenance") or {} for r in rows]
    if not rows:
        return [f"No rows yet: `{results.command(cfg)}`." if cfg.get("format") else "No rows."]
    if not any(prov):
        return ["Provenance: not recorded (rows from before results folders)."]
    code = (cfg.get("code") or {}).get("sha256")
    commits = _counted(f"{p.get('commit')}" + (" with uncommitted .py changes" if p.get("dirty")
                                                  else "") for p in prov)
    hashes = {p.get("code_hash") for p in prov} - {code}
    machines = _counted(_machine(p.get("machine") or {}) for p in prov)
    packages = _counted(", ".join(f"{k} {v}" for k, v in sorted((p.get("versions") or {}).items()))
                        for p in prov)
    hours = sum(p.get("seconds") or 0 for p in prov) / 3600
    return [f"Code: sha256 {code} over the modules of tools/experiments/provenance.py CODE"
            + (f" (rows recording another: {', '.join(sorted(map(str, hashes)))})" if hashes
               else "") + ".", "", f"Commit: {commits}.", "", f"Packages: {packages}.", "",
            f"Machine: {machines}; {hours:.1f} h of computing in all.", "",
            f"Produced by: `{results.command(cfg)}`.", "",
            f"Regenerate this page: `splitleak experiment report {cfg['results']}`."]


def _machine(m: dict) -> str:
    return (f"{m.get('cpu')}, {m.get('cores')} cores, {m.get('memory_gib')} GiB, "
            f"{m.get('system')}")


def _counted(items) -> str:
    counts = Counter(items)
    return "; ".join(f"{item} ({n} row{'s' * (n != 1)})" for item, n in sorted(counts.items()))


def mean_row(setting: dict, rows: list[dict]) -> dict:
    """One row of means over seeds (the plot's point for a setting)."""
    return _mean(rows) | {"setting": setting}


def _mean(items: list):
    first = items[0]
    if isinstance(first, dict):
        return {k: _mean([i[k] for i in items if isinstance(i, dict) and k in i])
                for k in first if k != "provenance"}
    numbers = [i for i in items if isinstance(i, int | float) and not isinstance(i, bool)]
    if isinstance(first, int | float) and not isinstance(first, bool) and numbers:
        return sum(numbers) / len(numbers)
    return first
