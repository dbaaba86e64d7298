"""Evidence a lab task leaves, recomputed: the checks (checks.py) and the records (record.py)
trust no file for existing. Each function returns what it verified or raises `Missing` with a
hint: what is missing or wrong, and what to run.

Recomputed, not trusted: a model must load and match its manifest's sha256; captured frames
must be what the student's own model gives on the student's own images (the stage is run
again); a scored capture's top-1 is scored again from the student's decoder; a guessed password
must match the salted hash the lab was started with; a capture file is dissected again.
"""

import json
from pathlib import Path

from splitleak.broker import topics, wire
from splitleak.cloud import rundir


class Missing(Exception):
    """A check's hint: what is missing or wrong, and what to run."""


def doc(path: Path, last_line: bool = False) -> dict:
    """The JSON a command wrote (its last line, for an output with progress before it)."""
    if not path.is_file():
        raise Missing(f"{path} is missing")
    text = path.read_text().strip()
    try:
        return json.loads(text.splitlines()[-1] if last_line else text)
    except (ValueError, IndexError):
        raise Missing(f"{path} is not the JSON the command writes; run it again") from None


def target(folder: Path, v: dict, name: str = "target", split_after: int | None = None) -> str:
    """The run's mobile-stage sha256, after checking it loads, matches its manifest and was
    trained with the student's seed."""
    from splitleak.edge.runtime import MobileStage, sha256_file

    manifest = doc(folder / name / rundir.MANIFEST)
    sha = sha256_file(rundir.mobile(folder / name)) if rundir.mobile(folder / name).is_file() \
        else None
    if sha is None or manifest.get("artifacts", {}).get(rundir.MOBILE_TFLITE) != sha:
        raise Missing(f"{name}/{rundir.MOBILE_TFLITE} is missing or not the file its manifest "
                      "names: train it again with the handout's command")
    try:
        MobileStage(rundir.mobile(folder / name))
    except Exception:  # noqa: BLE001 - whatever the runtime says, it is not a model
        raise Missing(f"{name}/{rundir.MOBILE_TFLITE} does not load as a TFLite model: train "
                      "it again") from None
    if manifest["config"]["seed"] != v["seed"]:
        raise Missing(f"{name} was trained with seed {manifest['config']['seed']}, not yours "
                      f"({v['seed']}): pass --seed $SEED")
    if split_after is not None and manifest["split_after"] != split_after:
        raise Missing(f"{name} is cut after block {manifest['split_after']}, not {split_after}")
    return sha


def decoder(folder: Path, v: dict, name: str, target_sha: str) -> dict:
    manifest = doc(folder / name / rundir.MANIFEST)
    if manifest["target"]["sha256"] != target_sha:
        raise Missing(f"{name} was trained against another mobile stage; retrain it with --force")
    if manifest["config"]["seed"] != v["seed"]:
        raise Missing(f"{name} was trained with seed {manifest['config']['seed']}, not {v['seed']}")
    return manifest


def frames(path: Path, v: dict, model: str = "target") -> list:
    """The frames of a capture file, all from the student's node, at least FRAMES of them, each
    what the student's `model` run gives on the student's private images."""
    if not path.is_file():
        raise Missing(f"{path} is missing")
    frames = []
    for line in path.read_text().splitlines():
        topic, _, payload = line.partition(" ")
        try:
            frames.append(wire.decode(bytes.fromhex(payload)))
        except (ValueError, wire.WireError) as exc:
            raise Missing(f"{path.name}: a line is not a frame ({exc})") from None
        if topic != topics.activations(v["node"]) or frames[-1].node_id != v["node"]:
            raise Missing(f"{path.name} holds frames of {frames[-1].node_id}, not of your "
                          f"node {v['node']}: pass --node-id $NODE")
    if len(frames) < v["frames"]:
        raise Missing(f"{path.name} holds {len(frames)} frames, expected {v['frames']}")
    published(path.parent, frames, v, model, path.name)
    return frames


def status(path: Path, v: dict) -> dict:
    if not path.is_file() or not path.read_text().strip():
        raise Missing(f"{path} is missing or empty")
    topic, _, text = path.read_text().strip().partition(" ")
    if topic != topics.status(v["node"]):
        raise Missing(f"{path.name} is from {topic}, expected {topics.status(v['node'])}")
    return json.loads(text)


def scored_capture(folder: Path, attack: str, v: dict, capture: str = "capture.txt",
                    model: str = "target") -> dict:
    """eval.json's score of a capture against the private images, scored again here."""
    path = folder / attack / rundir.EVAL
    result = doc(path).get("blackbox", {}).get("capture")
    if not result or not result.get("reconstruction"):
        raise Missing(f"{path.relative_to(folder)} has no scored capture: run attack eval with "
                      "--from-capture and --truth folder:private")
    if result["n"] != v["frames"]:
        raise Missing(f"the capture scored in {path.relative_to(folder)} has {result['n']} frames, "
                      f"expected {v['frames']}")
    frames(folder / capture, v, model)
    again = top1(folder, attack, capture, result["n"])
    if abs(again - result["reconstruction"]["identification"]["top1"]) > 1e-6:
        raise Missing(f"{path.relative_to(folder)} says top-1 "
                      f"{result['reconstruction']['identification']['top1']}, but {attack}'s "
                      f"decoder on {capture} scores {again}: run attack eval again")
    return result


def top1(folder: Path, attack: str, capture: str, n: int) -> float:
    """Top-1 identification of the first `n` frames of a capture among the private images, as
    `attack eval --from-capture ... --truth folder:private` scores it."""
    from splitleak.attack import evaluate
    from splitleak.cloud.data import load_source

    truth = load_source(f"folder:{folder / 'private'}")
    e = evaluate.score_capture(folder / attack, folder / capture, truth, limit=n)
    return e.result["reconstruction"]["identification"]["top1"]


def sniffed(path: Path, port: int):
    """The sniffer's view of a capture file, recomputed here: (stats, frames)."""
    from splitleak.attack import sniff

    if not path.is_file():
        raise Missing(f"{path} is missing")
    spy = sniff.Sniffer(port)
    try:
        sniff.read_pcap(spy, path)
    except Exception as exc:  # scapy's errors for a file that is not a capture vary
        raise Missing(f"{path.name} is not a capture file scapy can read ({exc})") from None
    return spy.stats(), spy.frames


def published(folder: Path, frames: list, v: dict, model: str = "target",
               where: str = "the capture") -> None:
    """The frames are what the student's own mobile stage gives on the student's own images."""
    import numpy as np

    from splitleak.edge.defences import Device
    from splitleak.edge.omniglot import read_folder

    mine = [f for f in frames if f.node_id == v["node"]]
    if len(mine) < v["frames"]:
        raise Missing(f"{where} holds {len(mine)} frames of {v['node']}, expected "
                      f"{v['frames']}: stream folder:private with --node-id $NODE")
    images, _ = read_folder(folder / "private")
    expected = Device.from_model(rundir.mobile(folder / model)).run(images)
    for f in mine:
        got = f.as_float32()
        if got.shape != expected.shape[1:] or not np.allclose(got, expected[f.seq % len(images)],
                                                               atol=1e-5):
            raise Missing(f"frame {f.seq} in {where} is not what {model}/{rundir.MOBILE_TFLITE} "
                          "gives on private/: capture your own device's stream")


def net_down(v: dict) -> None:
    from splitleak.tools.deploy.netns import LabNet, existing

    if found := existing(LabNet(prefix=v["net"])):
        raise Missing(f"the lab network is still up ({', '.join(found)}): kill $NET_PID or "
                      f"run splitleak net --prefix {v['net']} down")


def reconstructed(folder: Path, frames: list, v: dict) -> None:
    """recon/<node>/ holds the attack decoder's reconstructions of the captured frames."""
    import numpy as np
    from PIL import Image

    from splitleak.attack.blackbox import reconstruct
    from splitleak.attack.store import load_decoder

    mine = {f.seq: f for f in frames if f.node_id == v["node"]}
    saved = sorted((folder / "recon" / v["node"]).glob("*.png"))
    if len(saved) < v["frames"]:
        raise Missing(f"recon/{v['node']}/ holds {len(saved)} reconstructions, expected "
                      f"{v['frames']}: sniff with --decoder attack --save recon")
    seqs = sorted(mine)[:4]  # a few, recomputed
    images = reconstruct(load_decoder(folder / "attack")[0],
                         np.stack([mine[s].as_float32() for s in seqs]))
    for seq, image in zip(seqs, images, strict=True):
        path = folder / "recon" / v["node"] / f"{seq:06d}.png"
        got = 1.0 - np.asarray(Image.open(path), np.float32) / 255 if path.is_file() else None
        if got is None or np.abs(got - image[..., 0]).max() > 1.5 / 255:
            raise Missing(f"recon/{v['node']}/{seq:06d}.png is not the decoder's reconstruction "
                          "of that frame")


def tls_bytes(path: Path, src: str, dst: str, port: int) -> int:
    """TCP payload bytes from src to dst:port in a capture."""
    from scapy.layers.inet import IP, TCP
    from scapy.utils import PcapReader

    with PcapReader(str(path)) as packets:
        return sum(len(p[TCP].payload) for p in packets
                   if IP in p and TCP in p and p[IP].src == src and p[IP].dst == dst
                   and p[TCP].dport == port)


def line(path: Path, starts: str) -> str:
    if not path.is_file():
        raise Missing(f"{path} is missing")
    lines = [ln for ln in path.read_text().splitlines() if ln.startswith(starts)]
    if not lines:
        raise Missing(f"{path.name} has no '{starts}' line: run the command again")
    return lines[-1]


def is_password(guess, v: dict) -> bool:
    """Whether `guess` is the device's password, by the salted hash lab.json keeps."""
    from splitleak.tools.labs.lab import password_check

    check = v.get("password_check") or {}
    return isinstance(guess, str) and bool(check) and \
        password_check(guess, check["salt"]) == check


def deployed_accuracy(folder: Path, row: dict, name: str) -> None:
    """A sweep row's validation accuracy is what its target, as deployed with its defence,
    scores when evaluated again (tools/experiments/job.deployment)."""
    from splitleak.cloud.data import load_protocol
    from splitleak.tools.experiments.job import deployment

    target = Path(row["target"]) if Path(row["target"]).is_absolute() else folder / row["target"]
    if not (target / rundir.HEAD_KERAS).is_file():
        raise Missing(f"{name}'s target {row['target']} is not in this folder's sweep: run the "
                      "sweep here")
    defense = row.get("edge_defense", row["setting"]["defense"])  # the frontier's: absolute
    again = deployment(target, load_protocol("lite"), defense)["accuracy"]
    if abs(again - row["accuracy"]) > 1e-6:
        raise Missing(f"{name}: sweep/results.json says accuracy {row['accuracy']:.3f}, its "
                      f"target scores {again:.3f} when evaluated again: run the sweep again")


def stopped(folder: Path, v: dict) -> None:
    """The lab's broker ran, and nothing listens on its port any more."""
    from splitleak.broker.server import port_open

    if not (folder / "broker.log").is_file():
        raise Missing("broker.log is missing: start the broker as the handout does")
    if port_open("127.0.0.1", v["port"]):
        raise Missing(f"something still listens on port {v['port']}: kill $BROKER_PID "
                      "(or the `splitleak broker` you started)")


