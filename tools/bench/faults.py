"""Faults mid-stream: an edge node dropped, the broker crashed twice, the cloud head crashed.

Mosquitto, QoS 1, persistent sessions. Two nodes (one `--fleet 2` edge) stream at a fixed rate,
a third node streams beside them; the cloud head, the eavesdropper and a recorder of the
predictions (persistent session) are attached. Then, in order:

1. the third node is killed (SIGKILL, no clean close): a fresh subscriber must read "offline"
   in its retained status (the last will);
2. twice, shortly after Mosquitto saved its database: the broker is killed (SIGKILL) and
   started again on the same port and folder;
3. the cloud head is killed (SIGKILL) and started again with the same client id.

After each fault every streaming node's predictions must flow again within RECOVER_S of the
kill, with no hand on any process. The edges log when the broker acknowledged each frame
(`--ack-log`). A frame without a prediction is *lost by design* if the broker acknowledged it
after its last save before a kill and before it was started again: Mosquitto restores that
save, so what it acknowledged since and had not passed on yet (the frame, or its prediction on
the way back) died with it. Any other missing frame is unexplained. amqtt keeps no session
across a restart, so this scenario refuses it.
"""

import queue
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from splitleak.broker import mosquitto, topics, wire
from splitleak.tools.bench.target import ENGINE, data_args, finished_run

FRAMES, RATE = 12_000, 100.0  # frames per node, frames/s per node
FLEET, DROP = "faults", "faults-drop"
STREAMING = (f"{FLEET}-0", f"{FLEET}-1")
KILL_AFTER_SAVE = 0.5  # s between the broker's save and its kill
DOWN_S = 0.3  # s the broker stays down
RECOVER_S = 60.0  # predictions must flow again this soon after a fault
WILL_S = 5.0  # the last will must show this soon after the node died
AMQTT_REFUSED = ("bench faults needs --engine mosquitto: amqtt keeps no session or retained "
                 "message across a restart, so everything queued at a kill is lost")
EXPLANATION = ("lost by design: the broker acknowledged these frames after its last save "
               "before a SIGKILL and had not passed them (or their predictions) on; Mosquitto "
               "restarts from that save (autosave every {autosave} s), so they died with it")


@dataclass
class Crash:
    """One broker kill: its last save before, the kill, and the restart (unix s)."""

    saved_at: float
    killed_at: float
    restarted_at: float

    def lost(self, acked_at: float) -> bool:
        """Whether a frame acknowledged at `acked_at` may have died with this broker."""
        return self.saved_at < acked_at <= self.restarted_at


def check_engine(engine: str) -> None:
    """ValueError (one line) for any broker but Mosquitto."""
    if engine != "mosquitto":
        raise ValueError(AMQTT_REFUSED if engine == "amqtt" else f"unknown engine {engine!r}")


def classify(sent: int, acked: dict[int, float], answered: set[int], crashes: list) -> dict:
    """A node's frames 0..sent-1 without a prediction: lost by design (per crash),
    never acknowledged, or unexplained (the sequence numbers, up to 20)."""
    missing = [seq for seq in range(sent) if seq not in answered]
    by_crash = [0] * len(crashes)
    unacknowledged, unexplained = 0, []
    for seq in missing:
        if seq not in acked:
            unacknowledged += 1
            continue
        hit = next((i for i, c in enumerate(crashes) if c.lost(acked[seq])), None)
        if hit is None:
            unexplained.append(seq)
        else:
            by_crash[hit] += 1
    return {"missing": len(missing), "lost_by_design": sum(by_crash), "lost_per_crash": by_crash,
            "unacknowledged": unacknowledged, "unexplained": len(unexplained),
            "unexplained_seqs": unexplained[:20]}


def read_status(url: str, node: str, timeout: float = 2.0) -> str | None:
    """The state in `node`'s retained status, read by a fresh subscriber; None if none came."""
    from splitleak.broker.urls import connect, make_client

    got: queue.Queue = queue.Queue()
    client = make_client(url, f"splitleak-faults-status-{time.time_ns()}")
    client.on_connect = lambda c, *a: c.subscribe(topics.status(node), qos=1)
    client.on_message = lambda c, u, m: got.put(m.payload)
    connect(client)
    try:
        return wire.decode_status(got.get(timeout=timeout))["state"]
    except queue.Empty:
        return None
    except wire.WireError as exc:
        return f"undecodable ({exc.reason})"
    finally:
        client.disconnect()
        client.loop_stop()


class Scenario:
    """The deployment under faults: starts everything, applies each fault, keeps the record."""

    def __init__(self, dep, folder: Path, frames: int, rate: float, source: str, data):
        from splitleak.tools.deploy.demo import PredictionLog

        self.dep, self.crashes, self.events = dep, [], []
        self.ack_log = folder / "acks.csv"
        self.cloud = dep.start_cloud("--json")
        self.recorder = PredictionLog(dep.broker.url, client_id="splitleak-faults-recorder")
        dep.callback(self.recorder.close)
        self.spy = dep.start_eavesdropper("--json")
        stream = ("--rate", rate, "--count", frames, "--source", source, "--json", *data)
        self.fleet = dep.start_edge("--node-id", FLEET, "--fleet", len(STREAMING), "--ack-log",
                                    self.ack_log, "--wait", 5, *stream)
        self.drop = dep.start_edge("--node-id", DROP, *stream)
        self.started = time.monotonic()

    def counts(self) -> Counter:
        """Sequence numbers answered so far, per node."""
        return Counter(n for n, _ in list(self.recorder.answers))

    def wait_for_answers(self, nodes, since: Counter | None = None,
                         start: float | None = None) -> float | None:
        """Seconds from `start` (monotonic; default now) until each node has more answers than
        `since` says; None if that takes RECOVER_S."""
        since, start = since or Counter(), time.monotonic() if start is None else start
        while time.monotonic() - start < RECOVER_S:
            counts = self.counts()
            if all(counts[n] > since[n] for n in nodes):
                return round(time.monotonic() - start, 2)
            time.sleep(0.1)
        return None

    def _streaming(self, fault: str) -> None:
        if self.fleet.proc.poll() is not None:
            raise ValueError(f"the stream ended before {fault} "
                             f"({time.monotonic() - self.started:.0f} s): give --frames more")

    def _event(self, name: str, **facts) -> None:
        self.events.append({"event": name, "at_s": round(time.monotonic() - self.started, 2),
                            **facts})

    def drop_node(self) -> None:
        """SIGKILL the third node once it is answered; wait for its last will."""
        if self.wait_for_answers([DROP, *STREAMING]) is None:
            raise TimeoutError(f"no predictions within {RECOVER_S:g} s: {self.fleet.tail(2)}")
        self._streaming("the edge node was killed")
        self.drop.proc.kill()
        self.drop.proc.wait()
        killed, state = time.monotonic(), None
        while time.monotonic() - killed < WILL_S and state != "offline":
            state = read_status(self.dep.broker.url, DROP)
        self._event("edge node killed", node=DROP, status=state,
                    status_after_s=round(time.monotonic() - killed, 2))

    def crash_broker(self) -> None:
        """SIGKILL the broker KILL_AFTER_SAVE s after a save; start it again."""
        self._streaming(f"broker kill {len(self.crashes) + 1}")
        mosquitto.wait_for_autosave(self.dep.directory)
        time.sleep(KILL_AFTER_SAVE)
        saved_at = mosquitto.last_save(self.dep.directory)
        killed_at, killed = time.time(), time.monotonic()
        self.dep.restart_broker(kill=True, pause=DOWN_S)
        self.crashes.append(Crash(saved_at, killed_at, time.time()))
        before = self.counts()  # nothing came since the kill: the clients retry after 1 s
        self._event("broker killed", after_save_s=round(killed_at - saved_at, 2),
                    down_s=round(self.crashes[-1].restarted_at - killed_at, 2),
                    recovered_s=self.wait_for_answers(STREAMING, before, killed))

    def crash_cloud(self) -> None:
        """SIGKILL the cloud head; start it again with the same client id (its session)."""
        self._streaming("the cloud head was killed")
        killed = time.monotonic()
        self.cloud.proc.kill()
        self.cloud.proc.wait()
        time.sleep(0.5)  # the dead head's last predictions arrive; a new head takes seconds
        before = self.counts()
        self.cloud = self.dep.start_cloud("--json")
        self._event("cloud head killed", ready_after_s=round(time.monotonic() - killed, 2),
                    recovered_s=self.wait_for_answers(STREAMING, before, killed),
                    answered_before={n: before[n] for n in STREAMING})

    def finish(self) -> dict:
        """Let the stream end; every process's summary and the final counts."""
        try:
            code = self.fleet.wait(RECOVER_S + 300)
        except subprocess.TimeoutExpired:
            raise TimeoutError("the edge fleet did not finish: " + self.fleet.tail(1)) from None
        settled = -1
        while settled != len(self.recorder.answers):  # the last predictions arrive
            settled = len(self.recorder.answers)
            time.sleep(1.0)
        codes = {"edge": code, "cloud": self.cloud.stop(), "eavesdropper": self.spy.stop()}
        try:
            edge = self.fleet.json()
        except RuntimeError:
            raise OSError(f"the edge fleet failed (exit code {code}): "
                          f"{self.fleet.tail(1).strip()}") from None
        return {"exit_codes": codes, "edge": edge, "cloud": self.cloud.json(),
                "eavesdropper": self.spy.json(), "answers": dict(self.recorder.answers),
                "status_at_end": read_status(self.dep.broker.url, DROP)}


def run(run_dir: Path | None = None, *, split_after: int | None = None, engine: str = ENGINE,
        frames: int = FRAMES, rate: float = RATE, source: str = "lite-val",
        omniglot_dir: str | None = None) -> dict:
    """The scenario on a fresh broker, deploying `run_dir` (target.finished_run); per node what
    was sent, acknowledged, answered, and each missing frame classified; `problems` lists every
    failed check (empty: passed)."""
    from splitleak.edge.node import read_ack_log
    from splitleak.tools.deploy.demo import Deployment

    if frames < 1 or rate <= 0:
        raise ValueError("--frames and --rate must be positive")
    check_engine(engine)
    run_dir, _ = finished_run(run_dir, split_after)
    with tempfile.TemporaryDirectory(prefix="splitleak-faults-") as folder, \
            Deployment(run_dir, engine) as dep:
        s = Scenario(dep, Path(folder), frames, rate, source, data_args(omniglot_dir))
        s.drop_node()
        s.crash_broker()
        s.crash_broker()
        s.crash_cloud()
        end = s.finish()
        acks = read_ack_log(s.ack_log)
    return report(engine, frames, rate, s.events, s.crashes, end, acks)


def report(engine, frames, rate, events, crashes, end, acks) -> dict:
    """The JSON report, with `problems` and `passed`."""
    per_node, answered = end["edge"]["per_node"], {}
    for (node, seq), times in end["answers"].items():
        answered.setdefault(node, {})[seq] = times
    nodes = {n: {"sent": per_node[n]["sent"], "acknowledged": per_node[n]["acknowledged"],
                 "answered": len(answered.get(n, {})),
                 "duplicate_answers": sum(answered.get(n, {}).values()) - len(answered.get(n, {})),
                 **classify(per_node[n]["sent"], acks.get(n, {}), set(answered.get(n, {})),
                            crashes)}
             for n in STREAMING}
    dropped = set(answered.get(DROP, {}))
    head = end["cloud"]
    result = {
        "bench": "faults", "engine": engine, "frames_per_node": frames, "rate_hz": rate,
        "autosave_s": mosquitto.AUTOSAVE_SECONDS, "events": events,
        "crashes": [asdict(c) for c in crashes], "nodes": nodes,
        "dropped": {"node": DROP, "answered": len(dropped),
                    "gaps": max(dropped, default=-1) + 1 - len(dropped),
                    "status_after_kill": events[0]["status"], "status_at_end": end["status_at_end"],
                    "restarted_head_says": head["nodes"].get(DROP, {}).get("state")},
        "restarted_head": {k: head[k] for k in ("accepted", "duplicates", "gaps", "rejected")}
        | {"nodes": {n: head["nodes"].get(n, {}) for n in STREAMING}},
        "eavesdropper_frames": end["eavesdropper"]["nodes"], "exit_codes": end["exit_codes"],
        "lost_by_design": sum(n["lost_by_design"] for n in nodes.values()),
        "unexplained": sum(n["unexplained"] + n["unacknowledged"] for n in nodes.values()),
        "explanation": EXPLANATION.format(autosave=mosquitto.AUTOSAVE_SECONDS),
    }
    result["problems"] = problems(result, acks, crashes)
    return result | {"passed": not result["problems"]}


def problems(r: dict, acks: dict, crashes: list) -> list[str]:
    """One line per failed check."""
    out = [f"{n}: {v['unexplained']} unexplained missing frames {v['unexplained_seqs']}, "
           f"{v['unacknowledged']} never acknowledged"
           for n, v in r["nodes"].items() if v["unexplained"] or v["unacknowledged"]]
    out += [f"{n}: sent {v['sent']} of {r['frames_per_node']} frames, {v['acknowledged']} "
            "acknowledged" for n, v in r["nodes"].items()
            if not v["sent"] == v["acknowledged"] == r["frames_per_node"]]
    out += [f"{e['event']} (at {e['at_s']} s): predictions did not flow again within "
            f"{RECOVER_S:g} s" for e in r["events"] if e.get("recovered_s", 0) is None]
    out += [f"{who} exited with {code}" for who, code in r["exit_codes"].items() if code != 0]
    d = r["dropped"]
    out += [f"{DROP}: {k} is {d[k]!r}, not 'offline'"
            for k in ("status_after_kill", "status_at_end", "restarted_head_says")
            if d[k] != "offline"]
    out += [f"{DROP}: {d['gaps']} frames missing before its last answer"] if d["gaps"] else []
    before = next(e["answered_before"] for e in r["events"] if "answered_before" in e)
    after = {n: v["answered"] - before[n] for n, v in r["nodes"].items()}  # by the new head
    out += [f"the restarted head counted {h.get('frames', 0)} frames of {n}, fewer than the "
            f"{after[n]} answered after the kill" for n, h in r["restarted_head"]["nodes"].items()
            if h.get("frames", 0) < after[n]]
    last = crashes[-1].killed_at if crashes else 0.0
    out += [f"the eavesdropper saw no frame of {n} after the last broker kill"
            for n in r["nodes"] if r["eavesdropper_frames"].get(n, 0)
            <= sum(t <= last for t in acks.get(n, {}).values())]
    return out


def describe(r: dict) -> str:
    lines = [f"faults ({r['engine']}, {len(r['nodes'])} nodes x {r['frames_per_node']} frames at "
             f"{r['rate_hz']:g} Hz, autosave every {r['autosave_s']} s):"]
    for e in r["events"]:
        facts = ", ".join(f"{k} {v}" for k, v in e.items() if k not in ("event", "at_s",
                                                                         "answered_before"))
        lines.append(f"  {e['at_s']:7.2f} s  {e['event']}: {facts}")
    for node, n in r["nodes"].items():
        lines.append(f"  {node}: sent {n['sent']}, acknowledged {n['acknowledged']}, answered "
                     f"{n['answered']}, missing {n['missing']}: lost by design "
                     f"{n['lost_by_design']} (per broker kill {n['lost_per_crash']}), unexplained "
                     f"{n['unexplained']}")
    d, head = r["dropped"], r["restarted_head"]
    lines.append(f"  {d['node']} (killed): {d['answered']} answered, {d['gaps']} gaps; status "
                 f"offline after the kill / at the end / to the restarted head: "
                 f"{d['status_after_kill']} / {d['status_at_end']} / {d['restarted_head_says']}")
    lines.append(f"  restarted head: {head['accepted']} accepted, {head['gaps']} gaps, "
                 f"{head['duplicates']} duplicates; exit codes {r['exit_codes']}")
    if r["lost_by_design"]:
        lines.append(f"  {r['lost_by_design']} {r['explanation']}")
    lines.append("passed" if r["passed"] else "FAILED: " + "; ".join(r["problems"]))
    return "\n".join(lines)
