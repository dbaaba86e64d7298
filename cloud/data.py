"""Data protocols: which Omniglot images the target, the attacker and the attack test see.

Two protocols, both returning a `Protocol` of `ImageSet`s (ink = 1, see edge/omniglot.py):

- `lite` (offline, the two small zips): target = the alphabets only in small2
  (Japanese_(katakana), Sanskrit, Tagalog), split 80/20 into train/validation by content hash;
  attacker = the alphabets only in small1 (Balinese, Early_Aramaic, Korean);
  attack test = Greek + Latin (in both archives; taken once).
- `seed` (the reference experiment): target = the 20-alphabet evaluation split (first 11,000
  train, the rest validation); attacker = small1; attack test = small2 minus every image that is
  also in small1 (Greek and Latin). `leaky=True` keeps them, as the seed did.

Images come from a folder of upstream zips (`omniglot_dir`, or env SPLITLEAK_OMNIGLOT_DIR) or,
when neither is set, from tensorflow-datasets (which downloads on a machine that is online).
Importing this module does not import TensorFlow.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from splitleak.edge.omniglot import ZIPS, ImageSet, content_hashes, read_split

PROTOCOLS = ("lite", "seed")
LITE_TARGET = ("Japanese_(katakana)", "Sanskrit", "Tagalog")
LITE_ATTACKER = ("Balinese", "Early_Aramaic", "Korean")
LITE_TEST = ("Greek", "Latin")
SEED_TRAIN_SIZE = 11_000
ENV_DIR = "SPLITLEAK_OMNIGLOT_DIR"


@dataclass
class Protocol:
    name: str
    source: str
    train: ImageSet
    val: ImageSet
    attacker: ImageSet
    test: ImageSet
    classes: list[str]
    removed_from_test: int = 0
    overlaps: dict = field(default_factory=dict)  # "a/b" -> images shared between sets a and b

    def labels(self, images: ImageSet) -> np.ndarray:
        """Class ids (index into `classes`) for a set of target images."""
        index = {name: i for i, name in enumerate(self.classes)}
        return np.array([index[a] for a in images.alphabets], dtype=np.int64)

    def sizes(self) -> dict:
        return {k: len(getattr(self, k)) for k in ("train", "val", "attacker", "test")}


def resolve_dir(omniglot_dir=None) -> Path | None:
    """The folder of upstream zips to read, or None to use tensorflow-datasets."""
    chosen = omniglot_dir or os.environ.get(ENV_DIR) or None
    return Path(chosen) if chosen else None


def load_split(split: str, omniglot_dir=None) -> ImageSet:
    """One tfds-named Omniglot split, from the zips folder if given, else from tfds."""
    directory = resolve_dir(omniglot_dir)
    if directory is None:
        return _tfds_split(split)
    if not (directory / ZIPS[split]).exists() and split in ("train", "test"):
        raise FileNotFoundError(
            f"Omniglot split '{split}' needs {ZIPS[split]} in {directory}; it is not in the offline "
            "copy: run online without --omniglot-dir so tensorflow-datasets downloads it")
    return read_split(directory, split)


def _tfds_split(split: str) -> ImageSet:
    import tensorflow_datasets as tfds

    try:
        ds, info = tfds.load("omniglot", split=split, with_info=True)
    except Exception as exc:  # tfds raises many kinds when offline
        raise OSError(
            f"could not load Omniglot '{split}' with tensorflow-datasets ({type(exc).__name__}); "
            f"offline, pass --omniglot-dir DIR or set {ENV_DIR} to a folder holding the upstream "
            f"zips ({ZIPS['small1']}, {ZIPS['small2']})") from exc
    return imageset_from_tfds(ds, info.features["alphabet"].names)


def imageset_from_tfds(ds, alphabet_names) -> ImageSet:
    """Convert tfds Omniglot examples (RGB uint8, black ink on white) to an ImageSet."""
    images, alphabets = [], []
    for ex in ds.as_numpy_iterator():
        gray = ex["image"].astype(np.float32).mean(axis=-1, keepdims=True)
        images.append(1.0 - gray / 255.0)
        alphabets.append(alphabet_names[int(ex["alphabet"])])
    return ImageSet(np.stack(images), np.array(alphabets))


def _by_hash(images: ImageSet) -> tuple[ImageSet, np.ndarray]:
    """Sort a set by content hash (source-independent order); also return the hashes."""
    hashes = np.array(content_hashes(images.images))
    order = np.argsort(hashes, kind="stable")
    return images.select(order), hashes[order]


def _overlaps(sets: dict[str, ImageSet]) -> dict:
    hashed = {k: set(content_hashes(v.images)) for k, v in sets.items()}
    names = list(sets)
    return {f"{a}/{b}": len(hashed[a] & hashed[b])
            for i, a in enumerate(names) for b in names[i + 1:]}


def load_protocol(name: str, omniglot_dir=None, leaky: bool = False) -> Protocol:
    """Build a protocol's four sets and check by content hash which of them share images."""
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol '{name}'; expected one of {', '.join(PROTOCOLS)}")
    directory = resolve_dir(omniglot_dir)
    source = str(directory) if directory else "tensorflow-datasets"
    small1 = load_split("small1", directory)
    small2 = load_split("small2", directory)
    if name == "lite":
        target, hashes = _by_hash(small2.select(np.isin(small2.alphabets, LITE_TARGET)))
        is_val = np.array([int(h[:8], 16) % 5 == 0 for h in hashes])
        proto = Protocol(name, source, target.select(~is_val), target.select(is_val),
                         _by_hash(small1.select(np.isin(small1.alphabets, LITE_ATTACKER)))[0],
                         _by_hash(small2.select(np.isin(small2.alphabets, LITE_TEST)))[0],
                         classes=list(LITE_TARGET))
    else:
        target = load_split("test", directory)
        test, removed = small2, 0
        if not leaky:
            seen = set(content_hashes(small1.images))
            keep = np.array([h not in seen for h in content_hashes(small2.images)])
            test, removed = small2.select(keep), int((~keep).sum())
        proto = Protocol(name, source, target.select(slice(0, SEED_TRAIN_SIZE)),
                         target.select(slice(SEED_TRAIN_SIZE, None)), small1, test,
                         classes=sorted(set(target.alphabets)), removed_from_test=removed)
    proto.overlaps = _overlaps({"target": _concat(proto.train, proto.val),
                                "attacker": proto.attacker, "test": proto.test})
    if not leaky and any(proto.overlaps.values()):
        raise ValueError(f"protocol '{name}' sets share images: {proto.overlaps}")
    return proto


def _concat(a: ImageSet, b: ImageSet) -> ImageSet:
    return ImageSet(np.concatenate([a.images, b.images]), np.concatenate([a.alphabets, b.alphabets]))


SOURCES = "lite-val | lite-test | folder:DIR | zip:FILE"
DEFAULT_SOURCE = "lite-val"  # what the device classifies: the target's validation images


def load_source(source: str, omniglot_dir=None) -> np.ndarray:
    """Images (N, 105, 105, 1) float32, ink = 1, for an edge --source string."""
    from splitleak.edge import omniglot

    kind, _, arg = source.partition(":")
    if source in ("lite-val", "lite-test"):
        proto = load_protocol("lite", omniglot_dir)
        return (proto.val if source == "lite-val" else proto.test).images
    if kind == "folder" and arg:
        return omniglot.read_folder(arg)[0]
    if kind == "zip" and arg:
        return omniglot.read_zip(arg).images
    raise ValueError(f"unknown --source {source!r}; expected {SOURCES}")
