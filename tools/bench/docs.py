"""The `bench all` report's figures in the documentation, generated, never typed.

Every figure of the report that README.md or docs/**/*.md quotes sits between a pair of markers,
`<!-- bench:NAME -->` and `<!-- /bench:NAME -->` (the summary table's pair is `<!-- bench all -->`),
and is the output of the generator NAME in `GENERATORS` for the committed report: `render_docs`
rewrites the blocks of one text, `render_files` (`splitleak bench docs`) those of every page, and a
test fails when a block differs from its generator's output.
"""

import json
import re
from functools import partial
from pathlib import Path

from splitleak.cloud import rundir
from splitleak.tools import blocks as generated
from splitleak.tools.bench import tflite
from splitleak.tools.bench.suite import ENGINES, PIPELINE_FRAMES, markdown

CHECKOUT = Path(__file__).resolve().parents[2]  # README.md, docs/ and the committed report
REPORT = "docs/bench/all.json"  # the committed report, relative to the checkout
DOCS_COMMAND = "splitleak bench docs"


# The documentation's generated blocks: each generator is a function of the report and of the
# name its source is cited by, and returns one line (an inline block, inside a sentence or a
# table cell) or whole lines ending in a newline (a block of its own lines).

BROKER_NAMES = {"mosquitto": "Mosquitto"}  # how prose names each engine (others: as is)
STAGE_NAMES = {tflite.FLOAT32: "float32", tflite.INT8: "int8",
               tflite.BUILTIN: "int8 on built-in kernels"}


def _source(r: dict, src: str, first: str = "from") -> str:
    """Where a block's figures come from: the report file, its command, its date and commit."""
    commit = (r.get("provenance") or {}).get("commit")
    return (f"{first} `{src}`, `{r['command']}`, {r['date']}"
            + (f", commit {commit[:7]}" if commit else ""))


def _depths(r: dict) -> list[tuple[int, dict]]:
    """The TFLite part by split depth, in order (the JSON's keys are strings)."""
    return sorted((int(k), t) for k, t in r["tflite"].items())


def _and(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _each(values) -> str:
    """(K, value) pairs as "v at every K" when they agree, else "v1 at K = 1, …"."""
    if len({v for _, v in values}) == 1:
        return f"{values[0][1]} at every K"
    return _and(f"{v} at K = {k}" for k, v in values)


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("s" if n != 1 else "")


def dp_speed(r: dict, src: str) -> str:
    """DP-SGD's seconds per epoch against non-private training, and the shuffled-batch ratios."""
    d = r["dp"]
    s, ratios = d["seconds_per_epoch"], d["ratios"]
    return (f"{_source(r, src, 'From')} ({d['epochs']} epochs of each on "
            f"{d['images']:,} images, batch {d['batch']}, the median epoch after the first): "
            f"non-private {s['non_private']['median']:.2f} s and DP-SGD "
            f"{s['dp_sgd']['median']:.2f} s per epoch on Poisson batches, ratio "
            f"**{d['ratio']:.2f}** (bar {d['bar']:g}, goal {d['goal']:g}); on shuffled batches, "
            f"DP-SGD / non-private is {ratios['dp_sgd_shuffle']:.2f} for ours and "
            f"{ratios['tf_privacy_shuffle']:.2f} for tensorflow-privacy's `DPModel`.\n")


def attack_speed(r: dict, src: str) -> str:
    """Frames per second reconstructed by the decoder alone and by the live eavesdropper."""
    a, live = r["attack"], r["attack"]["live"]
    return (f"{_source(r, src, 'From')}: the decoder alone reconstructs "
            f"**{a['decoder_frames_per_second']:,}** frames/s, and the live eavesdropper behind "
            f"{BROKER_NAMES.get(live['engine'], live['engine'])} "
            f"**{live['frames_per_second']:,}** frames/s ({live['reconstructed']:,} of "
            f"{live['frames']:,} frames reconstructed in {live['seconds']} s, {live['rejected']} "
            f"rejected); goal {a['goal_frames_per_second']:,} frames/s.\n")


def tflite_depth(r: dict, src: str) -> str:
    """ms per image of each split depth's mobile stage: Keras, and each TFLite stage on each
    thread count, labelled by thread count."""
    depths = _depths(r)
    threads = sorted({n for _, t in depths for n in t["threads"]})
    columns = [(f"{stage} x{n}", f"{STAGE_NAMES[stage]}, {_count(n, 'thread')}")
               for stage in tflite.STAGES for n in threads]
    runs = sorted({res["runs"] for _, t in depths for res in t["results"].values()})
    runtimes = sorted({t["runtime"] for _, t in depths})
    rows = [f"| {k} | `{t['run_dir']}` | {t['results']['keras']['median_ms']:.3f} | "
            + " | ".join(f"{t['results'][key]['median_ms']:.3f}" if key in t["results"] else "–"
                         for key, _ in columns) + " |"
            for k, t in depths]
    return (f"Median ms per image of the mobile stage alone (batch 1, {_and(map(str, runs))} "
            f"timed runs each; {_and(runtimes)}), {_source(r, src)}:\n\n"
            f"| split after block K | run | Keras | {' | '.join(label for _, label in columns)} |\n"
            f"|{'---|' * (3 + len(columns))}\n" + "\n".join(rows) + "\n")


def tflite_k2_k4(r: dict, src: str) -> str:
    """The float32 stage's ms per image at K = 2 and K = 4, on one thread and on two."""
    t = dict(_depths(r))
    one, two = ([t[k]["results"][f"{tflite.FLOAT32} x{n}"]["median_ms"] for k in (2, 4)]
                for n in (1, 2))
    return (f"{one[0]:.3f} ms at K = 2 and {one[1]:.3f} ms at K = 4 on one thread ({two[0]:.3f} "
            f"and {two[1]:.3f} ms on two; float32, {_source(r, src)})")


def int8_ratios(r: dict, src: str) -> str:
    """int8's time over float32's at each split depth, on XNNPACK and on the built-in kernels."""
    depths = _depths(r)
    ratios = [f"{t['int8_over_float32']:.2f}x at K = {k}" for k, t in depths]
    return ("int8 takes " + _and([ratios[0].replace("x", "x float32's time", 1), *ratios[1:]])
            + " (each at its best thread count); on TFLite's built-in int8 kernels "
            + _and(f"{t['int8_builtin_over_float32']:.2f}x" for _, t in depths)
            + f" ({_source(r, src)})")


def int8_parity(r: dict, src: str) -> str:
    """The int8 activation's relative error and the head's top-1 agreement at each depth."""
    depths = [(k, t["parity"]) for k, t in _depths(r) if t.get("parity")]
    return ("the int8 activation's mean relative error against Keras is "
            + _and(f"{p['int8_relative_error']:.3g} at K = {k}" for k, p in depths)
            + ", and the head's top-1 on it agrees with Keras's on a share of " + _each(
                [(k, p["int8_top1_agreement"]) for k, p in depths]) + f" ({_source(r, src)})")


def parity(r: dict, src: str) -> str:
    """Each split depth's TFLite parity against Keras, as its run recorded it when exported."""
    depths = [(k, t) for k, t in _depths(r) if t.get("parity")]
    images = sorted({t["parity"]["images"] for _, t in depths})
    rows = [f"| {k} | `{t['run_dir']}` | {p['float32_max_abs_diff']:.3g} "
            f"({p['float32_tolerance']:.2g}) | {p['int8_relative_error']:.3g} | "
            f"{p['int8_top1_agreement']} |" for k, t in depths for p in [t["parity"]]]
    return (f"TFLite against Keras on {_and(map(str, images))} validation images (each run's "
            f"{rundir.METRICS}, written when it was exported), {_source(r, src)}:\n\n"
            "| split after block K | run | float32: max abs diff (tolerance) | int8: mean "
            "relative error | int8: head's top-1 agreement |\n|---|---|---|---|---|\n"
            + "\n".join(rows) + "\n")


def pipeline_table(r: dict, src: str) -> str:
    """Every pipeline run of the report: frames per second, loss, latency, CPU seconds."""
    rows = []
    for p in r["pipeline"]:
        cpu = p["cpu_seconds"]
        broker = "–" if cpu.get("broker") is None else cpu["broker"]
        latency = p["latency_ms"] or {}
        rows.append(f"| {BROKER_NAMES.get(p['engine'], p['engine'])} | {p['fleet']} | "
                    f"{p['sent']:,} | {p['cloud_frames_per_second']:,} | {p['lost']} | "
                    f"{p['cloud_sequence_gaps']} | {latency.get('p50')} / {latency.get('p99')} | "
                    f"{p['bytes_per_frame']} | {cpu['edge']} / "
                    f"{' + '.join(map(str, cpu['heads']))} / {broker} |")
    runs = _and(sorted({f"`{p['run']}` (split after block {p['split_after']})"
                        for p in r["pipeline"]}))
    paced = _and(sorted({"unpaced" if not p["rate_hz"] else f"{p['rate_hz']:g} Hz a node"
                         for p in r["pipeline"]}))
    return (f"`splitleak bench pipeline` with {runs}, {paced}, one run a row, "
            f"{_source(r, src)}:\n\n"
            "| broker | nodes | frames | frames/s | lost | sequence gaps | latency p50 / p99 ms | "
            "bytes/frame | CPU s: edge / head / broker |\n|---|---|---|---|---|---|---|---|---|\n"
            + "\n".join(rows) + "\n")


def pipeline_row(r: dict, src: str, engine: str, fleet: int) -> str:
    """One pipeline run, in a phrase: frames per second, frames, loss and latency."""
    p = next(p for p in r["pipeline"] if p["engine"] == engine and p["fleet"] == fleet)
    return (f"{p['cloud_frames_per_second']:,} frames/s with {_count(fleet, 'node')} through "
            f"{BROKER_NAMES.get(engine, engine)} ({p['sent']:,} frames, {p['lost']} lost, "
            f"p50 {p['latency_ms']['p50']} ms, p99 {p['latency_ms']['p99']} ms; {_source(r, src)})")


def _latency(p: dict) -> str:
    lat = p.get("latency_ms") or {}
    return f"{lat.get('p50')} / {lat.get('p99')}"


def pipeline_depth(r: dict, src: str) -> str:
    """The pipeline at each split depth: bytes, frames and megabytes per second, loss, latency."""
    rows = [f"| {p['split_after']} | {p['bytes_per_frame']:,} | {p['cloud_frames_per_second']:,} "
            f"| {p['megabytes_per_second']} | {p['sent']:,} | {p['lost']} | {_latency(p)} |"
            for p in r["depth"]]
    return ("`splitleak bench pipeline --split-after K` through Mosquitto, one unpaced node, "
            f"{_source(r, src)}:\n\n| K | bytes/frame | frames/s | MB/s | sent | lost | "
            "latency p50 / p99 ms |\n|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")


def scaling(r: dict, src: str) -> str:
    """Fleets, cloud heads and paced nodes: frames per second (per head), loss, latency and CPU
    seconds while streaming."""
    rows = []
    for p in r["scaling"]:
        per_head = " + ".join(f"{h['frames_per_second']:,}" for h in p["per_head"])
        cpu = p["cpu_seconds"]
        options = (f"--engine {p['engine']} --fleet {p['fleet']} --frames {p['frames_per_node']} "
                   f"--heads {p['heads']}" + (f" --rate {p['rate_hz']:g}" if p["rate_hz"] else ""))
        rows.append(f"| `{options}` | {p['cloud_frames_per_second']:,}"
                    + (f" ({per_head})" if p["heads"] > 1 else "") + f" | {p['lost']} | "
                    f"{_latency(p)} | {cpu['edge']} / {' + '.join(map(str, cpu['heads']))} / "
                    f"{'–' if cpu['broker'] is None else cpu['broker']} "
                    f"({p['cloud']['seconds']}) |")
    return (f"`splitleak bench pipeline …`, {_source(r, src)}:\n\n"
            "| options | frames/s (per head) | lost | latency p50 / p99 ms | CPU s while "
            "streaming: edge / heads / broker (wall s) |\n|---|---|---|---|---|\n"
            + "\n".join(rows) + "\n")


def _rejected(c: dict) -> str:
    dup = f" + {c['duplicates']:,} duplicates" if c.get("duplicates") else ""
    return (f"{c['frames']:,}{dup} / {sum(c['rejected'].values()):,} in "
            f"{len(c['rejected'])} reasons")


def fuzz_table(r: dict, src: str) -> str:
    """Each broker's fuzz run: what the cloud head and the eavesdropper counted, and whether it
    is what the generator expected."""
    rows = [f"| {BROKER_NAMES.get(f['engine'], f['engine'])} | {f['messages']:,} | "
            f"{_rejected(f['cloud'])} | {_rejected(f['eavesdropper'])} | "
            f"{'yes' if f['cloud']['match'] and f['eavesdropper']['match'] else 'no'} | "
            f"{', '.join(map(str, f['exit_codes'].values()))} |" for f in r["fuzz"]]
    return (f"`splitleak bench fuzz` (seed {r['fuzz'][0]['seed']}), {_source(r, src)}:\n\n"
            "| broker | messages | cloud head: frames / rejected | eavesdropper: frames / "
            "rejected | counts as expected | exit codes |\n|---|---|---|---|---|---|\n"
            + "\n".join(rows) + "\n")


def _memory(processes: dict) -> str:
    """Each process's resident memory at the start and end, and the change."""
    return ", ".join(f"{name} {m['start_mib']} → {m['end_mib']} MiB ({m['change']:+.1%})"
                     for name, m in processes.items())


def soak_sentence(r: dict, src: str) -> str:
    """The soak run: frames, loss, latency and each process's memory."""
    s, lat = r["soak"], r["soak"]["latency_ms"] or {}
    memory = _memory(s["memory"])
    return (f"{s['nodes']} nodes × {s['rate_hz']:g} frames/s × {s['seconds']:g} s through "
            f"{BROKER_NAMES.get(s['engine'], s['engine'])}: {s['sent']:,} frames sent, "
            f"{s['acknowledged']:,} acknowledged, {s['predictions']:,} predictions back, "
            f"{s['lost']} lost, cloud gaps {s['cloud_gaps']}, {s['eavesdropper_frames']:,} frames "
            f"seen by the eavesdropper, latency p50 {lat.get('p50')} ms and p99 {lat.get('p99')} "
            f"ms; memory {memory} ({_source(r, src)})")


def flood_sentence(r: dict, src: str) -> str:
    """The flood run: fake ids, what each subscriber kept, memory, the real node."""
    f = r["flood"]
    memory = _memory(f["memory"])
    return (f"{f['nodes']:,} fake node ids through {BROKER_NAMES.get(f['engine'], f['engine'])} "
            f"in {f['flood_seconds']:g} s, {f['answered']:,} answered; the cloud head kept "
            f"{f['cloud_nodes_kept']:,} nodes and forgot {f['cloud_nodes_evicted']:,}, the "
            f"eavesdropper kept {f['eavesdropper_nodes_kept']:,}; memory {memory}; a real node "
            f"after it: {f['real_answered']} of {f['real_sent']} frames answered; "
            + ("passed" if f["passed"] else "FAILED") + f" ({_source(r, src)})")


def faults_sentence(r: dict, src: str) -> str:
    """The faults run: per node sent, acknowledged, answered; losses; the restarted head."""
    f = r["faults"]
    nodes = "; ".join(f"{name}: {n['sent']:,} sent, {n['acknowledged']:,} acknowledged, "
                      f"{n['answered']:,} answered" for name, n in f["nodes"].items())
    head = f["restarted_head"]
    return (f"{nodes}; {f['lost_by_design']} lost by design, {f['unexplained']} unexplained; the "
            f"restarted head answered {head['accepted']:,} frames with {head['gaps']} gaps and "
            f"{head['duplicates']} duplicates; " + ("passed" if f["passed"] else "FAILED")
            + f" ({_source(r, src)})")


def demo(r: dict, src: str) -> str:
    """`splitleak demo` from nothing: its wall time and what it showed."""
    d = r["demo"]
    return (f"`splitleak demo` from nothing took {d['seconds']:g} s (the venv install aside): "
            f"the target reached validation {d['val_accuracy']:.3f}; over MQTT "
            f"{d['predictions_received']} of {d['frames']} predictions, accuracy "
            f"{d['mqtt_accuracy']:.4f} (offline on the same images {d['offline_accuracy']:.4f}); "
            f"the eavesdropper reconstructed {d['reconstructed']} of {d['frames']} frames, MSE "
            f"{d['mse']:.4f} against {d['blank_page_mse']:.4f} for a blank page "
            f"({_source(r, src)})")


GENERATORS = {"all": lambda r, src: markdown(r), "dp-speed": dp_speed,
              "attack-speed": attack_speed, "tflite-depth": tflite_depth,
              "tflite-k2-k4": tflite_k2_k4, "int8-ratios": int8_ratios,
              "int8-parity": int8_parity, "parity": parity, "pipeline": pipeline_table,
              "pipeline-depth": pipeline_depth, "scaling": scaling, "fuzz": fuzz_table,
              "soak": soak_sentence, "flood": flood_sentence, "faults": faults_sentence,
              "demo": demo}
GENERATORS |= {f"pipeline-{engine}-{fleet}": partial(pipeline_row, engine=engine, fleet=fleet)
               for engine in ENGINES for fleet in PIPELINE_FRAMES}

TAG = "bench"


def _validate(name: str) -> None:
    if name not in GENERATORS:
        raise ValueError(f"unknown bench block {name!r}; known: {', '.join(sorted(GENERATORS))}")


def blocks(text: str) -> list[tuple[str, re.Match, re.Match]]:
    """The bench blocks of a text (tools/blocks.py `find`)."""
    return generated.find(text, TAG, _validate)


def _generator(report: dict, source: str):
    """name -> the block's text from `report`, cited as `source`."""
    def generate(name: str) -> str:
        try:
            return GENERATORS[name](report, source)
        except (KeyError, StopIteration) as e:
            raise ValueError(f"block {name!r} needs what the report lacks ({e!r}; a part "
                             "skipped?)") from None
    return generate


def render_docs(report: dict, text: str, *, source: str = REPORT) -> str:
    """`text` with every bench block rewritten by its generator from `report` (cited as
    `source`)."""
    return generated.render(text, TAG, _generator(report, source), _validate)


def docs_files(root: Path = CHECKOUT) -> list[Path]:
    return generated.files(root)


def render_files(json_file: Path | None = None, *, root: Path = CHECKOUT,
                 check: bool = False) -> dict:
    """Rewrite the bench blocks of README.md and docs/**/*.md under `root` from the report in
    `json_file` (default: the committed one); with `check`, write nothing and fail (`passed`
    false) when a block is out of date."""
    root = Path(root)
    json_file = Path(json_file) if json_file else root / REPORT
    if not json_file.is_file():
        raise FileNotFoundError(f"no report at {json_file}: `splitleak bench all --json FILE` "
                                "writes one (the committed one is docs/bench/all.json)")
    report = json.loads(json_file.read_text(encoding="utf-8"))
    try:
        source = json_file.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        source = str(json_file)
    count, changed = generated.render_files(root, TAG, _generator(report, source), _validate,
                                            check)
    return {"bench": "docs", "report": source, "date": report["date"], "blocks": count,
            "changed": changed, "check": check, "passed": not (check and changed)}


def describe_docs(r: dict) -> str:
    head = f"{_count(r['blocks'], 'generated block')}, from {r['report']} of {r['date']}: "
    if not r["changed"]:
        return head + "all up to date"
    if r["check"]:
        return (head + f"out of date in {', '.join(r['changed'])} (`{DOCS_COMMAND}` rewrites "
                "them)")
    return head + f"rewrote {', '.join(r['changed'])}"
