"""Small timing helpers shared by the benchmarks."""

import contextlib
import sys
import time

import numpy as np


def median_ms(fn, runs: int = 200, warmup: int = 20) -> dict:
    """Call fn() warmup times, then time `runs` calls; milliseconds per call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return {"median_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90)),
            "runs": runs}


def live_attack(decoder, engine: str, frames: int, folder, timeout: float = 600.0) -> dict:
    """Publish `frames` activation frames through a fresh broker as fast as the publisher can,
    while an eavesdropper (this process, its own thread) reconstructs them; frames/s reconstructed
    from the first publish to the last reconstruction."""
    import threading

    from splitleak.attack.live import Eavesdropper
    from splitleak.broker import topics, wire
    from splitleak.broker.server import free_port, start_broker
    from splitleak.broker.urls import connect, make_client

    rng = np.random.default_rng(0)
    shape = decoder.input_shape[1:]
    payloads = [wire.encode(wire.Frame("bench", seq, time.time(), rng.random(shape, np.float32)))
                for seq in range(frames)]
    with start_broker(engine, "open", free_port(), folder) as broker:
        spy = Eavesdropper(decoder, broker.url)
        publisher = make_client(broker.url, "bench-publisher")
        spy.start()
        connect(publisher)
        try:
            if not spy.subscribed.wait(10):
                raise TimeoutError("the eavesdropper's subscription was not acknowledged in 10 s")
            stop, failed = threading.Event(), []

            def serve():
                try:
                    spy.serve(stop, frames)
                except Exception as exc:  # re-raised below, in the caller's thread
                    failed.append(exc)

            worker = threading.Thread(target=serve, daemon=True)
            start = time.perf_counter()
            worker.start()
            for payload in payloads:
                publisher.publish(topics.activations("bench"), payload, qos=1)
            worker.join(timeout)
            elapsed = time.perf_counter() - start
            stop.set()
        finally:
            publisher.disconnect()
            publisher.loop_stop()
            spy.stop()
    if failed:
        raise failed[0]
    stats = spy.stats()
    if stats["reconstructed"] < frames:
        raise TimeoutError(f"only {stats['reconstructed']} of {frames} frames were reconstructed "
                           f"within {timeout:g} s")
    return {"engine": engine, "frames": frames, "seconds": round(elapsed, 3),
            "frames_per_second": round(frames / elapsed, 1),
            "seen": stats["seen"], "reconstructed": stats["reconstructed"],
            "rejected": stats["rejected_total"]}


def fit_seconds(proto, cfg) -> dict:
    """Train the target with `cfg` (cloud/train.fit); seconds of each epoch's training (up to
    its validation pass) and their median after the first (which traces the graphs)."""
    import tensorflow as tf

    from splitleak.cloud import train

    class Clock(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self.start = [], None

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_test_begin(self, logs=None):  # validation starts: the epoch's training is done
            if self.start is not None:
                self.seconds.append(time.perf_counter() - self.start)
                self.start = None

    clock = Clock()
    with contextlib.redirect_stdout(sys.stderr):  # Keras' epoch lines: stdout may be --json
        train.fit(proto, cfg, [clock])
    images = min(len(proto.train), cfg.limit or len(proto.train))
    return {"images": images, "epochs": [round(s, 3) for s in clock.seconds],
            "median": float(np.median(clock.seconds[1:]))}
