"""Scale-out settings: the share group, the Mosquitto bridge section docs/reliability.md shows."""

import pytest

from splitleak.broker import topics
from splitleak.broker.mosquitto import bridge_text
from splitleak.broker.server import start_broker
from splitleak.tools import cli
from tests.conftest import REPO


def test_a_shared_subscription_names_its_group():
    assert topics.shared("heads", topics.ALL_ACTIVATIONS) == "$share/heads/splitleak/+/activations"
    for bad in ("", "a/b", "a+", "#", "a b"):
        with pytest.raises(ValueError, match="share group"):
            topics.shared(bad, topics.ALL_ACTIVATIONS)


def test_the_docs_show_the_bridge_section_splitleak_writes():
    section = [line for line in bridge_text("mqtt://127.0.0.1:1883").splitlines()
               if line and not line.startswith("#")]
    page = REPO.joinpath("docs/reliability.md").read_text(encoding="utf-8")
    assert "```\n" + "\n".join(section) + "\n```" in page
    assert "remote_username u\nremote_password p" in bridge_text("mqtt://u:p@127.0.0.1:1883")


def test_bridges_that_are_not_generated_are_refused(tmp_path):
    with pytest.raises(ValueError, match="needs --engine mosquitto"):
        start_broker("amqtt", port=1, directory=tmp_path, bridge="mqtt://127.0.0.1:1883")
    with pytest.raises(ValueError, match="only mqtt:// bridges"):
        bridge_text("mqtts://127.0.0.1:8883")


def test_a_bad_share_group_is_one_line(capsys, tiny_run):
    assert cli.main(["cloud", "--run", str(tiny_run), "--broker", "mqtt://127.0.0.1:9",
                     "--share", "a/b"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "share group 'a/b'" in err
