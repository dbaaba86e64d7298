import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from splitleak.cloud.data import imageset_from_tfds, load_protocol
from splitleak.edge.omniglot import content_hashes
from tests.conftest import splitleak


def test_lite_counts_and_disjoint(lite):
    assert lite.sizes() == {"train": 1711, "val": 409, "attacker": 1720, "test": 1000}
    assert lite.classes == ["Japanese_(katakana)", "Sanskrit", "Tagalog"]
    assert set(lite.test.alphabets) == {"Greek", "Latin"}
    assert set(lite.attacker.alphabets) == {"Balinese", "Early_Aramaic", "Korean"}
    assert not any(lite.overlaps.values())
    sets = [set(content_hashes(s.images)) for s in (lite.train, lite.val, lite.attacker, lite.test)]
    for i, a in enumerate(sets):
        for b in sets[i + 1:]:
            assert not a & b


def test_polarity_ink_is_one(lite):
    images = lite.test.images
    assert images.dtype == np.float32 and images.shape[1:] == (105, 105, 1)
    assert images.min() == 0.0 and images.max() == 1.0
    assert images[:, 0, 0, 0].mean() < 0.01  # the corners are paper
    assert 0.03 < images.mean() < 0.15  # strokes are a small fraction of the page


def test_lite_split_is_deterministic(omniglot_dir, lite):
    again = load_protocol("lite", omniglot_dir)
    assert np.array_equal(again.val.images, lite.val.images)
    assert set(lite.labels(lite.train)) == {0, 1, 2}


def test_cli_data_prints_counts(omniglot_dir):
    result = splitleak("data", "--protocol", "lite")
    assert result.returncode == 0, result.stderr
    assert "train       1711" in result.stdout and "content-hash check: disjoint" in result.stdout


@pytest.mark.parametrize("args, expected", [
    (["--protocol", "lite", "--omniglot-dir", "/nonexistent/omniglot"],
     "Omniglot directory not found: /nonexistent"),
    (["--protocol", "seed"], "needs images_evaluation.zip"),
])
def test_cli_data_bad_input(omniglot_dir, args, expected):
    result = splitleak("data", *args)
    assert result.returncode == 2
    assert expected in result.stderr and "Traceback" not in result.stderr


def test_corrupt_zip_is_one_clear_line(tmp_path):
    (tmp_path / "images_background_small1.zip").write_bytes(b"not a zip at all")
    with zipfile.ZipFile(tmp_path / "images_background_small2.zip", "w") as zf:
        zf.writestr("x/readme.txt", "no images")
    result = splitleak("data", "--protocol", "lite", "--omniglot-dir", tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "images_background_small1.zip is not a readable Omniglot zip" in result.stderr


def test_seed_protocol_removes_shared_test_images(tmp_path, omniglot_dir):
    # Stand in for the (online-only) evaluation zip with mirrored small1 images: new content.
    for name in ("images_background_small1.zip", "images_background_small2.zip"):
        (tmp_path / name).symlink_to(omniglot_dir / name)
    with zipfile.ZipFile(omniglot_dir / "images_background_small1.zip") as src, \
            zipfile.ZipFile(tmp_path / "images_evaluation.zip", "w") as dst:
        for n in src.namelist():
            if n.endswith(".png") and ("/Korean/" in n or "/Balinese/" in n):
                mirrored = Image.open(io.BytesIO(src.read(n))).transpose(Image.FLIP_LEFT_RIGHT)
                buf = io.BytesIO()
                mirrored.save(buf, "PNG")
                dst.writestr(n.replace("_small1", "_evaluation"), buf.getvalue())
    proto = load_protocol("seed", tmp_path)
    assert proto.removed_from_test == 1000  # Greek and Latin are in small1 and small2
    assert len(proto.test) == 3120 - 1000 and not any(proto.overlaps.values())
    assert proto.classes == ["Balinese", "Korean"] and len(proto.train) == 1280
    leaky = load_protocol("seed", tmp_path, leaky=True)
    assert leaky.removed_from_test == 0 and leaky.overlaps["attacker/test"] == 1000


def test_unknown_protocol(omniglot_dir):
    with pytest.raises(ValueError, match="unknown protocol 'big'; expected one of lite, seed"):
        load_protocol("big", omniglot_dir)


def test_tfds_examples_convert_to_our_polarity():
    import tensorflow as tf

    rgb = np.full((2, 105, 105, 3), 255, np.uint8)
    rgb[1, 10:20, 10:20] = 0  # a black stroke on white paper
    ds = tf.data.Dataset.from_tensor_slices({"image": rgb, "alphabet": np.array([1, 0])})
    images = imageset_from_tfds(ds, ["Greek", "Latin"])
    assert list(images.alphabets) == ["Latin", "Greek"]
    assert images.images[0].max() == 0.0 and images.images[1, 15, 15, 0] == 1.0
