"""The user documents' links and commands point at things that exist: a heading for every `#anchor`,
a file for every relative link, a Makefile target for every `make <target>` the README names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.harness.project import PROJECT

DOCUMENTS = ["README.md", "CONTRIBUTING.md", "CHANGELOG.md"]


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but hyphens and underscores dropped,
    spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"(?ms)^```.*?^```", "", path.read_text())
    return {anchor(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def links(path: Path) -> list[str]:
    text = re.sub(r"(?ms)^```.*?^```", "", path.read_text())
    return re.findall(r"\]\(([^)\s]+)\)", text)


def test_anchor_matches_githubs_rule():
    assert anchor("Publishing the frontend (`deploy-frontend`)") == "publishing-the-frontend-deploy-frontend"
    assert anchor("On call: what to open first") == "on-call-what-to-open-first"


def broken_links(path: Path) -> list[str]:
    broken = []
    for link in links(path):
        if link.startswith(("http://", "https://", "mailto:")):
            continue
        target, _, fragment = link.partition("#")
        document = path if not target else (path.parent / target)
        if not document.exists():
            broken.append(link)
        elif fragment and document.suffix == ".md" and fragment not in anchors(document):
            broken.append(link)
    return broken


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_link_resolves(name):
    assert broken_links(PROJECT / name) == []


def test_every_make_target_the_readme_names_exists():
    makefile = (PROJECT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, re.M))
    named = set(re.findall(r"`make (?:--silent )?([a-z][\w-]*)", (PROJECT / "README.md").read_text()))
    named |= set(re.findall(r"^make (?:--silent )?([a-z][\w-]*)", (PROJECT / "README.md").read_text(), re.M))
    assert named, "no make commands found: the pattern is broken"
    assert sorted(named - targets) == []


def test_rejects_a_link_to_a_missing_heading_or_file(tmp_path):
    """The check above can fail: a missing heading and a missing file are caught."""
    page = tmp_path / "page.md"
    page.write_text("## Here\n\n[ok](#here) [gone](#elsewhere) [file](missing.md) [also ok](page.md#here)\n")
    assert broken_links(page) == ["#elsewhere", "missing.md"]
    assert len(links(PROJECT / "README.md")) > 20


def test_the_readme_names_every_delivery_command_and_the_layout_lists_them():
    """The issue's drift: the layout listed one of eleven commands. Each subcommand of
    `python -m delivery` is in README "Commands" and in CONTRIBUTING's layout."""
    from delivery.__main__ import parser

    (subcommands,) = [action for action in parser()._actions if action.dest == "command"]
    names = sorted(subcommands.choices)  # type: ignore[arg-type]
    assert len(names) >= 11
    readme = (PROJECT / "README.md").read_text()
    table = readme.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    assert [name for name in names if not re.search(rf"`{re.escape(name)}\b", table)] == []
    layout = (PROJECT / "CONTRIBUTING.md").read_text().split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    listed = layout.split("delivery/", 1)[1].split("Jenkinsfile", 1)[0]
    assert [name for name in names if not re.search(rf"\b{re.escape(name)}\b", listed)] == []
