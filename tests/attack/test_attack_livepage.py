"""The live page names the activation shape its decoder reads."""

import urllib.request

import pytest

from splitleak.attack.livepage import LivePage


@pytest.mark.parametrize("shape", [(13, 13, 32), (1, 1, 32)])
def test_page_shows_the_decoders_activation_shape(shape):
    page = LivePage("127.0.0.1", 0, "splitleak/+/activation", dict, shape)
    try:
        html = urllib.request.urlopen(page.url, timeout=5).read().decode()
    finally:
        page.stop()
    assert f"reconstructed from a {'x'.join(map(str, shape))} activation" in html
    assert "splitleak/+/activation" in html
