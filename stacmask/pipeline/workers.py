"""`build --workers N`: scenes in N worker processes that die with the build, one scene each.

Unlike a ProcessPoolExecutor, which breaks as a whole (BrokenProcessPool) when one worker dies,
each worker here has its own pipe, so the build knows which scene a dead worker held: that scene
alone fails (stage "worker", recorded like any other failure) and a fresh worker takes the next.
Workers die with the build (Linux: the kernel kills them when it dies, PR_SET_PDEATHSIG; else a
thread watching the parent), ignore Ctrl-C (the build stops them, then reports), and clean up
their temporary files when told to stop (SIGTERM).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from types import FrameType
from typing import Any

from stacmask.pipeline.scene import SceneOutcome, SceneTask, process_scene

#: Stage recorded in failures.json for a scene whose worker process died.
WORKER_STAGE = "worker"
#: Seconds stopping workers may take to clean up (SIGTERM) before they are killed.
STOP_GRACE = 10.0
#: Linux prctl option: the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Make this process end when process `parent` does (a kill -9 of the build included)."""
    if sys.platform.startswith("linux"):
        with suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)

    def watch() -> None:  # where prctl is missing, and a second guard where it is not
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="stacmask parent watch", daemon=True).start()


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds: temporary files and folders are removed


def worker_main(conn: Connection, parent: int) -> None:
    """A worker: receive a task, send back its outcome, until told to stop (None) or orphaned."""
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        conn.send(process_scene(task))


def exit_reason(exitcode: int | None) -> str:
    """What an exit code says: killed by a signal (named), or the status."""
    if exitcode is None:
        return "did not end"
    if exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


@dataclass
class _Worker:
    process: Any  # multiprocessing's SpawnProcess
    conn: Connection
    task: SceneTask | None = None
    started: float = field(default=0.0)


class ScenePool:
    """Up to `size` worker processes; `run(tasks)` yields each task's outcome as it finishes."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []

    def _start(self) -> _Worker:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=worker_main, args=(theirs, os.getpid()), name="stacmask worker", daemon=True
        )
        process.start()
        theirs.close()
        worker = _Worker(process, ours)
        self._workers.append(worker)
        return worker

    @property
    def busy(self) -> list[SceneTask]:
        """The tasks workers hold now."""
        return [w.task for w in self._workers if w.task is not None]

    def run(self, tasks: Sequence[SceneTask]) -> Iterator[SceneOutcome]:
        """Every task's outcome, as they finish; workers are stopped when this ends."""
        pending = deque(tasks)
        try:
            while pending or self.busy:
                for worker in self._workers:
                    if pending and worker.task is None:
                        self._give(worker, pending.popleft())
                while pending and len(self._workers) < self.size:
                    self._give(self._start(), pending.popleft())
                yield from self._collect()
        finally:
            self.stop()

    def _give(self, worker: _Worker, task: SceneTask) -> None:
        worker.task, worker.started = task, time.monotonic()
        worker.conn.send(task)

    def _collect(self) -> Iterator[SceneOutcome]:
        busy = [w for w in self._workers if w.task is not None]
        ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
        for worker in busy:
            if worker.conn not in ready and worker.process.sentinel not in ready:
                continue
            task = worker.task
            assert task is not None
            outcome: SceneOutcome | None = None
            with suppress(EOFError, OSError):
                if worker.conn.poll():
                    outcome = worker.conn.recv()
            worker.task = None
            if outcome is None:  # the worker died with the scene
                yield self._died(worker, task)
            else:
                yield outcome

    def _died(self, worker: _Worker, task: SceneTask) -> SceneOutcome:
        worker.process.join(STOP_GRACE)
        self._workers.remove(worker)
        worker.conn.close()
        return SceneOutcome(
            str(task.item.get("id")),
            time.monotonic() - worker.started,
            stage=WORKER_STAGE,
            error_type="WorkerDied",
            message=f"the worker process masking this scene {exit_reason(worker.process.exitcode)}"
            " (a crash in a library, the kernel's out-of-memory killer, or a kill); the other "
            "scenes went on",
        )

    def stop(self) -> None:
        """Stop every worker: ask idle ones to leave, SIGTERM busy ones (they clean up), and
        kill any still there after STOP_GRACE seconds."""
        for worker in self._workers:
            with suppress(OSError, ValueError):
                if worker.task is None:
                    worker.conn.send(None)
                else:
                    worker.process.terminate()
        deadline = time.monotonic() + STOP_GRACE
        for worker in self._workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        self._workers.clear()
