"""Live and recorded frames for the edge: a camera or a video file, as the model's inputs.

Sources (`splitleak edge --source`):
- `camera`: the Raspberry Pi camera through picamera2 (Raspberry Pi OS's `python3-picamera2`;
  a venv sees it only when made with --system-site-packages), else OpenCV's camera 0;
- `camera:N`: OpenCV's camera N (a USB webcam);
- `video:FILE`: a recorded video, read through OpenCV.
OpenCV is the optional extra `splitleak[camera]`; the Pi's picamera2 path never needs it. Each
frame becomes the model's input through edge/paper.py; a frame without ink is skipped and
counted (`Inputs.skipped`), never published.
"""

import importlib
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from splitleak.edge.paper import Paper, to_input

log = logging.getLogger("splitleak.edge")

LIVE_SOURCES = "camera | camera:N | video:FILE"
CAPTURE_SIZE = (640, 480)  # what the camera is asked for: ample for a letter held up to it
NEEDS_OPENCV = "pip install 'splitleak[camera]' (opencv-python-headless)"


def is_live(source: str) -> bool:
    """Whether `source` names a camera or a video (else: a file source of images)."""
    return source == "camera" or source.startswith(("camera:", "video:"))


def _opencv():
    try:
        return importlib.import_module("cv2")
    except ImportError:
        return None


class PiCamera:
    """The Raspberry Pi camera (libcamera, through picamera2): frames in BGR order."""

    order = "BGR"  # picamera2's "RGB888" stores blue first

    def __init__(self, picamera2_module, size=CAPTURE_SIZE):
        self.camera = picamera2_module.Picamera2()
        self.camera.configure(self.camera.create_video_configuration(
            main={"size": size, "format": "RGB888"}))
        self.camera.start()

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            yield self.camera.capture_array("main")

    def close(self) -> None:
        self.camera.stop()
        self.camera.close()


class OpenCVFrames:
    """A camera (by index) or a video file through OpenCV's VideoCapture: frames in BGR order."""

    order = "BGR"

    def __init__(self, cv2, target, what: str):
        self.capture, self.what = cv2.VideoCapture(target), what
        if not self.capture.isOpened():
            self.capture.release()
            raise OSError(f"cannot open {what}")
        if isinstance(target, int):  # a camera: keep the newest frame, not a queue of old ones
            self.capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            ok, frame = self.capture.read()
            if not ok:  # a video's end; a camera unplugged
                return
            yield frame

    def close(self) -> None:
        self.capture.release()


def open_frames(source: str):
    """The frame reader for a live `source` (see LIVE_SOURCES); one-line errors."""
    kind, _, arg = source.partition(":")
    cv2 = _opencv()
    if kind == "video":
        path = Path(arg)
        if not arg or not path.is_file():
            raise FileNotFoundError(f"--source video:FILE: no video file {arg!r}")
        if cv2 is None:
            raise ImportError(f"--source video:FILE needs OpenCV: {NEEDS_OPENCV}")
        return OpenCVFrames(cv2, str(path), f"{path} as a video (a format FFmpeg reads?)")
    if kind != "camera":
        raise ValueError(f"unknown live --source {source!r}; expected {LIVE_SOURCES}")
    if not arg:
        try:
            return PiCamera(importlib.import_module("picamera2"))
        except ImportError:
            if cv2 is None:
                raise ImportError(
                    "--source camera needs picamera2 (Raspberry Pi OS: sudo apt install "
                    "python3-picamera2, in a venv made with --system-site-packages) or OpenCV "
                    f"for a USB webcam ({NEEDS_OPENCV})") from None
            arg = "0"
    if not arg.isdigit():
        raise ValueError(f"--source camera:N takes a camera number (0, 1, …), got {arg!r}")
    if cv2 is None:
        raise ImportError(f"--source camera:{arg} needs OpenCV: {NEEDS_OPENCV}")
    return OpenCVFrames(cv2, int(arg), f"camera {arg} (plugged in? on Linux: ls /dev/video*, "
                                       "and is this user in the video group?)")


class Inputs:
    """The model's inputs from a live source: frames without ink skipped and counted.

    Iterating yields (size, size, 1) float32 images, ink = 1, and None for each frame skipped
    (the edge keeps its connections alive meanwhile); `close()` releases the camera.
    """

    def __init__(self, source: str, size: int, paper: Paper | None = None):
        self.source, self.paper = source, paper or Paper(size=size)
        self.frames = open_frames(source)
        self.seen = self.skipped = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        for frame in self.frames:
            self.seen += 1
            image = to_input(frame, self.paper, self.frames.order)
            self.skipped += image is None
            yield image

    def close(self) -> None:
        self.frames.close()

    def counts(self) -> dict:
        return {"frames_seen": self.seen, "skipped_no_ink": self.skipped}
