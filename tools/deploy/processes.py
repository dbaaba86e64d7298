"""Start splitleak nodes as child processes and always stop them again."""

import json
import queue
import subprocess
import sys
import threading
import time

from splitleak.broker.server import stop_process


class Node:
    """A `splitleak <command> …` child process whose output is read line by line."""

    def __init__(self, name: str, *args, prefix=()):
        """prefix: argv to run the command under, e.g. LabNet.exec_args(host)."""
        self.name = name
        self.ready: str | None = None  # the line that says it is up (Deployment.start)
        cmd = [*prefix, sys.executable, "-m", "splitleak.tools.cli", *map(str, args)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)  # Ctrl-C reaches us, we stop it
        self.lines: queue.Queue = queue.Queue()
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, text: str, timeout: float = 120.0) -> str:
        """Block until a line containing `text` appears; fail if the process ends first."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise RuntimeError(f"{self.name} exited (code {self.proc.wait()}) before "
                                   f"saying {text!r}:\n{self.tail()}")
            if text in line:
                return line
        raise TimeoutError(f"{self.name} did not say {text!r} within {timeout:g} s:\n{self.tail()}")

    def wait(self, timeout: float | None = None) -> int:
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then SIGKILL if it does not end in time."""
        return stop_process(self.proc, timeout)

    def tail(self, lines: int = 15) -> str:
        time.sleep(0.1)
        return "".join(self.output[-lines:])

    def json(self, timeout: float = 20.0) -> dict:
        """The last JSON object the process printed (its --json summary); waits for it to end."""
        self.proc.wait(timeout)
        self._reader.join(timeout)
        for line in reversed(self.output):
            if line.startswith("{"):
                return json.loads(line)
        raise RuntimeError(f"{self.name} (exit code {self.proc.returncode}) printed no JSON "
                           f"summary:\n{self.tail()}")
