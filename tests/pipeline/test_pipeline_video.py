"""A video of letters on paper through the whole deployment, as a camera would stream them."""

import numpy as np
import pytest

from splitleak.edge.omniglot import ink_from_png
from tests.edge.scenes import correlation, drawn, paper_frame, write_video

pytestmark = pytest.mark.e2e


def test_a_video_of_paper_streams_every_letter_and_skips_blank_pages(deploy, lite, tmp_path):
    rng = np.random.default_rng(6)
    glyphs = lite.test.images[::53][:8]
    frames = []
    for i, glyph in enumerate(glyphs):
        frames.append(paper_frame(glyph, rng))
        if i % 3 == 2:
            frames.append(paper_frame(None, rng))  # the page turned: nothing written
    write_video(tmp_path / "letters.avi", frames)
    n, seen = len(glyphs), tmp_path / "seen"
    dep = deploy("amqtt")
    cloud = dep.start_cloud("--json", wait=False)
    spy = dep.start_eavesdropper("--json", wait=False)
    cloud.wait_for(cloud.ready)
    spy.wait_for(spy.ready)
    edge = dep.start_edge("--node-id", "cam", "--source", f"video:{tmp_path / 'letters.avi'}",
                          "--preview", seen, "--json")
    assert edge.wait(120) == 0, edge.tail()
    cloud.stop()
    spy.stop()
    summary = edge.json()
    assert summary["frames_seen"] == len(frames) and summary["skipped_no_ink"] == len(frames) - n
    assert (summary["sent"], summary["acknowledged"], summary["predictions"]) == (n, n, n)
    assert cloud.json()["accepted"] == n and spy.json()["nodes"] == {"cam": n}
    assert sorted(p.name for p in seen.iterdir()) == [f"{i:06d}.png" for i in range(n)]
    received = [ink_from_png((seen / f"{i:06d}.png").read_bytes()) for i in range(n)]
    assert min(correlation(a, drawn(g)) for a, g in zip(received, glyphs, strict=True)) >= 0.9
