"""The committed results: every folder under docs/results regenerates its results.md byte for byte
from its rows (so a hand edit fails) and was computed by the code as it is now. A synthetic
fixture (made-up rows under tests/fixtures, never shown as results) shows what a page holds."""

import json
import os
import shutil
from dataclasses import asdict

import pytest

from splitleak.tools import cli
from splitleak.tools.experiments import (
    docs,
    job,
    network,
    provenance,
    report,
    results,
    settings,
    stats,
    sweep,
    tables,
)
from tests.conftest import REPO
from tests.tools.test_experiment import _row

DOCS = REPO / "docs" / "results"
FIXTURE = REPO / "tests" / "fixtures" / "results-synthetic"


def committed() -> list:
    return sorted(p for p in DOCS.iterdir() if (p / results.CONFIG).is_file()) if DOCS.is_dir() else []


def test_every_committed_results_folder_is_its_rows_and_is_current(tmp_path):
    problems = []
    for folder in committed():  # none yet is fine: the test covers whatever is committed
        page = report.write(folder, tmp_path / folder.name)
        mine = folder / report.PAGE
        if not mine.is_file() or mine.read_bytes() != page.written[0].read_bytes():
            problems.append(f"{folder}/{report.PAGE} is not what its rows give (edited by hand?): "
                            f"run `splitleak experiment report {folder.relative_to(REPO)}`")
        if page.stale:
            problems.append(page.stale)
        cfg = results.read_config(folder)
        path = settings.code_path([settings.from_dict(s) for s in cfg["settings"]])
        if cfg["code"].get("files") is not None and tuple(cfg["code"]["files"]) != path:
            problems.append(f"{folder}: its config hashes other modules than its settings run "
                            f"({sorted(set(cfg['code']['files']) ^ set(path))})")
        if not results.read(folder)[1]:  # no rows: its figures say so, none is an older run's
            problems += [f"{folder}/{f.name} is not the figure its (no) rows give" for f in
                         page.written[1:] if (folder / f.name).read_bytes() != f.read_bytes()]
    assert not problems, "\n".join(problems)


def test_a_folder_without_rows_replaces_an_older_runs_figures(tmp_path):
    folder = tmp_path / "emptied"
    shutil.copytree(FIXTURE, folder)
    for row in (folder / results.ROWS).glob("*.json"):
        row.unlink()
    for name in (tables.PLOT, report.GRID):
        (folder / name).write_bytes(b"an older run's figure")
    page = report.write(folder)
    assert [p.name for p in page.written] == [report.PAGE, tables.PLOT, report.GRID]
    for name in (tables.PLOT, report.GRID):
        assert (folder / name).read_bytes().startswith(b"\x89PNG")
    assert "No rows yet" in page.text


def test_the_fixture_page_is_regenerated_byte_for_byte(tmp_path):
    page = report.write(FIXTURE, tmp_path)
    assert page.written[0].read_bytes() == (FIXTURE / report.PAGE).read_bytes(), (
        "the page's format changed: if on purpose, run `splitleak experiment report "
        "tests/fixtures/results-synthetic` and delete the privacy-utility.png it writes there")
    assert page.written[0] == tmp_path / report.PAGE and (tmp_path / "privacy-utility.png").is_file()
    assert not (FIXTURE / "privacy-utility.png").exists()  # --out leaves the folder alone
    assert report.write(FIXTURE, tmp_path / "again").text == page.text


def test_a_page_shows_intervals_baselines_and_the_missing_seed():
    text = (FIXTURE / report.PAGE).read_text()
    assert "Synthetic rows" in text.splitlines()[2]
    assert "Rows: 3 of 4 (2 settings × 2 seeds); missing: noise:gauss:4 (K=2) seed 2." in text
    # accuracy over seeds 1 and 2: 0.81, 0.77 -> 0.79 ± t(0.975, 1) · 0.0283 / √2
    iv = stats.t_interval([0.81, 0.77])
    assert f"| none (K=2) | 2 | 0.790 [{iv.low:.3f}, {iv.high:.3f}] | 0.790 | ∞ |" in text
    assert "| noise:gauss:4 (K=2) | 1 | 0.620 | 0.790 | ∞ | 0.93 |" in text  # n = 1: no interval
    assert "| chance (1/3) |  | 0.333 |" in text
    low, high = stats.wilson(71 + 64, 200)  # top-1 hits pooled over 2 seeds x 100 images
    assert f"| 0.675 [0.230, 1.120] | [{low:.3f}, {high:.3f}] |" in text
    assert text.count("| chance (1/100) |  |  |  | 0.010 |  |") == 2  # naive, adaptive
    assert text.count("| chance (1/8) |  |  |  | 0.125 |  |") == 2  # the two on 8 images
    assert text.count("| attacker-mean image |  | 0.0562 | 0.087 |") == 4
    assert text.count("| blank page |  | 0.0718 | 0.011 |") == 4
    assert text.count("Student's t with n − 1 degrees of freedom") == 5  # under every table
    assert text.count("Wilson score interval (Wilson 1927)") == 4
    assert "Commit: 0000000000000000000000000000000000000000 (3 rows)." in text
    assert "Code: sha256 synthetic over the modules" in text
    assert "`splitleak experiment report tests/fixtures/results-synthetic`" in text
    assert "2026" not in text  # no dates: the page is the same whenever it is regenerated


def test_a_folder_is_stale_when_the_code_changed(tmp_path):
    why = results.stale(FIXTURE)  # the fixture records no real code hash
    assert str(FIXTURE) in why and "commit 0000000000000000000000000000000000000000" in why
    assert "splitleak experiment sweep --preset synthetic --seeds 1 2 --results" in why
    fresh = tmp_path / "fresh"
    s = job.Setting("x")
    cfg = results.config("depth", settings.recipe([s]), "lite", [asdict(s)], [1], None, fresh)
    results.open_folder(fresh, cfg)
    row = _row(s, 0.5) | {"provenance": {"code_hash": cfg["code"]["sha256"], "commit": "c"}}
    results.write_row(fresh, row)
    assert results.stale(fresh) is None
    results.write_row(fresh, row | {"provenance": {"code_hash": "old", "commit": "c"}})
    assert "is stale" in results.stale(fresh)


def test_report_command_prints_the_page_and_warns_when_stale(tmp_path, capsys):
    assert cli.main(["experiment", "report", str(FIXTURE), "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith((FIXTURE / report.PAGE).read_text())
    assert f"wrote {tmp_path / report.PAGE}, {tmp_path / 'privacy-utility.png'}" in out
    assert err.startswith(f"warning: {FIXTURE} is stale")
    assert cli.main(["experiment", "report", str(tmp_path / "nothing")]) == 2
    assert "holds neither config.json" in capsys.readouterr().err


def test_a_work_folder_from_before_results_folders_still_reports(tmp_path):
    rows = [_row(s, 0.4) for s in settings.preset("depth")]
    (tmp_path / "results.json").write_text(json.dumps(
        {"preset": "depth", "recipe": "r", "settings": {r["key"]: r for r in rows}}))
    page = report.write(tmp_path)
    assert "Rows: 4, from a work folder's results.json: no seeds or code recorded." in page.text
    assert "| K=1 | 1 | 33x33x32 | 139,442 | 0.880 | 0.880 |" in page.text
    assert "Provenance: not recorded" in page.text and "is stale" in page.stale


def test_every_results_block_in_the_docs_is_what_its_folder_gives():
    done = docs.render_files(REPO, check=True)
    assert done["passed"], docs.describe(done)


def _docs_root(tmp_path, text: str):
    shutil.copytree(FIXTURE, tmp_path / docs.FOLDERS / "synthetic")
    (tmp_path / "README.md").write_text(text, encoding="utf-8")
    return tmp_path


def test_results_blocks_are_generated_from_the_rows_and_a_hand_edit_is_undone(tmp_path):
    typed = ("Leak: <!-- results:synthetic/top1 -->1.0 everywhere<!-- /results:synthetic/top1 -->."
             "\n\n<!-- results:synthetic/naive -->\n| typed |\n<!-- /results:synthetic/naive -->\n")
    root = _docs_root(tmp_path, typed)
    checked = docs.render_files(root, check=True)
    assert checked["blocks"] == 2 and checked["changed"] == ["README.md"] and not checked["passed"]
    assert docs.render_files(root)["changed"] == ["README.md"]
    text = (root / "README.md").read_text(encoding="utf-8")
    page = (FIXTURE / report.PAGE).read_text(encoding="utf-8")
    naive = page.split("## Reconstruction: naive black box, N = 100 test images\n\n")[1]
    assert naive.split("\n\n")[0] in text  # the table results.md has, from the same rows
    assert "1.0 everywhere" not in text and "| typed |" not in text
    assert "From `docs/results/synthetic`: 3 of 4 rows, seeds 1, 2, commit 0000000:" in text
    assert "none (K=2) 0.675 [0.230, 1.120]" in text and "chance 0.010 (1 of 100)" in text
    assert "means over 1 or 2 seeds [95 % t-interval]" in text
    assert docs.render_files(root, check=True)["passed"]


def test_a_bad_results_block_fails_clearly(tmp_path):
    root = _docs_root(tmp_path, "x <!-- results:synthetic/nope -->y<!-- /results:synthetic/nope -->\n")
    with pytest.raises(ValueError, match=r"README.md: line 1: unknown results block 'synthetic/nope'"):
        docs.render_files(root)
    (root / "README.md").write_text("x <!-- results:gone/top1 -->y<!-- /results:gone/top1 -->\n")
    with pytest.raises(ValueError, match=r"line 1: no results folder docs/results/gone"):
        docs.render_files(root)


def test_computed_blocks_come_from_the_code_not_from_a_folder(tmp_path):
    root = _docs_root(tmp_path, "<!-- results:computed/seed-epsilon -->\n"
                                "<!-- /results:computed/seed-epsilon -->\n"
                                "<!-- results:computed/estimates -->\n"
                                "<!-- /results:computed/estimates -->\n")
    docs.render_files(root)
    text = (root / "README.md").read_text(encoding="utf-8")
    first = docs._seed_rows()[0]  # cloud/privacy.seed_table, computed once
    assert f"| {first['noise']:g} | {first['seed']:g} | " in text
    assert f"{first['shuffle_rdp_11000']:.1f} / {first['shuffle_pld_11000']:.1f} |" in text
    depth = settings.jobs(settings.preset("depth"), [1, 2, 3])
    said = sweep.duration(settings.estimate_seconds(depth, set()))
    assert f"| `depth` | 4 | 1, 2, 3 | 12 | {said} |" in text
    with pytest.raises(ValueError, match="unknown computed block 'computed/nope'"):
        docs.validate("computed/nope")


def test_a_network_block_is_its_results_json_and_a_stale_one_is_found(tmp_path):
    folder = tmp_path / docs.FOLDERS / "network-mosquitto"
    folder.mkdir(parents=True)
    rows = [{"profile": "open", "sent": 4, "cloud": 4, "eavesdroppers": {
        name: {"status": "connected", "reason": "", "frames": 4,
               "reconstruction": {"mse": 0.05, "top1": 0.5, "n": 4}}
        for name in network.EAVESDROPPERS}}]
    stamp = {"commit": "abcdef0123", "date": "2026-12-05T10:00:00+00:00",
             "code_hash": provenance.code_hash(files=provenance.NETWORK)}
    result = {"engine": "mosquitto", "frames": 4, "rows": rows, "provenance": stamp}
    (folder / "results.json").write_text(json.dumps(result))
    (folder / "results.md").write_text(network.table(rows))
    assert network.problems(folder) == []
    root = _docs_root(tmp_path, "x\n<!-- results:network-mosquitto/network -->\n"
                                "<!-- /results:network-mosquitto/network -->\n")
    docs.render_files(root)
    text = (root / "README.md").read_text(encoding="utf-8")
    assert "From `docs/results/network-mosquitto`: 4 lite test images a profile, commit abcdef0" in text
    assert "| open | 4 | 4 | 4 (top-1 0.50) |" in text
    (folder / "results.json").write_text(json.dumps(result | {"provenance": stamp | {"code_hash": "old"}}))
    assert "is stale" in network.problems(folder)[0]
    (folder / "results.md").write_text("typed\n")
    assert "edited by hand" in network.problems(folder)[0]


def test_every_committed_network_result_is_current():
    found = [p for p in sorted(DOCS.glob("network-*")) if (p / "results.json").is_file()]
    assert not [problem for folder in found for problem in network.problems(folder)]


def test_a_path_stamp_goes_stale_when_a_module_it_recorded_changes_or_goes(tmp_path):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "sub" / "b.py").write_text("y = 2\n")
    (tmp_path / "pkg" / "docs.py").write_text("render = 1\n")
    assert provenance.modules(["pkg"], tmp_path) == ("pkg/a.py", "pkg/sub/b.py")
    stamp = provenance.path_stamp(["pkg"], tmp_path) | {"commit": "abcdef0123"}
    assert list(stamp["code_files"]) == ["pkg/a.py", "pkg/sub/b.py"]
    assert provenance.stale_path(stamp, tmp_path) is None
    (tmp_path / "pkg" / "docs.py").write_text("render = 2\n")  # renders, measures nothing
    (tmp_path / "pkg" / "new.py").write_text("z = 0\n")  # did not exist when the run ran
    assert provenance.stale_path(stamp, tmp_path) is None
    (tmp_path / "pkg" / "sub" / "b.py").write_text("y = 3\n")
    assert provenance.stale_path(stamp, tmp_path) == "pkg/sub/b.py changed since commit abcdef0"
    (tmp_path / "pkg" / "a.py").unlink()
    assert provenance.stale_path(stamp, tmp_path).startswith("pkg/a.py, pkg/sub/b.py changed")
    assert "records no code hash" in provenance.stale_path({"commit": "c"}, tmp_path)


def test_an_older_stamp_without_module_hashes_is_checked_over_its_folders(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    stamp = provenance.path_stamp(["pkg"], tmp_path) | {"commit": "abcdef0123"}
    del stamp["code_files"]
    assert provenance.stale_path(stamp, tmp_path) is None
    (tmp_path / "pkg" / "new.py").write_text("z = 0\n")
    assert "the code under pkg changed since commit abcdef0" in provenance.stale_path(stamp, tmp_path)


def test_every_splitleak_process_traces_the_modules_it_ran(tmp_path, omniglot_dir):
    from tests.conftest import splitleak

    trace = tmp_path / "modules.txt"
    assert splitleak("data", env={provenance.TRACE: str(trace)}).returncode == 0
    ran = provenance.traced(trace, own=False)  # pytest's own process has imported everything
    assert {"tools/cli/data.py", "cloud/data.py", "tools/experiments/provenance.py"} <= set(ran)
    assert "cloud/dp.py" not in ran and all((provenance.ROOT / name).is_file() for name in ran)


def test_a_traced_process_appends_its_modules_once_and_what_it_loads_later(tmp_path):
    import subprocess
    import sys

    trace = tmp_path / "modules.txt"
    code = ("from splitleak.tools.experiments import provenance as p; p.trace_modules(0.05); "
            "import time; time.sleep(0.3); from splitleak.cloud import nopeek; time.sleep(0.3)")
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, provenance.TRACE: str(trace)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = trace.read_text().split()
    assert len(lines) == len(set(lines))  # each module once, however often it wrote
    assert {"tools/experiments/provenance.py", "cloud/nopeek.py"} <= set(lines)
    assert set(provenance.traced(trace)) >= set(lines)
