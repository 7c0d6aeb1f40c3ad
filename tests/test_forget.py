"""modules/core/forget.py: `removed` blocks name the resources CDKTF addressed."""

from __future__ import annotations

import pytest

from modules.core.forget import logical_id

STACKS = ("dev-network", "prod-api", "stage-frontend", "shared-cicd")


@pytest.mark.parametrize("stack_name", STACKS)
def test_logical_id_is_the_name_cdktf_gave_every_resource(synth, stack_name):
    stack = synth.stack(stack_name)
    checked = 0
    for resources in stack.json["resource"].values():
        for name, config in resources.items():
            path = config["//"]["metadata"]["path"].split("/", 1)[1]
            assert logical_id(path) == name
            checked += 1
    assert checked > 10
