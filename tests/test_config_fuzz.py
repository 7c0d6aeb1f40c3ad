"""Fuzzing the environment files: whatever a mutation of a shipped file does, loading ends in the
config or in one `ConfigError` line naming the file, never in another exception (a traceback).

The mutations are what hands and tools do to files: delete, duplicate or swap lines, cut the file
short, change a value's type, nest a value, insert arbitrary Unicode (control characters, quotes,
brackets, template sequences). The fast suite runs a few hundred examples of loading; the full
suite (`slow` marker) also builds the stacks of each mutant that loads, so a value the loader
accepts cannot break the build (a jsii error is a traceback to the user).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modules.core.errors import REPORTED_MAX_ERRORS, ConfigError
from modules.environment import load_environments
from tests.harness.project import ENVIRONMENTS_DIR

FILES = ("dev.hcl", "stage.hcl", "prod.hcl", "shared.hcl")
# Characters that break parsers and messages: controls, quotes, brackets, HCL and template syntax.
NASTY = st.sampled_from(['"', "'", "\\", "{", "}", "[", "]", "=", "\n", "\t", "\r", "\x00", "\x1b", "\u2028",
                         "${", "%{", "$${", "#", "//", "/*", "<<EOT\n", "\ufeff", "é", "漢", "🙂", " ", ","])
TEXT = st.one_of(NASTY, st.text(min_size=1, max_size=12))


@st.composite
def mutation(draw: st.DrawFn) -> tuple[str, bytes]:
    """(file name, mutated content) of one shipped file."""
    name = draw(st.sampled_from(FILES))
    lines = (ENVIRONMENTS_DIR / name).read_text().split("\n")
    kind = draw(st.sampled_from(["delete", "duplicate", "swap", "truncate", "retype", "nest", "insert", "bytes"]))
    index = draw(st.integers(0, len(lines) - 1))
    if kind == "delete":
        del lines[index]
    elif kind == "duplicate":
        lines.insert(index, lines[index])
    elif kind == "swap":
        other = draw(st.integers(0, len(lines) - 1))
        lines[index], lines[other] = lines[other], lines[index]
    elif kind == "truncate":
        text = "\n".join(lines)
        return name, text[: draw(st.integers(0, len(text)))].encode()
    elif kind == "bytes":  # what a wrong editor encoding or a binary paste leaves
        data = "\n".join(lines).encode()
        at = draw(st.integers(0, len(data)))
        return name, data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at:]
    elif kind in ("retype", "nest") and "=" in lines[index]:
        key, _, value = lines[index].partition("=")
        if kind == "retype":
            value = draw(st.sampled_from(['"7"', "7", "true", "null", "[]", "{}", '["a", 1]', "-1", "1e400",
                                          "99999999999999999999", '"' + "x" * 300 + '"']))
        else:
            value = draw(st.sampled_from([f"[{value}]", f"{{ a = {value} }}", f"[[[{value}]]]"]))
        lines[index] = f"{key}= {value}"
    else:
        line = lines[index]
        at = draw(st.integers(0, len(line)))
        lines[index] = line[:at] + draw(TEXT) + line[at:]
    return name, "\n".join(lines).encode()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of `environments/` that each example changes one file of, then puts back."""
    directory = tmp_path_factory.mktemp("fuzz") / "environments"
    directory.mkdir()
    for file in FILES:
        shutil.copy(ENVIRONMENTS_DIR / file, directory / file)
    return directory


def load_mutant(directory: Path, name: str, content: bytes) -> object | None:
    """The loaded environments, or None after a ConfigError of one line per error, each naming the file."""
    path = directory / name
    path.write_bytes(content)
    try:
        return load_environments(directory)
    except ConfigError as error:
        for one in error.errors:
            message = str(one)
            assert "\n" not in message and "\r" not in message, message
            assert one.file is not None and one.file.endswith((".hcl", directory.name)), message
            assert len(message) < 2000, message
        assert len(str(error).splitlines()) == min(len(error.errors), REPORTED_MAX_ERRORS + 1), str(error)
        return None
    finally:
        shutil.copy(ENVIRONMENTS_DIR / name, path)


FAST = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FAST
@given(mutation())
def test_a_mutated_file_loads_or_fails_with_one_line_per_error_naming_the_file(folder: Path, case: tuple[str, bytes]) -> None:
    load_mutant(folder, *case)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutation())
def test_a_mutated_file_that_loads_also_builds(folder: Path, case: tuple[str, bytes]) -> None:
    from modules.app import build_app
    from modules.core.target import Target

    environments = load_mutant(folder, *case)
    if environments is not None:
        with tempfile.TemporaryDirectory(prefix="fuzz-build-") as outdir:
            build_app(environments, target=Target(), outdir=outdir)  # type: ignore[arg-type]
