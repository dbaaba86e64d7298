"""`splitleak lab check N`: per task, is what the handout's commands leave in the folder there,
does it belong to this student's variant, and does it hold when recomputed (evidence.py)? A
check returns None when it holds, else a hint naming what to run. Typing a file's expected
values into it therefore fails, and so does a classmate's folder (other node, seed, images and
password).
"""

from pathlib import Path

from splitleak.cloud import rundir
from splitleak.tools.labs import evidence as ev
from splitleak.tools.labs.evidence import Missing

# -- lab 1 -------------------------------------------------------------------------------------

def lab1(folder: Path, v: dict) -> dict:
    def cloud():
        s = ev.doc(folder / "cloud.out", last_line=True)
        if s["nodes"].get(v["node"], {}).get("frames", 0) < v["frames"]:
            raise Missing(f"the cloud answered fewer than {v['frames']} frames of {v['node']}")

    def status():
        sha = ev.target(folder, v)
        s = ev.status(folder / "status.txt", v)
        if s.get("state") != "online" or s.get("model_sha256") != sha:
            raise Missing("status.txt should hold the retained online status naming your "
                          "model's sha256; subscribe while the second edge run is up")
        if ev.status(folder / "will.txt", v).get("state") != "offline":
            raise Missing("will.txt should hold the last will (offline) after kill -9")

    def listened():
        ev.frames(folder / "capture.txt", v)
        s = ev.doc(folder / "spy.out", last_line=True)
        if s.get("nodes", {}).get(v["node"], 0) < v["frames"]:
            raise Missing(f"the eavesdropper (spy.out) decoded fewer than {v['frames']} frames "
                          f"of {v['node']}")

    def decoded():
        first = ev.frames(folder / "capture.txt", v)[0]
        d = ev.doc(folder / "decoded.json")
        want = {"seq": first.seq, "node": first.node_id, "shape": list(first.activation.shape)}
        if {k: d.get(k) for k in want} != want or abs(d.get("first_value", 1e9)
                                                     - float(first.activation.flat[0])) > 1e-6:
            raise Missing(f"decoded.json {d} does not match the first frame of capture.txt")

    return {1: lambda: ev.target(folder, v), 2: cloud, 3: listened, 4: status, 5: decoded,
            6: lambda: ev.stopped(folder, v)}


# -- lab 2 -------------------------------------------------------------------------------------

def lab2(folder: Path, v: dict) -> dict:
    def live():
        s = ev.doc(folder / "live.out", last_line=True)
        if s.get("reconstructed", 0) < v["frames"]:
            raise Missing(f"the eavesdropper reconstructed {s.get('reconstructed', 0)} frames, "
                          f"expected {v['frames']}")
        saved = list((folder / "recon" / v["node"]).glob("*.png"))
        if len(saved) < v["frames"]:
            raise Missing(f"recon/{v['node']}/ holds {len(saved)} reconstructions, expected "
                          f"{v['frames']}: pass --save recon")
        ev.frames(folder / "capture.txt", v)

    return {1: lambda: ev.target(folder, v),
            2: lambda: ev.decoder(folder, v, "attack", ev.target(folder, v)),
            3: live, 4: lambda: ev.scored_capture(folder, "attack", v)}


# -- lab 3 -------------------------------------------------------------------------------------

CUTS = (2, 4)


def lab3(folder: Path, v: dict) -> dict:
    def targets():
        for k in CUTS:
            ev.target(folder, v, f"target-k{k}", split_after=k)

    def decoders():
        for k in CUTS:
            ev.decoder(folder, v, f"attack-k{k}", ev.target(folder, v, f"target-k{k}", k))

    def captures():
        for k in CUTS:
            shape = tuple(ev.doc(folder / f"target-k{k}" / rundir.MANIFEST)["activation"]["shape"])
            frames = ev.frames(folder / f"capture-k{k}.txt", v, f"target-k{k}")
            if frames[0].activation.shape != shape:
                raise Missing(f"capture-k{k}.txt holds {frames[0].activation.shape} activations, "
                              f"not target-k{k}'s {shape}: stream "
                              f"{rundir.mobile(Path(f'target-k{k}'))}")
        ev.stopped(folder, v)

    def scores():
        for k in CUTS:
            ev.scored_capture(folder, f"attack-k{k}", v, f"capture-k{k}.txt", f"target-k{k}")

    return {1: targets, 2: decoders, 3: captures, 4: scores}


# -- lab 4 -------------------------------------------------------------------------------------

def lab4(folder: Path, v: dict) -> dict:
    def epsilon():
        from splitleak.cloud import privacy

        e = ev.doc(folder / "epsilon.json")
        if (e["n"], e["noise_multiplier"], e["epochs"]) != (v["limit"], 0.7, v["epochs"]):
            raise Missing(f"epsilon.json is for n={e['n']}, z={e['noise_multiplier']}, "
                          f"{e['epochs']} epochs; expected n=$LIMIT, z=0.7, $EPOCHS epochs")
        again = privacy.statement(v["limit"], 32, 0.7, v["epochs"], 1e-5, "poisson")["epsilon"]
        if any(abs(again[k] - e["epsilon"][k]) > 1e-6 for k in again):
            raise Missing(f"epsilon.json's ε {e['epsilon']} is not what the accountants give "
                          f"({again}): run task 1's command again")

    def sweep():
        from dataclasses import replace

        from splitleak.tools.experiments.settings import preset

        done = ev.doc(folder / "sweep" / "results.json")["settings"]
        want = [replace(s, **ev.doc(folder / "sweep.json")) for s in preset("lab")]
        missing = [s.name for s in want if s.key() not in done]
        if missing:
            raise Missing(f"sweep/results.json lacks {', '.join(missing)} (with your sweep.json): "
                          "run the sweep again, it resumes")
        if not any((r["epsilon"] or {}).get("rdp") for r in done.values()):
            raise Missing("no DP-SGD row with an ε in sweep/results.json")
        for s in want:  # each deployment's accuracy, evaluated again on the student's models
            ev.deployed_accuracy(folder, done[s.key()], s.name)

    def read():
        for name in ("results.md", "frontier.png", "report.html"):
            if not (folder / "sweep" / name).is_file():
                raise Missing(f"sweep/{name} is missing: the sweep writes it when every "
                              "setting is done")

    return {1: epsilon, 2: sweep, 3: read}


# -- lab 5 -------------------------------------------------------------------------------------

def lab5(folder: Path, v: dict) -> dict:
    def models():
        ev.decoder(folder, v, "attack", ev.target(folder, v))

    def broker():
        log = ev.line(folder / "broker.log", "amqtt broker, profile auth")
        if f"port {v['port']}" not in log and f":{v['port']}" not in log:
            raise Missing(f"broker.log is not an auth broker on your port {v['port']}: start it "
                          "as task 2 does")
        saved = ev.doc(folder / "broker" / "credentials.json")
        if v["node"] not in ev.line(folder / "broker.log", f"  {v['node']}:") or ev.is_password(
                saved.get(v["node"]), v):
            raise Missing("the broker does not know your node, or keeps the device's password "
                          "in clear: start it with --password \"$NODE=$(cat vendor/password)\"")

    def guess():
        g = ev.doc(folder / "guess.json")
        if g.get("user") != v["node"] or not ev.is_password(g.get("password"), v):
            raise Missing(f"guess.json did not recover {v['node']}'s password: guess with "
                          "--user $NODE --wordlist wordlist.txt")
        words = (folder / "wordlist.txt").read_text().split()
        if g.get("tried") != words.index(g["password"]) + 1:
            raise Missing(f"guess.json says {g.get('tried')} guesses, but the password is word "
                          f"{words.index(g['password']) + 1} of wordlist.txt: guess again")

    def stolen():
        s = ev.doc(folder / "stolen.out", last_line=True)
        if s.get("reconstructed", 0) < v["frames"]:
            raise Missing(f"the eavesdropper with the stolen credential reconstructed "
                          f"{s.get('reconstructed', 0)} frames, expected {v['frames']}")
        ev.frames(folder / "stolen.txt", v)
        ev.stopped(folder, v)

    def network():
        rows = {r["profile"]: r for r in ev.doc(folder / "network" / "results.json")["rows"]}
        if set(rows) != {"auth", "tls"}:
            raise Missing(f"network/results.json has profiles {sorted(rows)}; expected auth "
                          "and tls: pass --profiles auth tls")
        edge = {p: rows[p]["eavesdroppers"]["stolen edge credential"]["frames"] for p in rows}
        if not edge["auth"] or edge["tls"]:
            raise Missing(f"a stolen edge credential received {edge} frames; expected all "
                          "under auth and none under tls")

    return {1: models, 2: broker, 3: guess, 4: stolen, 5: network}


# -- lab 6 -------------------------------------------------------------------------------------

def lab6(folder: Path, v: dict) -> dict:
    from splitleak.tools.deploy.netns import LabNet

    net = LabNet(prefix=v["net"])
    device, broker = net.address("device"), net.address("broker")

    def models():
        ev.decoder(folder, v, "attack", ev.target(folder, v))

    def network():
        s, frames = ev.sniffed(folder / "plain.pcap", v["port"])
        if not any(c["client"] == device for c in s["credentials"]):
            raise Missing(f"plain.pcap holds no login from the device host ({device}): capture "
                          f"on eve's eth0 while the device streams from {net.namespace('device')}")

    def plain():
        s, frames = ev.sniffed(folder / "plain.pcap", v["port"])
        login = [c for c in s["credentials"] if c["username"] == v["node"]]
        password = ev.doc(folder / "broker" / "credentials.json").get(v["node"])
        if not login or login[-1]["password"] != password:
            raise Missing(f"plain.pcap holds no login of {v['node']} with its broker password")
        ev.published(folder, frames, v)
        said = (folder / "sniff-plain.out").read_text() if (folder / "sniff-plain.out").is_file() \
            else ""
        if f"password {password!r}" not in said:
            raise Missing("sniff-plain.out does not report the device's password: run the sniffer "
                          "as the handout does")
        ev.reconstructed(folder, frames, v)

    def tls():
        s, _ = ev.sniffed(folder / "tls.pcap", v["tls_port"])
        if s["mqtt_packets"] or s["credentials"]:
            raise Missing("tls.pcap holds readable MQTT: was the broker started with --profile tls?")
        from splitleak.tools.deploy.demo import frame_bytes

        sent = ev.tls_bytes(folder / "tls.pcap", device, broker, v["tls_port"])
        need = v["frames"] * frame_bytes(folder / "target", v["node"])
        if sent < need:
            raise Missing(f"tls.pcap holds {sent} bytes from the device to the broker's TLS port, "
                          f"less than {v['frames']} frames need ({need}): capture while it streams")

    def read():
        for name, port in (("plain", v["port"]), ("tls", v["tls_port"])):
            s, _ = ev.sniffed(folder / f"{name}.pcap", port)
            said = ev.line(folder / f"read-{name}.out", "sniffed:")
            if f"{s['frames']} frames" not in said or f"{s['mqtt_packets']} MQTT" not in said:
                raise Missing(f"read-{name}.out does not match {name}.pcap: read it again")
        ev.net_down(v)

    return {1: models, 2: network, 3: plain, 4: tls, 5: read}


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
