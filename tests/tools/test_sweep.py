"""The split-depth experiment: `experiment sweep --preset depth` (the old `sweep depth` names it),
its cut columns, and its bytes-per-frame plot."""

from PIL import Image

from splitleak.tools import cli
from splitleak.tools.experiments import settings, tables
from tests.tools.test_experiment import _row


def test_the_old_command_names_the_new_one_and_exits_2(capsys):
    assert cli.main(["sweep", "depth", "--whitebox-limit", "16"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("splitleak sweep depth is now: splitleak experiment sweep --preset depth "
                   "[--config FILE] [--out DIR]")


def test_the_depth_preset_cuts_after_every_block_on_one_network():
    depth = settings.preset("depth")
    assert [s.split_after for s in depth] == [1, 2, 3, 4]
    assert len({(s.norm, s.dropout, s.epochs, s.defense, s.dp) for s in depth}) == 1


def test_depth_table_has_a_row_per_cut_with_its_activation_and_bytes():
    rows = [_row(s, top1) for s, top1 in zip(settings.preset("depth"), (1.0, 1.0, 0.95, 0.115),
                                             strict=True)]
    cols = tables.columns(rows)  # report.html's table, as Markdown rows
    text = ["| " + " | ".join(title for title, _ in cols) + " |", "|---" * len(cols) + "|"]
    text += ["| " + " | ".join(f(r) for _, f in cols) + " |" for r in rows]
    assert text[0].startswith("| setting | activation | bytes/frame | accuracy, defended |")
    assert text[2].startswith("| K=1 | 33x33x32 | 139,442 | 0.880 |")
    assert text[5].startswith("| K=4 | 1x1x32 | 178 |") and "**0.115** (of 1,000)" in text[5]
    assert "black box, white box's images" in text[0] and "**0.058** (of 64)" in text[5]
    assert all(line.count("|") == text[0].count("|") for line in text[1:6])
    flat = tables.csv_rows(rows)
    assert flat[0]["activation"] == "33x33x32" and flat[3]["blackbox_subset_top1"] == 0.0575


def test_depth_plot_adds_identification_against_bytes(tmp_path):
    depth = [_row(s, 0.5) for s in settings.preset("depth")]
    one_cut = [_row(s, 0.5) for s in settings.preset("defences")[:2]]
    wide = Image.open(tables.save_plot(tmp_path, depth)).size[0]
    narrow = Image.open(tables.save_plot(tmp_path, one_cut)).size[0]
    assert wide > 1.4 * narrow  # a third panel: top-1 of every attack against bytes per frame
