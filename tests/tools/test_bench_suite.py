"""`bench all` without running it: every benchmark figure in README.md and docs/ is generated from
docs/bench/all.json (reliability.md's table and the blocks between `bench:NAME` markers), and the
command line hands its options to tools/bench/suite."""

import json
import shutil

import pytest

from splitleak.cloud.config import SPLITS
from splitleak.tools.bench import attack, docs, suite, tflite
from splitleak.tools.cli import build_parser
from tests.conftest import REPO

REPORT = json.loads(REPO.joinpath(docs.REPORT).read_text(encoding="utf-8"))
# the blocks put in place of typed figures; more may come, none may go (the one-line pipeline
# blocks gave way to the pipeline, pipeline-depth and scaling tables)
EXPECTED = {"all", "dp-speed", "attack-speed", "tflite-depth", "tflite-k2-k4", "int8-ratios",
            "int8-parity", "parity", "pipeline", "pipeline-depth", "scaling", "fuzz", "soak",
            "faults", "demo"}


def test_the_reliability_page_table_is_the_markdown_of_all_json():
    page = REPO.joinpath("docs/reliability.md").read_text(encoding="utf-8")
    table = page.split("<!-- bench all -->\n", 1)[1].split("<!-- /bench all -->", 1)[0]
    assert suite.summary(REPORT) == REPORT["summary"]
    assert suite.markdown(REPORT) == table


def test_every_marked_block_in_the_docs_is_what_its_generator_makes_of_all_json():
    files = docs.docs_files(REPO)
    assert REPO / "README.md" in files and REPO / "docs/labs/instructor/lab3.md" in files
    names = set()
    for path in files:
        text = path.read_text(encoding="utf-8")
        for name, start, end in docs.blocks(text):
            names.add(name)
            made = docs.GENERATORS[name](REPORT, docs.REPORT)
            line = text.count("\n", 0, start.start()) + 1
            assert text[start.end():end.start()] == ("\n" if made.endswith("\n") else "") + made, (
                f"{path.relative_to(REPO)}:{line}: block {name!r} is not its generator's output "
                f"for {docs.REPORT}: run `{docs.DOCS_COMMAND}`")
        assert docs.render_docs(REPORT, text) == text
    assert EXPECTED <= names, f"blocks gone from the docs: {sorted(EXPECTED - names)}"


def test_each_generated_block_names_its_source_and_date():
    for name, generate in docs.GENERATORS.items():
        made = generate(REPORT, docs.REPORT)
        assert REPORT["date"] in made and REPORT["command"] in made, name
        if name != "all":  # the table's head names the machine instead
            assert f"`{docs.REPORT}`" in made, name


def test_the_depth_table_labels_each_thread_count_with_its_own_median():
    table = docs.tflite_depth(REPORT, docs.REPORT)
    head = table.splitlines()[2].split(" | ")
    for k, t in REPORT["tflite"].items():
        row = next(line for line in table.splitlines() if line.startswith(f"| {k} |")).split(" | ")
        for n in t["threads"]:
            label = f"float32, {n} thread" + ("s" if n > 1 else "")
            assert row[head.index(label)] == f"{t['results'][f'{tflite.FLOAT32} x{n}']['median_ms']:.3f}"


def test_a_hand_edit_inside_a_block_is_undone_and_so_fails_the_check():
    page = REPO.joinpath("docs/privacy.md").read_text(encoding="utf-8")
    ratio = f"**{REPORT['dp']['ratio']:.2f}**"
    assert ratio in page
    edited = page.replace(ratio, "**1.60**")
    assert docs.render_docs(REPORT, edited) == page != edited


@pytest.mark.parametrize("text, message", [
    ("a\n<!-- bench:nope -->x<!-- /bench:nope -->\n",
     r"line 2: unknown bench block 'nope'; known: .*dp-speed"),
    ("<!-- bench:dp-speed -->\nno end\n", r"line 1: .* not followed by its closing marker"),
    ("<!-- bench:dp-speed -->x<!-- /bench:attack-speed -->", r"not followed by its closing marker"),
    ("<!-- /bench:dp-speed -->", r"closes a block that was not opened"),
    ("x\n\n<!-- bench:Dp-Speed -->y<!-- /bench:Dp-Speed -->", r"line 3: a malformed bench marker"),
    ("1. a\n   <!-- bench:tflite-k2-k4 -->y<!-- /bench:tflite-k2-k4 -->",
     r"line 2: the inline block 'tflite-k2-k4' starts its line"),
])
def test_a_bad_block_fails_clearly(text, message):
    with pytest.raises(ValueError, match=message):
        docs.render_docs(REPORT, text)


def test_a_block_needing_a_skipped_part_fails_clearly():
    report = {k: v for k, v in REPORT.items() if k != "dp"}
    with pytest.raises(ValueError, match="block 'dp-speed' needs what the report lacks"):
        docs.render_docs(report, "<!-- bench:dp-speed -->\n<!-- /bench:dp-speed -->\n")


def test_render_files_rewrites_readme_and_docs_and_checks_without_writing(tmp_path):
    (tmp_path / "docs/bench").mkdir(parents=True)
    shutil.copy(REPO / docs.REPORT, tmp_path / docs.REPORT)
    stale = "Speed: <!-- bench:tflite-k2-k4 -->0.64 ms<!-- /bench:tflite-k2-k4 -->.\n"
    (tmp_path / "README.md").write_text(stale, encoding="utf-8")
    (tmp_path / "docs/labs").mkdir()
    (tmp_path / "docs/labs/notes.md").write_text("none here\n", encoding="utf-8")
    checked = docs.render_files(root=tmp_path, check=True)
    assert checked["changed"] == ["README.md"] and not checked["passed"] and checked["blocks"] == 1
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == stale
    assert "out of date in README.md" in docs.describe_docs(checked)
    assert docs.render_files(root=tmp_path)["changed"] == ["README.md"]
    assert docs.tflite_k2_k4(REPORT, docs.REPORT) in (tmp_path / "README.md").read_text(
        encoding="utf-8")
    again = docs.render_files(root=tmp_path, check=True)
    assert again["passed"] and not again["changed"] and "all up to date" in docs.describe_docs(again)


def test_render_files_names_the_bad_file(tmp_path):
    (tmp_path / "docs/bench").mkdir(parents=True)
    shutil.copy(REPO / docs.REPORT, tmp_path / docs.REPORT)
    (tmp_path / "docs/x.md").write_text("<!-- bench:nope -->\n<!-- /bench:nope -->\n",
                                        encoding="utf-8")
    with pytest.raises(ValueError, match=r"docs/x.md: line 1: unknown bench block 'nope'"):
        docs.render_files(root=tmp_path)


def test_bench_docs_calls_render_files_and_fails_when_out_of_date(monkeypatch, tmp_path, capsys):
    got = {}
    monkeypatch.setattr(docs, "render_files", lambda json_file, check: got.update(
        json_file=json_file, check=check) or {"passed": not check})
    monkeypatch.setattr(docs, "describe_docs", lambda r: "docs")
    args = build_parser().parse_args(["bench", "docs", "--json", str(tmp_path / "a.json"),
                                      "--check"])
    assert args._module.run(args) == 1 and capsys.readouterr().out == "docs\n"
    assert got == {"json_file": tmp_path / "a.json", "check": True}
    args = build_parser().parse_args(["bench", "docs"])
    assert args._module.run(args) == 0 and got == {"json_file": None, "check": False}


def test_bench_all_passes_its_options_to_the_suite(monkeypatch, tmp_path, capsys):
    got = {}
    monkeypatch.setattr(suite, "run", lambda **kw: got.update(kw) or {"bench": "all"})
    monkeypatch.setattr(suite, "describe", lambda r: "table")
    args = build_parser().parse_args(["bench", "all", "--quick", "--skip", "demo", "dp",
                                      "--json", str(tmp_path / "all.json")])
    assert args._module.run(args) == 0
    out = capsys.readouterr()
    assert out.out == "table\n"
    assert f"`{docs.DOCS_COMMAND} --json {tmp_path / 'all.json'}`" in out.err
    assert got == {"splits": list(SPLITS), "run_dir": None, "decoder": attack.DECODER,
                   "skip": ["demo", "dp"], "quick": True, "json_file": tmp_path / "all.json"}


def test_the_committed_report_was_measured_by_the_code_as_it_is():
    from splitleak.tools.experiments import provenance

    why = provenance.stale_path(REPORT["provenance"])
    assert why is None, (f"{docs.REPORT} is stale: {why}; re-run `splitleak bench all --json "
                         f"{docs.REPORT}` on an idle machine, then `{docs.DOCS_COMMAND}`")
