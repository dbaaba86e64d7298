"""Run folders and attack folders: their file names, their manifests, the device a run deploys.

RUN_DIR, written by `splitleak train` (cloud/train.py):
  mobile.keras, head.keras           the two stages (Keras)
  mobile.tflite, mobile_int8.tflite  the mobile stage for the edge
  metrics.json                       per-epoch accuracy and loss, TFLite parity
  manifest.json                      protocol, seeds, versions, shapes and dtypes, sha256 of all

ATTACK_DIR, written by `splitleak attack train` (attack/store.py):
  decoder.keras   the decoder
  manifest.json   target (path, sha256, its run's protocol), data, config, versions, sha256s
  history.json    per-epoch losses, the epoch kept
  eval.json       after `attack eval` / `whitebox`, beside PNG grids

Every other module names these files through this one. Default folders live under runs/:
runs/lite for the default split, runs/lite-k<K> for another, runs/attack-lite(-k<K>) for its decoder.
"""

from pathlib import Path

from splitleak.cloud import artifacts
from splitleak.cloud.config import DEFAULT_SPLIT
from splitleak.edge.defences import Device

MOBILE_KERAS = "mobile.keras"
HEAD_KERAS = "head.keras"
MOBILE_TFLITE = "mobile.tflite"
MOBILE_INT8 = "mobile_int8.tflite"
MOBILE_MODELS = (MOBILE_TFLITE, MOBILE_INT8)  # what a node may announce it runs
METRICS = "metrics.json"
MANIFEST = "manifest.json"
DECODER = "decoder.keras"
HISTORY = "history.json"
EVAL = "eval.json"

RUNS = Path("runs")
DEFAULT_PROTOCOL = "lite"


def mobile(run_dir, int8: bool = False) -> Path:
    """The run's TFLite mobile stage (float32, or the int8 file)."""
    return Path(run_dir) / (MOBILE_INT8 if int8 else MOBILE_TFLITE)


def device(run_dir, defense: str | None = None, seed: int | None = None, int8: bool = False,
           threads: int = 1) -> Device:
    """What a device deploying this run publishes: its mobile stage, then `defense`."""
    return Device.from_model(mobile(run_dir, int8), defense, seed, threads)


def finished(folder) -> bool:
    """A run or attack folder is written whole (cloud/artifacts.atomic_dir): its manifest is last."""
    return (Path(folder) / MANIFEST).is_file()


def read_manifest(folder) -> dict:
    return artifacts.read_json(Path(folder) / MANIFEST)


def read_metrics(run_dir) -> dict:
    return artifacts.read_json(Path(run_dir) / METRICS)


def activation_shape(run_dir) -> tuple:
    """The shape of one activation, as the run's manifest states it."""
    manifest = read_manifest(run_dir)
    try:
        return tuple(manifest["activation"]["shape"])
    except (KeyError, TypeError):
        raise ValueError(f"{Path(run_dir) / MANIFEST} has no activation shape: "
                         "not a splitleak run") from None


def run_split(run_dir) -> int | None:
    """The split depth of a finished run (runs made before there was a choice: the default), else
    None."""
    if not finished(run_dir):
        return None
    return read_manifest(run_dir).get("split_after", DEFAULT_SPLIT)


def default_run_dir(protocol: str = DEFAULT_PROTOCOL, split_after: int = DEFAULT_SPLIT,
                    prefix: str = "") -> Path:
    """runs/<prefix><protocol>, with -k<K> for a split other than the default."""
    suffix = "" if split_after == DEFAULT_SPLIT else f"-k{split_after}"
    return RUNS / f"{prefix}{protocol}{suffix}"


def default_attack_dir(split_after: int = DEFAULT_SPLIT) -> Path:
    """The black-box decoder the demo trains against runs/lite(-k<K>)."""
    return default_run_dir(DEFAULT_PROTOCOL, split_after, "attack-")


def pick_run(run: Path | None, split_after: int | None) -> tuple[Path, int]:
    """The run folder and its split depth: `run` wins, `split_after` picks runs/lite-k<K>;
    an existing run trained at another depth is refused."""
    if run is None:
        k = split_after or DEFAULT_SPLIT
        return default_run_dir(DEFAULT_PROTOCOL, k), k
    trained = run_split(run)
    if trained is not None and split_after is not None and trained != split_after:
        raise ValueError(f"{run} was trained with --split-after {trained}, not {split_after}: "
                         "pass the run's depth, or another --run")
    return Path(run), trained or split_after or DEFAULT_SPLIT
