"""tests/harness/scenarios.py: a module's steps run on a background job, each reported by its test."""

from __future__ import annotations

import traceback
import uuid

import pytest

from tests.harness.scenarios import Scenarios, Stopped


def _scenarios(setup=lambda: []) -> Scenarios:  # type: ignore[no-untyped-def]
    return Scenarios(f"scenarios-{uuid.uuid4().hex}", setup)


def test_steps_run_in_order_on_one_context_and_a_failure_is_raised_by_its_own_test():
    scenarios = _scenarios()

    @scenarios.test
    def test_first(context):
        context.append("first")

    @scenarios.test
    def test_second(context):
        assert context == ["nothing"], "the step's own message"

    @scenarios.test
    def test_third(context):
        context.append("third")
        assert context == ["first", "third"]

    scenarios.start()
    test_first()
    test_third()  # after a failed step, the next ones still run, as pytest runs the next test
    with pytest.raises(AssertionError, match="the step's own message") as failed:
        test_second()
    assert any(frame.name == "test_second" for frame in traceback.extract_tb(failed.value.__traceback__))
    assert test_second.__name__ == "test_second"


def test_the_test_takes_no_fixture_and_keeps_the_docstring():
    scenarios = _scenarios()

    @scenarios.test
    def test_documented(environment):
        """What it checks."""

    import inspect

    assert list(inspect.signature(test_documented).parameters) == []
    assert test_documented.__doc__ == "What it checks."


def test_a_failed_set_up_or_a_skip_reaches_every_test():
    def setup():  # type: ignore[no-untyped-def]
        pytest.skip("terraform is not on PATH")

    scenarios = _scenarios(setup)

    @scenarios.test
    def test_one(context):
        pass

    @scenarios.test
    def test_two(context):
        pass

    scenarios.start(["test_two"])
    for test in (test_one, test_two):
        with pytest.raises(pytest.skip.Exception, match="terraform is not on PATH"):
            test()


def test_only_the_selected_steps_run_and_a_stopped_job_runs_no_further_step():
    scenarios = _scenarios()
    ran: list[str] = []

    @scenarios.test
    def test_one(context):
        ran.append("one")
        scenarios._stopping.set()  # the session ends while this step runs (stop() would wait for it)

    @scenarios.test
    def test_two(context):
        ran.append("two")

    @scenarios.test
    def test_three(context):
        ran.append("three")

    scenarios.start(["test_one", "test_three"])
    test_one()
    with pytest.raises(Stopped, match="before test_three ran"):
        test_three()
    assert ran == ["one"]
    with pytest.raises(RuntimeError, match="without test_two"):
        test_two()
