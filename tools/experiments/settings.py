"""The presets of the privacy experiment, their seeds, the jobs (setting x seed) and shards of a
sweep, the network they train in words, and a rough duration. A setting and what one job computes
from it are tools/experiments/job.py's.

Every preset trains one network: GroupNorm and no dropout, the network DP-SGD can train, so that
private, defended and deeper-cut rows compare (and their undefended rows are the same job).

A sweep's jobs are its settings, each once per seed (the seed trains the target and the attacker),
and split into shards by target: the jobs that share a target (and its decoders) run in one shard.
"""

import json
from dataclasses import fields, replace
from pathlib import Path

from splitleak.cloud import rundir
from splitleak.cloud.config import SEED_DP, SPLITS, TrainConfig
from splitleak.tools.experiments import provenance
from splitleak.tools.experiments.frontier import DefendedSetting
from splitleak.tools.experiments.job import Setting, decoder_dir, key_hash, target_dir

DEFENCE_SPLIT = 2  # the defences preset cuts where the undefended leak is total (top-1 1.0)
# rough seconds on our 2-core machines for the estimate printed before a sweep: a 20-epoch
# target, the same under DP-SGD, a 40-epoch decoder by split depth (its input's size), the white
# box on 64 images, the rest of one job's evaluations. From the steps' seconds that rows record
# (provenance "steps" of docs/results/depth's seed-1 rows, 2026-12-05; K = 2..4 ran beside
# other work, and K = 4's decoder stopped early).
# Attacker-aware training: 2.4 times a plain target's epochs (two epochs each at K = 2, quiet
# machine, 2026-12-06); noise-aware training costs what plain training does.
SECONDS = {"train": 220, "train_dp": 450, "train_adversarial": 530,
           "decoder": {1: 960, 2: 530, 3: 580, 4: 150}, "whitebox": 210, "evaluate": 60}
LITE_IMAGES = 1700  # about the lite protocol's train and attacker split: what --limit scales
FRONTIER_WHITEBOX = 16  # the white box's test images a frontier row (the most costly step after training)
NORMS = {"group": "GroupNorm", "batch": "BatchNorm", "none": "no normalisation"}


def preset(name: str) -> list[Setting]:
    """The settings of a preset."""
    base = Setting("non-private")
    if name == "seed-dp":
        out = [base] + [replace(base, name=f"DP z={z}", dp=True, noise_multiplier=z)
                        for z in SEED_DP["epsilon"]]
    elif name == "defences":
        cut = replace(base, name="none", split_after=DEFENCE_SPLIT)
        out = [cut] + [replace(cut, name=spec, defense=spec) for spec in (
            "noise:gauss:4", "noise:gauss:16", "quant:int8")] + [
            replace(cut, name=f"NoPeek α={a:g}", nopeek=a) for a in (1.0, 5.0)]
    elif name == "depth":
        out = [replace(base, name=f"K={k}", split_after=k) for k in SPLITS]
    elif name == "attack":  # the decoders at the seed's cut: ours and the seed's, each stopped
        # early or trained all its epochs as the seed trained it; the white box from both starts
        out = [replace(base, name="default decoder", blank_whitebox=True),
               replace(base, name="default decoder, all epochs", attack_patience=0),
               replace(base, name="seed decoder", attack_arch="seed"),
               replace(base, name="seed decoder, all epochs", attack_arch="seed",
                       attack_patience=0)]
    elif name == "lab":  # lab 4: one of each kind of defence, where the undefended leak is total
        cut = DefendedSetting("none", split_after=DEFENCE_SPLIT)
        out = [cut, replace(cut, name="DP-SGD z=0.7", dp=True, noise_multiplier=0.7),
               replace(cut, name="noise 2std", noise="gauss:2", noise_trained=False),
               replace(cut, name="noise 2std, trained", noise="gauss:2", noise_trained=True),
               replace(cut, name="NoPeek α=20", nopeek=20.0),
               replace(cut, name="attacker-aware α=30, C=8", adversarial=30.0, bottleneck=8)]
    elif name == "frontier":  # every defence as the papers run it, after blocks 2 and 3
        out = _frontier()
    elif name == "all":
        out = list({s.key(): s for p in ("seed-dp", "defences", "depth", "attack")
                    for s in preset(p)}.values())
    else:
        raise ValueError(f"unknown preset '{name}'; expected one of {', '.join(PRESETS)}")
    return out


def _frontier() -> list[Setting]:
    """Every defence at the cut after block 2 over its grid, and the grid's middle after block 3.
    The undefended targets and clean decoders are the depth sweep's (the same training
    settings); the white box inverts FRONTIER_WHITEBOX test images a row. Kept here, not in
    frontier.py (on the rows' code path), so that changing the grid leaves rows current."""
    out = []
    for k, wide in ((2, True), (3, False)):
        cut = DefendedSetting(f"none (K={k})", split_after=k, whitebox_limit=FRONTIER_WHITEBOX)
        grid = dict(gauss=(1, 2, 4, 8), laplace=(2, 8), nopeek=(0.5, 2.0, 5.0, 20.0, 50.0),
                    adversarial=(3.0, 10.0, 30.0), dp=(0.7, 0.5, 0.3)) if wide else dict(
            gauss=(4,), laplace=(), nopeek=(5.0,), adversarial=(10.0,), dp=(0.7,))
        out.append(cut)
        for kind in ("gauss", "laplace"):
            for m in grid[kind]:
                for trained in (True, False):
                    out.append(replace(cut, name=f"{kind} {m}std{' trained' if trained else ''}"
                                       f" (K={k})", noise=f"{kind}:{m}", noise_trained=trained))
        out += [replace(cut, name=f"NoPeek α={a:g} (K={k})", nopeek=a) for a in grid["nopeek"]]
        out += [replace(cut, name=f"adversarial α={a:g}, C=8 (K={k})", adversarial=a,
                        bottleneck=8) for a in grid["adversarial"]]
        out += [replace(cut, name=f"DP-SGD z={z} (K={k})", dp=True, noise_multiplier=z)
                for z in grid["dp"]]
        if wide:
            out += [replace(cut, name=f"bottleneck C=8 (K={k})", bottleneck=8),
                    replace(cut, name=f"gauss 4std trained + NoPeek α=5 (K={k})",
                            noise="gauss:4", noise_trained=True, nopeek=5.0),
                    replace(cut, name=f"adversarial α=10, C=8 + gauss 4std trained (K={k})",
                            adversarial=10.0, bottleneck=8, noise="gauss:4", noise_trained=True)]
    return out


PRESETS = ("seed-dp", "defences", "depth", "attack", "frontier", "all", "lab")
# each preset's seeds; None: the configs' own seed (or --config's), the lab's one student seed
SEEDS = {"seed-dp": (1, 2, 3), "defences": (1, 2, 3), "depth": (1, 2, 3), "attack": (1, 2, 3),
         "frontier": (1,), "all": (1, 2, 3), "lab": (None,)}


def seeds_for(preset_name: str, chosen: list[Setting], asked=None) -> list:
    """The seeds a sweep runs: --seeds, else a seed --config set, else the preset's."""
    given = {s.seed for s in chosen} - {None}
    if asked:
        if given:
            raise ValueError(f"--config sets the seed ({given.pop()}) and --seeds gives "
                             f"{' '.join(map(str, asked))}: give one of them")
        if len(set(asked)) != len(asked):
            raise ValueError(f"--seeds names a seed twice: {' '.join(map(str, asked))}")
        return list(asked)
    return [given.pop()] if given else list(SEEDS[preset_name])


def jobs(chosen: list[Setting], seeds: list) -> list[Setting]:
    """Every setting once per seed: the first seed's settings first, so a sweep stopped part-way
    has covered every setting once before it repeats any."""
    return [replace(s, seed=seed) for seed in seeds for s in chosen]


def shard(todo: list[Setting], index: int, count: int) -> list[Setting]:
    """Shard `index` of `count` (1-based: 1/N .. N/N): the targets sorted by key, the i-th (from
    0) going to shard i mod count + 1, each with every job that trains or attacks it. The shards
    partition the jobs; their order within a shard is `todo`'s."""
    if not 1 <= index <= count:
        raise ValueError(f"shard {index}/{count}: expected 1 <= I <= N (1-based)")
    targets = sorted({s.target_key() for s in todo})
    mine = {t for i, t in enumerate(targets) if i % count == index - 1}
    return [s for s in todo if s.target_key() in mine]


def from_dict(fields: dict) -> Setting:
    """A setting as a results folder stores it (a frontier setting when it has their fields)."""
    return (DefendedSetting if "adversarial" in fields else Setting)(**fields)


def code_path(chosen: list[Setting]) -> tuple[str, ...]:
    """The modules a sweep's rows run (what its results folder records a hash of):
    provenance.CODE, without DP-SGD's modules when no setting trains with DP-SGD (cloud/train.py
    imports them only then), with the defended training's when a setting trains a defence in or
    scales its noise by the target (tools/experiments/frontier.py)."""
    files = tuple(f for f in provenance.CODE
                  if f not in provenance.DP or any(s.dp for s in chosen))
    return files + (provenance.DEFENDED if any(isinstance(s, DefendedSetting) for s in chosen)
                    else ())


def unseeded_key(setting: dict) -> str:
    """The key of a row's setting (a dict, as rows store it) without its seed: what seeds share."""
    return key_hash({k: v for k, v in setting.items() if v is not None and k != "seed"})


def with_config(settings: list[Setting], path: Path | None) -> list[Setting]:
    """The settings with the fields of a JSON object file (--config) replaced in every one."""
    if path is None:
        return settings
    overrides = json.loads(Path(path).read_text())
    known = {f.name for f in fields(Setting)} - {"name"}
    if not isinstance(overrides, dict) or set(overrides) - known:
        bad = sorted(set(overrides) - known) if isinstance(overrides, dict) else overrides
        raise ValueError(f"{path}: unknown setting key(s) {bad}; expected a JSON "
                         f"object with keys from {', '.join(sorted(known))}")
    return [replace(s, **overrides) for s in settings]


def recipe(settings: list[Setting]) -> str:
    """The network the settings train and the decoders that attack it, in words; ValueError if
    they train more than one (a sweep's rows compare only on one network)."""
    said = {_recipe(s) for s in settings}
    if len(said) != 1:
        raise ValueError(f"the settings train {len(said)} different networks: "
                         + "; ".join(sorted(said)))
    return said.pop()


def _recipe(s: Setting) -> str:
    dropout = f"dropout {s.dropout:g}" if s.dropout else "no dropout"
    data = f", first {s.limit} images" if s.limit else ""
    return (f"target {NORMS.get(s.norm, s.norm)}, {dropout}, {s.epochs} epochs{data}; "
            f"decoders {s.attack_epochs} epochs; white box on {s.whitebox_limit} test images")


def estimate_seconds(settings: list[Setting], done: set, models: Path | None = None) -> float:
    """A rough duration of the settings (jobs: one per seed) not yet done, from SECONDS scaled by
    epochs and --limit: each target and decoder counted once, and not at all when the models
    folder already holds it. Shards (`shard`) never share a target, so their estimates add up to
    the whole."""
    todo = [s for s in settings if s.key() not in done]
    targets = {s.target_key(): s for s in todo}
    decoders = {decoder_dir(models or Path(), s, d): s for s in todo for d in _attacked(s)}
    if models is not None:
        targets = {k: s for k, s in targets.items()
                   if not rundir.finished(target_dir(models, s))}
        decoders = {d: s for d, s in decoders.items() if not rundir.finished(d)}
    return (sum(SECONDS[_training(s)] * s.epochs / TrainConfig.epochs * _data(s)
                for s in targets.values())
            + sum(SECONDS["decoder"][s.split_after] * s.attack_epochs / Setting.attack_epochs
                  * _data(s) for s in decoders.values())
            + sum(SECONDS["evaluate"] + SECONDS["whitebox"] * s.whitebox_limit / Setting.whitebox_limit
                  * (2 if s.blank_whitebox else 1) for s in todo))


def _attacked(s: Setting) -> set[str]:
    """The defences a setting's decoders train through: none (the naive decoder) and its edge
    noise, given or trained in (the frontier's job adds it at the edge: an adaptive decoder)."""
    noise = getattr(s, "noise", None)
    return {"", s.defense or (f"noise:{noise}" if noise else "")}


def _training(s: Setting) -> str:
    if s.dp:
        return "train_dp"
    return "train_adversarial" if getattr(s, "adversarial", None) else "train"


def _data(s: Setting) -> float:
    """The share of the lite training images a setting's runs use."""
    return min(1.0, s.limit / LITE_IMAGES) if s.limit else 1.0
