"""`splitleak lab check N`: per task, is what the handout's commands leave in the folder there,
does it belong to this student's variant, and does it hold when recomputed? A check returns
None when it holds, else a hint naming what to run.

Recomputed, not trusted: a model must load and match its manifest's sha256; captured frames
must be what the student's own model gives on the student's own images (the stage is run
again); a scored capture's top-1 is scored again from the student's decoder; a guessed password
must match the salted hash the lab was started with. Typing a file's expected values into it
therefore fails, and so does a classmate's folder (other node, seed, images and password).
"""

import json
from pathlib import Path

from splitleak.broker import topics, wire
from splitleak.cloud import rundir


class Missing(Exception):
    """A check's hint: what is missing or wrong, and what to run."""


def _json(path: Path, last_line: bool = False) -> dict:
    if not path.is_file():
        raise Missing(f"{path} is missing")
    text = path.read_text().strip()
    try:
        return json.loads(text.splitlines()[-1] if last_line else text)
    except (ValueError, IndexError):
        raise Missing(f"{path} is not the JSON the command writes; run it again") from None


def _target(folder: Path, v: dict, name: str = "target", split_after: int | None = None) -> str:
    """The run's mobile-stage sha256, after checking it loads, matches its manifest and was
    trained with the student's seed."""
    from splitleak.edge.runtime import MobileStage, sha256_file

    manifest = _json(folder / name / rundir.MANIFEST)
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


def _decoder(folder: Path, v: dict, name: str, target_sha: str) -> dict:
    manifest = _json(folder / name / rundir.MANIFEST)
    if manifest["target"]["sha256"] != target_sha:
        raise Missing(f"{name} was trained against another mobile stage; retrain it with --force")
    if manifest["config"]["seed"] != v["seed"]:
        raise Missing(f"{name} was trained with seed {manifest['config']['seed']}, not {v['seed']}")
    return manifest


def _frames(path: Path, v: dict, model: str = "target") -> list:
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
    _published(path.parent, frames, v, model, path.name)
    return frames


def _status(path: Path, v: dict) -> dict:
    if not path.is_file() or not path.read_text().strip():
        raise Missing(f"{path} is missing or empty")
    topic, _, text = path.read_text().strip().partition(" ")
    if topic != topics.status(v["node"]):
        raise Missing(f"{path.name} is from {topic}, expected {topics.status(v['node'])}")
    return json.loads(text)


def _scored_capture(folder: Path, attack: str, v: dict, capture: str = "capture.txt",
                    model: str = "target") -> dict:
    """eval.json's score of a capture against the private images, scored again here."""
    path = folder / attack / rundir.EVAL
    result = _json(path).get("blackbox", {}).get("capture")
    if not result or not result.get("reconstruction"):
        raise Missing(f"{path.relative_to(folder)} has no scored capture: run attack eval with "
                      "--from-capture and --truth folder:private")
    if result["n"] != v["frames"]:
        raise Missing(f"the capture scored in {path.relative_to(folder)} has {result['n']} frames, "
                      f"expected {v['frames']}")
    _frames(folder / capture, v, model)
    top1 = _top1(folder, attack, capture, result["n"])
    if abs(top1 - result["reconstruction"]["identification"]["top1"]) > 1e-6:
        raise Missing(f"{path.relative_to(folder)} says top-1 "
                      f"{result['reconstruction']['identification']['top1']}, but {attack}'s "
                      f"decoder on {capture} scores {top1}: run attack eval again")
    return result


def _top1(folder: Path, attack: str, capture: str, n: int) -> float:
    """Top-1 identification of the first `n` frames of a capture among the private images, as
    `attack eval --from-capture ... --truth folder:private` scores it."""
    from splitleak.attack import evaluate
    from splitleak.cloud.data import load_source

    truth = load_source(f"folder:{folder / 'private'}")
    e = evaluate.score_capture(folder / attack, folder / capture, truth, limit=n)
    return e.result["reconstruction"]["identification"]["top1"]


# -- lab 1 -------------------------------------------------------------------------------------

def lab1(folder: Path, v: dict) -> dict:
    def cloud():
        s = _json(folder / "cloud.out", last_line=True)
        if s["nodes"].get(v["node"], {}).get("frames", 0) < v["frames"]:
            raise Missing(f"the cloud answered fewer than {v['frames']} frames of {v['node']}")

    def status():
        sha = _target(folder, v)
        s = _status(folder / "status.txt", v)
        if s.get("state") != "online" or s.get("model_sha256") != sha:
            raise Missing("status.txt should hold the retained online status naming your "
                          "model's sha256; subscribe while the second edge run is up")
        if _status(folder / "will.txt", v).get("state") != "offline":
            raise Missing("will.txt should hold the last will (offline) after kill -9")

    def listened():
        _frames(folder / "capture.txt", v)
        s = _json(folder / "spy.out", last_line=True)
        if s.get("nodes", {}).get(v["node"], 0) < v["frames"]:
            raise Missing(f"the eavesdropper (spy.out) decoded fewer than {v['frames']} frames "
                          f"of {v['node']}")

    def decoded():
        first = _frames(folder / "capture.txt", v)[0]
        d = _json(folder / "decoded.json")
        want = {"seq": first.seq, "node": first.node_id, "shape": list(first.activation.shape)}
        if {k: d.get(k) for k in want} != want or abs(d.get("first_value", 1e9)
                                                     - float(first.activation.flat[0])) > 1e-6:
            raise Missing(f"decoded.json {d} does not match the first frame of capture.txt")

    return {1: lambda: _target(folder, v), 2: cloud, 3: listened, 4: status, 5: decoded,
            6: lambda: _stopped(folder, v)}


# -- lab 2 -------------------------------------------------------------------------------------

def lab2(folder: Path, v: dict) -> dict:
    def live():
        s = _json(folder / "live.out", last_line=True)
        if s.get("reconstructed", 0) < v["frames"]:
            raise Missing(f"the eavesdropper reconstructed {s.get('reconstructed', 0)} frames, "
                          f"expected {v['frames']}")
        saved = list((folder / "recon" / v["node"]).glob("*.png"))
        if len(saved) < v["frames"]:
            raise Missing(f"recon/{v['node']}/ holds {len(saved)} reconstructions, expected "
                          f"{v['frames']}: pass --save recon")
        _frames(folder / "capture.txt", v)

    return {1: lambda: _target(folder, v),
            2: lambda: _decoder(folder, v, "attack", _target(folder, v)),
            3: live, 4: lambda: _scored_capture(folder, "attack", v)}


# -- lab 3 -------------------------------------------------------------------------------------

CUTS = (2, 4)


def lab3(folder: Path, v: dict) -> dict:
    def targets():
        for k in CUTS:
            _target(folder, v, f"target-k{k}", split_after=k)

    def decoders():
        for k in CUTS:
            _decoder(folder, v, f"attack-k{k}", _target(folder, v, f"target-k{k}", k))

    def captures():
        for k in CUTS:
            shape = tuple(_json(folder / f"target-k{k}" / rundir.MANIFEST)["activation"]["shape"])
            frames = _frames(folder / f"capture-k{k}.txt", v, f"target-k{k}")
            if frames[0].activation.shape != shape:
                raise Missing(f"capture-k{k}.txt holds {frames[0].activation.shape} activations, "
                              f"not target-k{k}'s {shape}: stream "
                              f"{rundir.mobile(Path(f'target-k{k}'))}")
        _stopped(folder, v)

    def scores():
        for k in CUTS:
            _scored_capture(folder, f"attack-k{k}", v, f"capture-k{k}.txt", f"target-k{k}")

    return {1: targets, 2: decoders, 3: captures, 4: scores}


# -- lab 4 -------------------------------------------------------------------------------------

def lab4(folder: Path, v: dict) -> dict:
    def epsilon():
        e = _json(folder / "epsilon.json")
        if (e["n"], e["noise_multiplier"], e["epochs"]) != (v["limit"], 0.7, v["epochs"]):
            raise Missing(f"epsilon.json is for n={e['n']}, z={e['noise_multiplier']}, "
                          f"{e['epochs']} epochs; expected n=$LIMIT, z=0.7, $EPOCHS epochs")

    def sweep():
        from dataclasses import replace

        from splitleak.tools.experiments.settings import preset

        done = _json(folder / "sweep" / "results.json")["settings"]
        want = [replace(s, **_json(folder / "sweep.json")) for s in preset("lab")]
        missing = [s.name for s in want if s.key() not in done]
        if missing:
            raise Missing(f"sweep/results.json lacks {', '.join(missing)} (with your sweep.json): "
                          "run the sweep again, it resumes")
        if not any((r["epsilon"] or {}).get("rdp") for r in done.values()):
            raise Missing("no DP-SGD row with an ε in sweep/results.json")

    def read():
        for name in ("results.md", "privacy-utility.png", "report.html"):
            if not (folder / "sweep" / name).is_file():
                raise Missing(f"sweep/{name} is missing: the sweep writes it when every "
                              "setting is done")

    return {1: epsilon, 2: sweep, 3: read}


# -- lab 5 -------------------------------------------------------------------------------------

def lab5(folder: Path, v: dict) -> dict:
    def models():
        _decoder(folder, v, "attack", _target(folder, v))

    def broker():
        log = _line(folder / "broker.log", "amqtt broker, profile auth")
        if f"port {v['port']}" not in log and f":{v['port']}" not in log:
            raise Missing(f"broker.log is not an auth broker on your port {v['port']}: start it "
                          "as task 2 does")
        saved = _json(folder / "broker" / "credentials.json")
        if v["node"] not in _line(folder / "broker.log", f"  {v['node']}:") or _is_password(
                saved.get(v["node"]), v):
            raise Missing("the broker does not know your node, or keeps the device's password "
                          "in clear: start it with --password \"$NODE=$(cat vendor/password)\"")

    def guess():
        g = _json(folder / "guess.json")
        if g.get("user") != v["node"] or not _is_password(g.get("password"), v):
            raise Missing(f"guess.json did not recover {v['node']}'s password: guess with "
                          "--user $NODE --wordlist wordlist.txt")
        words = (folder / "wordlist.txt").read_text().split()
        if g.get("tried") != words.index(g["password"]) + 1:
            raise Missing(f"guess.json says {g.get('tried')} guesses, but the password is word "
                          f"{words.index(g['password']) + 1} of wordlist.txt: guess again")

    def stolen():
        s = _json(folder / "stolen.out", last_line=True)
        if s.get("reconstructed", 0) < v["frames"]:
            raise Missing(f"the eavesdropper with the stolen credential reconstructed "
                          f"{s.get('reconstructed', 0)} frames, expected {v['frames']}")
        _frames(folder / "stolen.txt", v)
        _stopped(folder, v)

    def network():
        rows = {r["profile"]: r for r in _json(folder / "network" / "results.json")["rows"]}
        if set(rows) != {"auth", "tls"}:
            raise Missing(f"network/results.json has profiles {sorted(rows)}; expected auth "
                          "and tls: pass --profiles auth tls")
        edge = {p: rows[p]["eavesdroppers"]["stolen edge credential"]["frames"] for p in rows}
        if not edge["auth"] or edge["tls"]:
            raise Missing(f"a stolen edge credential received {edge} frames; expected all "
                          "under auth and none under tls")

    return {1: models, 2: broker, 3: guess, 4: stolen, 5: network}


# -- lab 6 -------------------------------------------------------------------------------------

def _sniffed(path: Path, port: int):
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


def _published(folder: Path, frames: list, v: dict, model: str = "target",
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
            raise Missing(f"frame {f.seq} in {where} is not what {model}/mobile.tflite gives on "
                          "private/: capture your own device's stream")


def _net_down(v: dict) -> None:
    from splitleak.tools.deploy.netns import LabNet, existing

    if found := existing(LabNet(prefix=v["net"])):
        raise Missing(f"the lab network is still up ({', '.join(found)}): kill $NET_PID or "
                      f"run splitleak net --prefix {v['net']} down")


def lab6(folder: Path, v: dict) -> dict:
    from splitleak.tools.deploy.netns import LabNet

    net = LabNet(prefix=v["net"])
    device, broker = net.address("device"), net.address("broker")

    def models():
        _decoder(folder, v, "attack", _target(folder, v))

    def network():
        s, frames = _sniffed(folder / "plain.pcap", v["port"])
        if not any(c["client"] == device for c in s["credentials"]):
            raise Missing(f"plain.pcap holds no login from the device host ({device}): capture "
                          f"on eve's eth0 while the device streams from {net.namespace('device')}")

    def plain():
        s, frames = _sniffed(folder / "plain.pcap", v["port"])
        login = [c for c in s["credentials"] if c["username"] == v["node"]]
        password = _json(folder / "broker" / "credentials.json").get(v["node"])
        if not login or login[-1]["password"] != password:
            raise Missing(f"plain.pcap holds no login of {v['node']} with its broker password")
        _published(folder, frames, v)
        said = (folder / "sniff-plain.out").read_text() if (folder / "sniff-plain.out").is_file() \
            else ""
        if f"password {password!r}" not in said:
            raise Missing("sniff-plain.out does not report the device's password: run the sniffer "
                          "as the handout does")
        _reconstructed(folder, frames, v)

    def tls():
        s, _ = _sniffed(folder / "tls.pcap", v["tls_port"])
        if s["mqtt_packets"] or s["credentials"]:
            raise Missing("tls.pcap holds readable MQTT: was the broker started with --profile tls?")
        from splitleak.tools.deploy.demo import frame_bytes

        sent = _tls_bytes(folder / "tls.pcap", device, broker, v["tls_port"])
        need = v["frames"] * frame_bytes(folder / "target", v["node"])
        if sent < need:
            raise Missing(f"tls.pcap holds {sent} bytes from the device to the broker's TLS port, "
                          f"less than {v['frames']} frames need ({need}): capture while it streams")

    def read():
        for name, port in (("plain", v["port"]), ("tls", v["tls_port"])):
            s, _ = _sniffed(folder / f"{name}.pcap", port)
            said = _line(folder / f"read-{name}.out", "sniffed:")
            if f"{s['frames']} frames" not in said or f"{s['mqtt_packets']} MQTT" not in said:
                raise Missing(f"read-{name}.out does not match {name}.pcap: read it again")
        _net_down(v)

    return {1: models, 2: network, 3: plain, 4: tls, 5: read}


def _reconstructed(folder: Path, frames: list, v: dict) -> None:
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


def _tls_bytes(path: Path, src: str, dst: str, port: int) -> int:
    """TCP payload bytes from src to dst:port in a capture."""
    from scapy.layers.inet import IP, TCP
    from scapy.utils import PcapReader

    with PcapReader(str(path)) as packets:
        return sum(len(p[TCP].payload) for p in packets
                   if IP in p and TCP in p and p[IP].src == src and p[IP].dst == dst
                   and p[TCP].dport == port)


def _line(path: Path, starts: str) -> str:
    if not path.is_file():
        raise Missing(f"{path} is missing")
    lines = [ln for ln in path.read_text().splitlines() if ln.startswith(starts)]
    if not lines:
        raise Missing(f"{path.name} has no '{starts}' line: run the command again")
    return lines[-1]


def _is_password(guess, v: dict) -> bool:
    """Whether `guess` is the device's password, by the salted hash lab.json keeps."""
    from splitleak.tools.labs.lab import password_check

    check = v.get("password_check") or {}
    return isinstance(guess, str) and bool(check) and \
        password_check(guess, check["salt"]) == check


def _stopped(folder: Path, v: dict) -> None:
    """The lab's broker ran, and nothing listens on its port any more."""
    from splitleak.broker.server import port_open

    if not (folder / "broker.log").is_file():
        raise Missing("broker.log is missing: start the broker as the handout does")
    if port_open("127.0.0.1", v["port"]):
        raise Missing(f"something still listens on port {v['port']}: kill $BROKER_PID "
                      "(or the `splitleak broker` you started)")


CHECKS = {1: lab1, 2: lab2, 3: lab3, 4: lab4, 5: lab5, 6: lab6}


def run(n: int, folder: Path, v: dict) -> list[tuple[int, str | None]]:
    """(task number, None or a hint) for every task of lab n."""
    out = []
    for number, check in CHECKS[n](Path(folder), v).items():
        try:
            check()
            out.append((number, None))
        except Missing as exc:
            hint = str(exc).replace(f"{folder}/", "")
            if hint.endswith("is missing"):  # name the task that makes it, not just the file
                hint += f": run task {number}'s commands (and the tasks before it)"
            out.append((number, hint))
        except (KeyError, TypeError, ValueError) as exc:
            out.append((number, f"an output of this task is malformed ({exc}); run it again"))
    return out
