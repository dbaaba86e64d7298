"""Camera frames to model inputs (edge/paper.py) and the frame sources (edge/camera.py), no camera."""

import types

import numpy as np
import pytest

from splitleak.edge import camera, paper
from tests.edge.scenes import correlation, drawn, paper_frame, write_video


@pytest.fixture(scope="module")
def glyphs(lite):
    return lite.test.images[::37][:12]


def test_a_glyph_on_uneven_paper_becomes_the_glyph(glyphs):
    rng = np.random.default_rng(1)
    for glyph in glyphs:
        image = paper.to_input(paper_frame(glyph, rng), order="BGR")
        assert image.shape == (105, 105, 1) and image.dtype == np.float32
        assert set(np.unique(image)) <= {0.0, 1.0}
        assert correlation(image, drawn(glyph)) >= 0.9


def test_blank_paper_has_no_ink_however_it_is_lit():
    rng = np.random.default_rng(2)
    assert all(paper.to_input(paper_frame(None, rng), order="BGR") is None for _ in range(5))
    assert paper.to_input(np.full((240, 320), 200, np.uint8)) is None  # an even grey page


def test_grey_and_colour_frames_agree(glyphs):
    rng = np.random.default_rng(3)
    frame = paper_frame(glyphs[0], rng, colour=False)
    grey = paper.to_input(frame)
    assert np.array_equal(grey, paper.to_input(np.repeat(frame[..., None], 3, axis=2)))
    assert np.array_equal(grey, paper.to_input(frame[..., None]))


def test_the_ink_box_fills_the_input_with_its_margin():
    mask = np.zeros((300, 400), bool)
    mask[100:200, 50:350] = True  # a bar 100 x 300
    image = paper.fit(mask, paper.Paper(margin=0.1))[..., 0]
    rows, cols = np.flatnonzero(image.any(1)), np.flatnonzero(image.any(0))
    assert cols[0] == pytest.approx(105 * 30 / 360, abs=1.5)  # margin: 30 of 360 each side
    assert rows[-1] - rows[0] + 1 == pytest.approx(105 * 100 / 360, abs=1.5)


def test_a_frame_that_is_not_an_image_is_one_line():
    with pytest.raises(ValueError, match="expected a grey or colour frame"):
        paper.grayscale(np.zeros((4, 4, 2), np.uint8))


class FakePicamera2:
    """Stands in for picamera2.Picamera2: yields the frames it was given (BGR, as RGB888)."""

    frames: list = []
    made: list = []

    def __init__(self):
        self.config, self.running, self.closed, self.i = None, False, False, 0
        FakePicamera2.made.append(self)

    def create_video_configuration(self, main):
        return {"main": main}

    def configure(self, config):
        self.config = config

    def start(self):
        self.running = True

    def capture_array(self, name):
        assert self.running and name == "main"
        frame = self.frames[self.i % len(self.frames)]
        self.i += 1
        return frame

    def stop(self):
        self.running = False

    def close(self):
        self.closed = True


def test_the_pi_camera_path_through_picamera2(monkeypatch, glyphs):
    rng = np.random.default_rng(4)
    FakePicamera2.frames = [paper_frame(glyphs[0], rng), paper_frame(None, rng),
                            paper_frame(glyphs[1], rng)]
    monkeypatch.setitem(__import__("sys").modules, "picamera2",
                        types.SimpleNamespace(Picamera2=FakePicamera2))
    monkeypatch.setattr(camera, "_opencv", lambda: None)  # picamera2 alone, no OpenCV
    inputs = camera.Inputs("camera", 105)
    got = [image for _, image in zip(range(6), inputs, strict=False)]
    inputs.close()
    cam = FakePicamera2.made[-1]
    assert cam.config["main"] == {"size": camera.CAPTURE_SIZE, "format": "RGB888"}
    assert cam.closed and not cam.running
    assert [g is None for g in got] == [False, True, False] * 2
    assert inputs.counts() == {"frames_seen": 6, "skipped_no_ink": 2}
    assert correlation(got[2], drawn(glyphs[1])) >= 0.9


def test_a_video_file_through_opencv(tmp_path, glyphs):
    rng = np.random.default_rng(5)
    frames = [paper_frame(g, rng) for g in glyphs[:3]] + [paper_frame(None, rng)]
    write_video(tmp_path / "v.avi", frames)
    inputs = camera.Inputs(f"video:{tmp_path / 'v.avi'}", 105)
    got = list(inputs)
    inputs.close()
    assert len(got) == 4 and got[3] is None
    assert [correlation(a, drawn(g)) >= 0.9 for a, g in zip(got[:3], glyphs[:3], strict=True)] == [True] * 3


@pytest.mark.parametrize("source, message", [
    ("video:/nowhere/v.avi", "no video file"),
    ("camera:front", "takes a camera number"),
    ("webcam", "unknown live --source"),
])
def test_bad_sources_are_one_line(source, message):
    with pytest.raises((ValueError, OSError), match=message):
        camera.open_frames(source)


def test_without_opencv_or_picamera2_the_fix_is_named(monkeypatch, tmp_path):
    monkeypatch.setattr(camera, "_opencv", lambda: None)
    monkeypatch.setitem(__import__("sys").modules, "picamera2", None)
    with pytest.raises(ImportError, match=r"python3-picamera2.*splitleak\[camera\]"):
        camera.open_frames("camera")
    (tmp_path / "v.avi").write_bytes(b"x")
    with pytest.raises(ImportError, match=r"splitleak\[camera\]"):
        camera.open_frames(f"video:{tmp_path / 'v.avi'}")


def test_a_file_that_is_no_video_is_one_line(tmp_path):
    (tmp_path / "v.avi").write_bytes(b"not a video")
    with pytest.raises(OSError, match="cannot open"):
        camera.open_frames(f"video:{tmp_path / 'v.avi'}")
