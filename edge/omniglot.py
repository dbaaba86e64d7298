"""Omniglot images from the upstream zips, without TensorFlow.

Polarity, used everywhere in splitleak: **ink is 1.0, paper is 0.0** (float32, 105x105x1).
The upstream PNGs are black strokes on white; we invert them so that an image is mostly zeros
and a blank page is all zeros.

Zip paths look like `images_background_small1/<Alphabet>/characterNN/<id>_<drawer>.png`.
"""

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 105
ZIPS = {  # tfds split name -> upstream archive
    "train": "images_background.zip",
    "test": "images_evaluation.zip",
    "small1": "images_background_small1.zip",
    "small2": "images_background_small2.zip",
}


@dataclass
class ImageSet:
    """Images (N, 105, 105, 1) float32 with ink = 1, and one alphabet name per image."""

    images: np.ndarray
    alphabets: np.ndarray  # str, (N,)

    def __len__(self) -> int:
        return len(self.images)

    def select(self, mask) -> "ImageSet":
        return ImageSet(self.images[mask], self.alphabets[mask])


def ink_from_png(data: bytes) -> np.ndarray:
    """Decode one Omniglot PNG to a (105, 105, 1) float32 array with ink = 1."""
    gray = np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=np.float32)
    if gray.shape != (SIZE, SIZE):
        raise ValueError(f"expected a {SIZE}x{SIZE} image, got {gray.shape[1]}x{gray.shape[0]}")
    return (1.0 - gray / 255.0)[..., None]


def to_png(image: np.ndarray) -> bytes:
    """An image (105, 105, 1) in [0, 1], ink = 1, as a PNG drawn black on white (the inverse
    of `ink_from_png` for 8-bit images)."""
    pixels = np.round((1.0 - image[..., 0]) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def content_hashes(images: np.ndarray) -> list[str]:
    """sha256 of each image's pixels, as stored in 8 bits: equal images, equal hashes."""
    pixels = np.round(images * 255).astype(np.uint8)
    return [hashlib.sha256(p.tobytes()).hexdigest() for p in pixels]


def read_zip(path: Path) -> ImageSet:
    """Every PNG in an upstream Omniglot zip, in the archive's sorted path order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Omniglot archive not found: {path}")
    try:
        with zipfile.ZipFile(path) as zf:
            names = sorted(n for n in zf.namelist() if n.endswith(".png"))
            images = np.stack([ink_from_png(zf.read(n)) for n in names]) if names else None
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable Omniglot zip ({exc}); "
                         "re-fetch it from the Omniglot repository's python/ folder") from exc
    if images is None:
        raise ValueError(f"{path} holds no PNG images; expected an upstream Omniglot zip")
    alphabets = np.array([n.split("/")[1] for n in names])
    return ImageSet(images, alphabets)


def read_split(directory: Path, split: str) -> ImageSet:
    """One tfds-named split ('small1', 'small2', 'train', 'test') from a folder of upstream zips."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(
            f"Omniglot directory not found: {directory} (expected a folder holding "
            f"{ZIPS['small1']} and {ZIPS['small2']})")
    return read_zip(directory / ZIPS[split])


def read_folder(directory: Path) -> tuple[np.ndarray, list[str]]:
    """All PNGs below a folder, sorted by path, as images with ink = 1 and their paths."""
    paths = sorted(Path(directory).rglob("*.png"))
    if not paths:
        raise FileNotFoundError(f"no .png images found below {directory}")
    return np.stack([ink_from_png(p.read_bytes()) for p in paths]), [str(p) for p in paths]
