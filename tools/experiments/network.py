"""The network lockdown, measured: one stream per broker profile, and who else receives it.

For each profile (open, auth, tls) a fresh broker, the cloud head and one edge node stream the
same lite test images; beside them eavesdroppers try to subscribe to every node's activations:
with no credentials, a wrong password, the attacker's own account (valid, no rights under the
tls ACL), a stolen edge credential and a stolen cloud credential. Each eavesdropper's frames are
reconstructed with a black-box decoder and scored against the images that were sent.

With `wire`, the run moves onto the lab network (tools/deploy/netns.py): broker, cloud head
and subscribers on the broker host, the edge node on the device host, and on eve a passive
sniffer (`attack sniff`) with no account at all, capturing what crosses the hub: its frames
are reconstructed and scored the same way, and the passwords it read are counted.

The results (results.json, with the provenance of the run: commit, the hash of the code on its
path (provenance.NETWORK), packages, machine, date) and their table (results.md) go to one
folder; docs/results/network-ENGINE are the committed ones.
"""

import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from splitleak.broker import profiles, topics
from splitleak.broker.inbox import FrameInbox
from splitleak.broker.urls import BrokerConnectError, connect, make_client, parse_url

log = logging.getLogger("splitleak.network")



def eavesdroppers(node: str) -> dict:
    """eavesdropper -> (user, password) to log in with: None = anonymous; "" = the user's real
    password (stolen); `node` is the streaming edge node."""
    return {"no credentials": None,
            "wrong password": (profiles.ATTACKER, "not-the-password"),
            "attacker account": (profiles.ATTACKER, ""),
            "stolen edge credential": (node, ""),
            "stolen cloud credential": (profiles.CLOUD, "")}


EAVESDROPPERS = list(eavesdroppers(profiles.DEFAULT_NODES[0]))  # their names, in table order


class Eavesdropper:
    """A subscriber to splitleak/+/activations that keeps every valid frame it receives."""

    def __init__(self, name: str, broker, login, shape):
        self.name, self.frames, self.status, self.reason = name, {}, "connected", ""
        self.inbox = FrameInbox(shape, log)
        url = parse_url(broker.url)
        if login is not None and broker.profile != "open":
            user, password = login
            url = replace(url, username=user, password=password or broker.passwords[user])
        self.client = make_client(url, f"spy-{name.replace(' ', '-')}", ca_file=broker.ca_file)
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        try:
            connect(self.client)
        except BrokerConnectError as exc:
            self.client, self.status, self.reason = None, "refused", str(exc)
            return
        self.client.subscribe(topics.ALL_ACTIVATIONS, qos=1)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        if any(rc.is_failure for rc in reason_codes):
            self.status = "subscription refused"

    def _on_message(self, client, userdata, msg):
        frame = self.inbox.decode(msg.topic, msg.payload)
        if frame is not None:
            self.frames[frame.seq] = frame

    def close(self) -> None:
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()


OUT = Path("runs/network")
SOURCE = "lite-test"  # what the edge streams unless told another source
WIRE_PREFIX = "splitleak-exp"  # the wire run's own lab network, beside a student's `net up`
ENGINE = "mosquitto"  # keeps sessions and retained statuses, as a deployment would
FRAMES = 200  # lite test images streamed under each profile


def run_experiment(run_dir: Path | None = None, decoder_dir: Path | None = None,
                   engine: str = ENGINE, profile_names: tuple = profiles.PROFILES,
                   frames: int = FRAMES, out: Path = OUT, omniglot_dir=None,
                   wire: bool = False, source: str = SOURCE,
                   node: str = profiles.DEFAULT_NODES[0]) -> dict:
    """Reuse or train the lite run (rundir's default) and a decoder against it (the default
    attack folder), stream `frames` images of `source` (lite-test or folder:DIR) from `node`
    under each profile, reconstruct what each eavesdropper received; write out/results.json and
    results.md, return the results. With `wire` this process moves into the lab network's
    broker host: call it first thing."""
    stream = (source, node)
    if wire:
        from splitleak.tools.deploy import netns

        with netns.lab_network(netns.LabNet(prefix=WIRE_PREFIX)) as net:
            netns.enter(net, "broker")
            return _run(run_dir, decoder_dir, engine, profile_names, frames, out, omniglot_dir,
                        net, stream)
    return _run(run_dir, decoder_dir, engine, profile_names, frames, out, omniglot_dir, None,
                stream)


def _images(source: str, proto) -> np.ndarray:
    """The images the edge node streams from `source`, in its order."""
    if source == SOURCE:
        return proto.test.images
    if not source.startswith("folder:"):
        raise ValueError(f"--source must be {SOURCE} or folder:DIR, got {source!r}")
    from splitleak.edge.omniglot import read_folder

    return read_folder(Path(source.removeprefix("folder:")))[0]


def _run(run_dir, decoder_dir, engine, profile_names, frames, out, omniglot_dir, net,
         stream) -> dict:
    from splitleak.attack import store
    from splitleak.attack.config import TrainConfig as DecoderConfig
    from splitleak.attack.train import ensure_decoder
    from splitleak.cloud import artifacts, rundir
    from splitleak.cloud.config import TrainConfig
    from splitleak.cloud.data import load_protocol
    from splitleak.cloud.train import ensure_run
    from splitleak.tools.experiments import provenance

    stamp, began = provenance.stamp(provenance.NETWORK), time.monotonic()
    run_dir = Path(run_dir or rundir.default_run_dir())
    decoder_dir = Path(decoder_dir or rundir.default_attack_dir())
    proto = load_protocol("lite", omniglot_dir)
    source, node = stream
    images = _images(source, proto)
    if not 1 <= frames <= len(images):
        raise ValueError(f"--frames must be in 1..{len(images)}, got {frames}")
    ensure_run(run_dir, TrainConfig.epochs, proto, TrainConfig.split_after)
    ensure_decoder(decoder_dir, run_dir, DecoderConfig.epochs, proto)
    decoder, _ = store.load_decoder(decoder_dir)
    images = images[:frames]
    rows = []
    for profile in profile_names:
        print(f"profile {profile}: streaming {frames} images of {source} from {node}", flush=True)
        row, received = run_profile(run_dir, engine, profile, images, source, net=net, node=node)
        for name, got in received.items():
            spy = row["eavesdroppers"].get(name) or row["wire"]
            spy["reconstruction"] = score_frames(decoder, got, images)
        rows.append(row)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"engine": engine, "run": str(run_dir), "decoder": str(decoder_dir), "frames": frames,
              "source": source, "node": node, "wire": net is not None, "rows": rows, "provenance": stamp | {
                  "date": provenance.now(), "seconds": round(time.monotonic() - began, 1)}}
    artifacts.write_json(out / "results.json", result)
    (out / "results.md").write_text(table(rows))
    return result


def run_profile(run_dir, engine: str, profile: str, images: np.ndarray, source: str,
                timeout: float = 120.0, net=None,
                node: str = profiles.DEFAULT_NODES[0]) -> tuple[dict, dict]:
    """Stream `source` (whose images are `images`) under `profile`: (row, frames per spy).
    On the lab network `net` (this process in its broker host), a passive sniffer on eve too:
    the row's "wire", its frames under SNIFFER."""
    from splitleak.cloud import rundir
    from splitleak.tools.deploy.demo import Deployment

    shape = rundir.activation_shape(run_dir)
    host, edge_prefix = (net.address("broker"), net.exec_args("device")) if net else \
        ("127.0.0.1", ())
    with Deployment(run_dir, engine, profile, host=host, edge_prefix=edge_prefix,
                    nodes=(node,)) as dep:
        capture = dep.directory / "eve.pcap"
        if net:
            sniffer = dep.start("sniffer", "attack", "sniff", "--iface", "eth0", "--port",
                                dep.port, "--write", capture, ready="sniffing on",
                                prefix=net.exec_args("eve"))
        cloud = dep.start_cloud("--json")
        spies = [Eavesdropper(name, dep.broker, login, shape)
                 for name, login in eavesdroppers(node).items()]
        dep.callback(lambda: [s.close() for s in spies])
        edge = dep.start_edge("--source", source, "--count", len(images), "--node-id", node,
                              "--json")
        if edge.wait(timeout) != 0:
            raise RuntimeError(f"the edge node failed under {profile}:\n{edge.tail()}")
        time.sleep(1.0)  # the last frames reach the subscribers
        cloud.stop()
        accepted = cloud.json()["accepted"]
        if net:
            sniffer.stop()
            wire, frames = sniffed(capture, dep.port)
    row = {"profile": profile, "sent": len(images), "cloud": accepted,
           "eavesdroppers": {s.name: {"status": s.status, "reason": s.reason,
                                      "frames": len(s.frames)} for s in spies}}
    received = {s.name: s.frames for s in spies}
    if net:
        row["wire"], received[SNIFFER] = wire, frames
    return row, received


SNIFFER = "passive sniffer (wire)"
DEFAULTS = {"source": SOURCE, "node": profiles.DEFAULT_NODES[0]}


def sniffed(capture: Path, port: int) -> tuple[dict, dict]:
    """What the sniffer's capture holds: (counts and the passwords read, frames by seq)."""
    from splitleak.attack import sniff

    spy = sniff.Sniffer(port)
    sniff.read_pcap(spy, capture)
    s = spy.stats()
    counts = {"frames": s["frames"], "mqtt_packets": s["mqtt_packets"],
              "unreadable": s["unreadable"], "credentials": s["credentials"],
              "passwords": sorted({c["password"] for c in s["credentials"] if c["password"]})}
    return counts, {f.seq: f for f in spy.frames}


def score_frames(decoder, frames: dict, images: np.ndarray) -> dict | None:
    """Reconstruct the received frames and score them against the images sent (None if none)."""
    if not frames:
        return None
    from splitleak.attack import blackbox, metrics

    seqs = sorted(frames)
    recons = blackbox.reconstruct(decoder, np.stack([frames[s].as_float32() for s in seqs]))
    summary = metrics.evaluate(images[seqs], recons)
    return {"mse": summary["mse"], "top1": summary["identification"]["top1"], "n": len(seqs)}


def table(rows: list[dict]) -> str:
    """Markdown: frames received by the cloud and by each eavesdropper (and the top-1
    identification of their reconstructions), per profile."""
    names = list(EAVESDROPPERS) + ([SNIFFER] if any("wire" in r for r in rows) else [])
    lines = ["| profile | sent | cloud | " + " | ".join(names) + " |",
             "|---" * (3 + len(names)) + "|"]
    for r in rows:
        cells = []
        for name in names:
            e = r["eavesdroppers"].get(name) or r["wire"]
            rec = e.get("reconstruction")
            got = f"{e['frames']}" + (f" (top-1 {rec['top1']:.2f})" if rec else "")
            if name == SNIFFER:
                seen = len(e["passwords"])
                got += (f", {seen} password{'s' * (seen != 1)} read" if seen else "") + \
                    (": encrypted" if e["unreadable"] and not e["mqtt_packets"] else "")
            elif e["status"] != "connected":
                got += f": {e['status']}"
            cells.append(got)
        lines.append(f"| {r['profile']} | {r['sent']} | {r['cloud']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def command(result: dict, out) -> str:
    """The command that re-runs a result into `out`."""
    extra = "".join(f" --{k} {result[k]}" for k in ("source", "node")
                    if result.get(k, DEFAULTS[k]) != DEFAULTS[k])
    return (f"splitleak experiment network --engine {result['engine']} --frames "
            f"{result['frames']}{extra}{' --wire' if result.get('wire') else ''} --out {out}")


def problems(folder: Path) -> list[str]:
    """Why a committed result folder is not current: its results.md is not what its
    results.json gives, or the code on the experiment's path changed since it was run."""
    from splitleak.cloud import artifacts
    from splitleak.tools.experiments import provenance

    result = artifacts.read_json(Path(folder) / "results.json")
    found = []
    page = Path(folder) / "results.md"
    if not page.is_file() or page.read_text() != table(result["rows"]):
        found.append(f"{page} is not the table of its results.json (edited by hand?)")
    stamp = result.get("provenance") or {}
    if stamp.get("code_hash") != provenance.code_hash(files=provenance.NETWORK):
        found.append(f"{folder} is stale: run at commit {stamp.get('commit')}, and the code on "
                     f"the network experiment's path (provenance.NETWORK) has changed since: "
                     f"{command(result, folder)}")
    return found
