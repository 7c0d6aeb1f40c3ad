"""Slow subprocess checks, started early so they run beside the in-process tests.

The fast suite's slow parts are subprocesses: `terraform validate` of every stack,
checkov, `python main.py` with a plain provider import and `cdktf synth`. Run
one after another they leave a core idle while pytest waits. Here each is a named
job on a thread pool: conftest starts the ones the selected tests need as soon as
their inputs exist (after collection, or right after the session synth), and the
fixture that needs a job's result waits for it, starting it itself if nobody
did. What each job checks is unchanged; only when it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from threading import Lock
from typing import Any, TypeVar

T = TypeVar("T")


class Background:
    # One worker per job a full run starts (tests/conftest.py, tests/emulator/conftest.py): a job that
    # waits for another (the saved-plans steps for the emulator) was submitted after it, so never blocks it.
    def __init__(self, workers: int = 8) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="background")
        self._jobs: dict[str, Future[Any]] = {}
        self._lock = Lock()
        self.selected_files: set[str] = set()

    def wanted(self, test_file: str) -> bool:
        """Whether the session runs tests from `tests/<test_file>`."""
        return test_file in self.selected_files

    def start(self, name: str, job: Callable[..., T], *args: Any) -> Future[T]:
        with self._lock:
            if name not in self._jobs:
                self._jobs[name] = self._pool.submit(job, *args)
            return self._jobs[name]

    def started(self, name: str) -> Future[Any] | None:
        """The job's future if it was started (done or not)."""
        with self._lock:
            return self._jobs.get(name)

    def result(self, name: str, job: Callable[..., T], *args: Any) -> T:
        """The job's result: waits for it, and starts it first if it was not started."""
        return self.start(name, job, *args).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


JOBS = Background()
