"""What the deployment benchmarks (pipeline, fuzz, soak, faults) deploy: a finished run, behind
a fresh broker of ENGINE unless told otherwise."""

from pathlib import Path

from splitleak.cloud import rundir

ENGINE = "mosquitto"  # the broker a benchmark starts unless told another


def finished_run(run_dir: Path | None = None, split_after: int | None = None) -> tuple[Path, int]:
    """The run folder (cloud/rundir.pick_run: `run_dir`, else the default run for `split_after`)
    and its split depth; FileNotFoundError unless it has a head and a mobile stage."""
    run_dir, split_after = rundir.pick_run(run_dir, split_after)
    if not (run_dir / rundir.HEAD_KERAS).is_file() or not rundir.mobile(run_dir).is_file():
        raise FileNotFoundError(f"{run_dir} is not a finished run (no {rundir.HEAD_KERAS} or "
                                f"{rundir.MOBILE_TFLITE}): run `splitleak train` or pass --run "
                                "RUN_DIR")
    return run_dir, split_after


def data_args(omniglot_dir: str | None) -> tuple:
    """The edge node's options that say where the Omniglot zips are (none: its default)."""
    return ("--omniglot-dir", omniglot_dir) if omniglot_dir else ()
