"""Snapshots of every synthesized stack: a tripwire for any change to the JSON.

A construct id is part of each resource's Terraform address; renaming one replaces
the resource in every account. When a snapshot changes, read the diff, then run
`make snapshot-update` on purpose and say why in the commit.
"""

from __future__ import annotations

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from tests.harness.project import STACKS


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("stack", STACKS)
def test_stack_matches_snapshot(synth, snapshot_json, stack):
    assert synth.stacks[stack] == snapshot_json
