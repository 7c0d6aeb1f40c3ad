"""A test module whose tests are steps on one environment of its own, run as a background job.

tests/emulator/test_saved_plans.py is minutes of terraform on stacks, a bucket and a lock table
of its own: it depends on nothing else the session applies. Run at its module's turn, those
minutes come after everything before it; run as a background job from collection on
(tests/emulator/conftest.py starts every module's `SCENARIOS`), they go on beside the rest.

Each test's body is a step: the job sets the environment up once and runs the selected steps in
the module's order, each given the environment, as the module-scoped fixture and pytest's order
did. The test itself waits for the job and raises what its step raised, with the step's
traceback, so a failure, a skip (`require`) or an error reads as it did. What each step checks
is unchanged; only when it runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from tests.harness.background import JOBS


class Stopped(Exception):
    """The session ended before this step ran (a failure with -x, Ctrl-C)."""


class Scenarios:
    def __init__(self, job: str, setup: Callable[[], Any]) -> None:
        self.job = job
        self.setup = setup
        self.steps: dict[str, Callable[[Any], None]] = {}  # in definition order: the module's order
        self._stopping = threading.Event()

    def test(self, step: Callable[[Any], None]) -> Callable[[], None]:
        """A step, and the test that reports it (same name and docstring, no fixtures)."""
        self.steps[step.__name__] = step

        @wraps(step)
        def report() -> None:
            outcomes = self.outcomes()
            if step.__name__ not in outcomes:
                raise RuntimeError(f"{self.job} was started without {step.__name__}: run the module's tests together")
            error = outcomes[step.__name__]
            if error is not None:
                raise error

        del report.__wrapped__  # pytest would read the step's parameters as fixtures
        return report

    def start(self, selected: Iterable[str] | None = None) -> None:
        """Start the job with the selected tests' steps (all when None)."""
        JOBS.start(self.job, self._run, None if selected is None else set(selected))

    def outcomes(self) -> dict[str, BaseException | None]:
        """What each step raised (None: it passed): waits for the job, and runs every step if nobody
        started it."""
        return JOBS.result(self.job, self._run, None)

    def stop(self) -> None:
        """Run no further step, and wait for the one running (before the emulator under it stops)."""
        self._stopping.set()
        started = JOBS.started(self.job)
        if started is not None:
            started.exception()  # waits; what it raised reaches its tests, not the session's end

    def _run(self, selected: set[str] | None) -> dict[str, BaseException | None]:
        names = [name for name in self.steps if selected is None or name in selected]
        try:
            context = self.setup()
        except BaseException as error:  # noqa: BLE001 - skip or failure of the set-up: every step reports it
            return dict.fromkeys(self.steps, error)
        outcomes: dict[str, BaseException | None] = {}
        for name in names:
            if self._stopping.is_set():
                outcomes[name] = Stopped(f"{self.job}: the session ended before {name} ran")
                continue
            try:
                self.steps[name](context)
                outcomes[name] = None
            except BaseException as error:  # noqa: BLE001 - the test re-raises it
                outcomes[name] = error
        return outcomes
