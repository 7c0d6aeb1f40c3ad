"""Every error of the environment files at once, one line each, values written as HCL (issue 24).

A newcomer turning a copy of an environment into production needed six synth runs, one message each;
values printed as Python (`got False`). The format of one line is README "When a file is wrong".
"""

from __future__ import annotations

import enum
from pathlib import Path

import pytest

from modules.core.errors import ConfigError, shown
from modules.environment import load_environments, outside_promotion
from tests.harness.edits import append, edit, load_error


def lines(error: ConfigError, directory: Path) -> list[str]:
    """The error's lines, with the temporary folder left out."""
    return [line.replace(f"{directory}/", "") for line in str(error).splitlines()]


def test_a_file_with_three_errors_gives_three_lines(environments_copy):
    # Three kinds in three places: a value outside an enum (network), a value a check refuses
    # (database, RDS allows 1..35 days of backups), an unknown key (top level).
    edit(environments_copy, "dev.hcl", '"single"', '"sometimes"')
    edit(environments_copy, "dev.hcl", "backup_retention_days     = 7", "backup_retention_days     = 0")
    append(environments_copy, "dev.hcl", 'regoin = "eu-west-1"')
    error = load_error(environments_copy)
    assert sorted(lines(error, environments_copy)) == sorted([
        "dev.hcl: regoin is not a known key (did you mean 'region'?); allowed keys: account_id, api, "
        "assume_role_arn, backend, bucket_suffix, cicd, database, dns, frontend, name, name_prefix, network, "
        "production, region",
        'dev.hcl: network.nat_gateways must be one of "none", "single", "per_az", got "sometimes"',
        "dev.hcl: database.backup_retention_days must be 1..35, got 0",
    ])


def test_every_production_rule_a_copied_environment_breaks_is_reported_in_one_run(environments_copy):
    # The case: dev copied to a production environment of a new account. Each of these
    # lines used to be one run of its own.
    qa = (environments_copy / "dev.hcl").read_text()
    qa = qa.replace("production = false", "production = true").replace("222222222222", "555555555555")
    (environments_copy / "qa.hcl").write_text(qa.replace('"10.10.0.0/16"', '"10.50.0.0/16"'))
    edit(environments_copy, "shared.hcl", 'production_accounts = ["444444444444"]',
         'production_accounts = ["444444444444", "555555555555"]')
    found = lines(load_error(environments_copy), environments_copy)
    assert sorted(found) == sorted([
        "qa.hcl: network.prevent_destroy must be true when production = true, got false",
        "qa.hcl: frontend.prevent_destroy must be true when production = true, got false",
        "qa.hcl: database.multi_az must be true when production = true, got false",
        "qa.hcl: database.prevent_destroy must be true when production = true, got false",
        "qa.hcl: database.backup_replication_region must be a second region when production = true (the "
        "automated backups are copied there), got null",
        "qa.hcl: api.prevent_destroy must be true when production = true, got false",
        "qa.hcl: cicd.prevent_destroy must be true when production = true, got false",
    ])


def test_errors_in_two_files_are_reported_together(environments_copy):
    edit(environments_copy, "dev.hcl", "az_count                = 2", 'az_count                = "two"')
    edit(environments_copy, "stage.hcl", 'account_id = "333333333333"', 'account_id = "3333"')
    found = lines(load_error(environments_copy), environments_copy)
    assert 'dev.hcl: network.az_count must be a whole number, got "two"' in found
    assert 'stage.hcl: account_id must be a 12-digit AWS account id in quotes, got "3333"' in found


def test_errors_stop_at_twenty_lines_and_say_how_many_more(environments_copy):
    # 25 unknown keys: the first 20 lines, then one line counting the rest (README: the cap is 20).
    append(environments_copy, "dev.hcl", "\n".join(f"unknown_{n:02} = {n}" for n in range(25)))
    found = lines(load_error(environments_copy), environments_copy)
    assert len(found) == 21
    assert all(line.startswith("dev.hcl: unknown_") for line in found[:20])
    assert found[20] == "... and 5 more errors (the first 20 are shown: fix them and run again)"


class Size(enum.Enum):
    SMALL = "small"


def test_values_are_shown_in_hcl_form():
    # What an environment file would write (HCL native syntax, Terraform's language docs).
    assert shown(False) == "false" and shown(True) == "true" and shown(None) == "null"
    assert shown(7) == "7" and shown(1.5) == "1.5"
    assert shown("text") == '"text"'
    assert shown('say "hi"\\now\n') == r'"say \"hi\"\\now\n"'
    assert shown(("a", "b")) == '["a", "b"]' and shown([]) == "[]"
    assert shown({"LOG_LEVEL": "debug", "with space": 1}) == '{ LOG_LEVEL = "debug", "with space" = 1 }'
    assert shown(Size.SMALL) == '"small"'
    assert shown("\x1b") == '"\\u001b"'


def test_a_long_value_is_cut_with_its_length():
    assert shown("x" * 100) == '"' + "x" * 59 + '... (100 characters)'


def test_a_list_value_in_a_message_is_hcl(environments_copy):
    append(environments_copy, "shared.hcl", 'promotion_order = ["dev", "stage", "stage"]')
    assert lines(load_error(environments_copy), environments_copy) == [
        'shared.hcl: promotion_order must be a list of distinct environment names, got ["dev", "stage", "stage"]']


def test_the_cross_environment_checks_see_every_file_when_one_is_chosen(environments_copy):
    # ENVIRONMENTS=qa reads dev.hcl too: its range is taken (also through main.py: test_synth_messages.py).
    qa = (environments_copy / "dev.hcl").read_text().replace("222222222222", "555555555555")
    (environments_copy / "qa.hcl").write_text(qa)
    with pytest.raises(ConfigError) as caught:
        load_environments(environments_copy, ("qa",))
    assert lines(caught.value, environments_copy) == [
        'qa.hcl: network.cidr must not overlap other environments (VPCs may be peered or share a transit '
        'gateway), got "10.10.0.0/16" which overlaps dev.hcl\'s "10.10.0.0/16"']


def test_an_environment_outside_promotion_order_is_named_in_a_warning(environments_copy):
    qa = (environments_copy / "dev.hcl").read_text().replace("222222222222", "555555555555")
    (environments_copy / "qa.hcl").write_text(qa.replace('"10.10.0.0/16"', '"10.50.0.0/16"'))
    assert outside_promotion(load_environments(environments_copy, ("dev",))) == []
    warnings = outside_promotion(load_environments(environments_copy))
    assert len(warnings) == 1 and warnings[0].startswith(
        "qa.hcl: qa is not in promotion_order (dev -> stage -> prod) in shared.hcl")
