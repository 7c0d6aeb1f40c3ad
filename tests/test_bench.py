"""The benchmark's generated environments (bench/synth.py) are valid configurations."""

from __future__ import annotations

from bench.synth import generate_environments
from modules.environment import load_environments


def test_generated_copies_load_and_leave_account_settings_to_their_original(tmp_path):
    environments = load_environments(generate_environments(3, tmp_path / "environments"))
    names = [e.name for e in environments.environments]
    assert sorted(names) == sorted(f"{base}{n}" for base in ("dev", "stage", "prod") for n in ("", "2", "3"))
    owners = {(e.account_id, e.region) for e in environments.environments if e.api.account_cloudwatch_role}
    assert len(owners) == 3
    assert len({e.network.cidr for e in environments.environments}) == 9
