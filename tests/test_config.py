"""Environment files: what loads, and every kind of bad input stopped with file, key, value, allowed."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from modules.core.settings import BackendType, StateLocking
from modules.environment import load_environments
from modules.network.config import NatGateways
from tests.harness.edits import append, edit, load_error


def test_loads_every_environment_into_typed_config(environments):
    names = [e.name for e in environments.environments]
    assert names == ["dev", "prod", "stage"]
    dev, prod, stage = environments.environments
    assert dev.network.nat_gateways is NatGateways.SINGLE
    assert prod.network.nat_gateways is NatGateways.PER_AZ
    assert prod.production and not dev.production
    assert (dev.network.az_count, prod.network.az_count) == (2, 3)
    assert stage.backend.locking is StateLocking.BOTH
    assert dev.backend.type is BackendType.S3
    assert environments.shared.state.bucket == "webapp-tfstate-111111111111"


def test_config_objects_are_frozen(environments):
    with pytest.raises(AttributeError):
        environments.environments[0].network.az_count = 5  # type: ignore[misc]


def test_subnet_cidrs_are_computed_without_overlap(environments):
    prod = environments.get("prod").network
    cidrs = [c for tier in ("public", "private", "isolated") for c in prod.subnet_cidrs(tier)]
    assert cidrs[:3] == ["10.30.0.0/20", "10.30.16.0/20", "10.30.32.0/20"]
    assert prod.subnet_cidrs("private")[0] == "10.30.64.0/20"
    assert prod.subnet_cidrs("isolated")[0] == "10.30.128.0/20"
    import ipaddress
    networks = [ipaddress.ip_network(c) for c in cidrs]
    assert all(not a.overlaps(b) for i, a in enumerate(networks) for b in networks[i + 1:])


def test_rejects_hcl_syntax_error_with_line(environments_copy):
    edit(environments_copy, "dev.hcl", 'region     = "eu-west-1"', 'region     = ')
    error = load_error(environments_copy)
    assert error.file.endswith("dev.hcl")
    assert re.search(r"HCL syntax error at line \d+, column \d+", str(error)), str(error)


def test_rejects_an_attribute_given_twice_with_both_lines(environments_copy):
    # python-hcl2 keeps the last value silently; Terraform calls this "Attribute redefined".
    edit(environments_copy, "prod.hcl", "  replica_count             = 1",
         "  replica_count             = 1\n  replica_count             = 0")
    error = load_error(environments_copy)
    assert error.file.endswith("prod.hcl")
    assert error.key == "database.replica_count"
    lines = Path(environments_copy / "prod.hcl").read_text().splitlines()
    first = lines.index("  replica_count             = 1") + 1
    assert f"is set twice (lines {first} and {first + 1})" in str(error), str(error)


def test_rejects_a_top_level_attribute_given_twice(environments_copy):
    append(environments_copy, "dev.hcl", 'region = "eu-central-1"')
    error = load_error(environments_copy)
    assert error.key == "region" and "is set twice" in str(error)


def test_rejects_an_object_key_given_twice_quoted_or_not(environments_copy):
    text = (environments_copy / "dev.hcl").read_text()
    old = re.search(r'secrets += \{ PAYMENTS_API_KEY = "payments-api-key" \}', text)
    assert old, "dev.hcl has no service secrets map to edit"
    edit(environments_copy, "dev.hcl", old.group(0),
         old.group(0).replace("}", ', "PAYMENTS_API_KEY" = "payments-api-key" }'))
    error = load_error(environments_copy)
    assert error.key.endswith(".secrets.PAYMENTS_API_KEY") and "is set twice" in str(error), str(error)


def test_rejects_unknown_key_and_suggests_the_near_miss(environments_copy):
    edit(environments_copy, "prod.hcl", "nat_gateways", "nat_gatways")
    error = load_error(environments_copy)
    assert error.file.endswith("prod.hcl")
    assert error.key == "network.nat_gatways"
    assert "did you mean 'nat_gateways'?" in str(error)


def test_rejects_unknown_top_level_key(environments_copy):
    append(environments_copy, "dev.hcl", 'regoin = "eu-west-1"')
    error = load_error(environments_copy)
    assert error.key == "regoin" and "did you mean 'region'?" in str(error)


def test_rejects_wrong_type(environments_copy):
    edit(environments_copy, "dev.hcl", "az_count                = 2", 'az_count                = "two"')
    error = load_error(environments_copy)
    assert str(error).endswith('network.az_count must be a whole number, got "two"')


def test_rejects_bool_where_a_number_is_expected(environments_copy):
    edit(environments_copy, "dev.hcl", "az_count                = 2", "az_count                = true")
    assert "network.az_count must be a whole number, got true" in str(load_error(environments_copy))


def test_rejects_unknown_enum_value_listing_allowed(environments_copy):
    edit(environments_copy, "dev.hcl", '"single"', '"sometimes"')
    error = load_error(environments_copy)
    assert error.key == "network.nat_gateways"
    assert '"none", "single", "per_az"' in str(error) and '"sometimes"' in str(error)


def test_rejects_missing_required_key(environments_copy):
    edit(environments_copy, "dev.hcl", 'account_id = "222222222222"', "")
    error = load_error(environments_copy)
    assert error.key == "account_id" and "is required" in str(error)


def test_rejects_account_id_that_is_not_twelve_digits(environments_copy):
    edit(environments_copy, "dev.hcl", '"222222222222"', '"2222"')
    assert "account_id must be a 12-digit AWS account id" in str(load_error(environments_copy))


def test_rejects_invalid_cidr(environments_copy):
    edit(environments_copy, "dev.hcl", '"10.10.0.0/16"', '"10.10.0.300/16"')
    error = load_error(environments_copy)
    assert error.key == "network.cidr" and '"10.10.0.300/16"' in str(error)


def test_rejects_cidr_with_host_bits(environments_copy):
    edit(environments_copy, "dev.hcl", '"10.10.0.0/16"', '"10.10.1.0/16"')
    assert load_error(environments_copy).key == "network.cidr"


def test_rejects_public_cidr(environments_copy):
    edit(environments_copy, "dev.hcl", '"10.10.0.0/16"', '"8.8.0.0/16"')
    assert "private (RFC 1918)" in str(load_error(environments_copy))


def test_rejects_vpc_larger_than_aws_allows(environments_copy):
    edit(environments_copy, "dev.hcl", '"10.10.0.0/16"', '"10.0.0.0/8"')
    assert "a /16 to /24 network" in str(load_error(environments_copy))


def test_rejects_cidrs_that_overlap_another_environment(environments_copy):
    edit(environments_copy, "stage.hcl", '"10.20.0.0/16"', '"10.10.128.0/17"')
    error = load_error(environments_copy)
    assert error.file.endswith("stage.hcl") and error.key == "network.cidr"
    assert 'overlaps dev.hcl\'s "10.10.0.0/16"' in str(error)


def move_stage_into_devs_account(directory: Path) -> None:
    """Stage beside dev in dev's account, declared in shared.hcl as an account meant to be shared."""
    path = directory / "stage.hcl"
    path.write_text(path.read_text().replace("333333333333", "222222222222"))
    append(directory, "shared.hcl", 'shared_accounts = ["222222222222"]')


def test_rejects_two_environments_setting_one_accounts_api_gateway_role(environments_copy):
    move_stage_into_devs_account(environments_copy)
    error = load_error(environments_copy)
    assert error.file.endswith("stage.hcl") and error.key == "api.account_cloudwatch_role", str(error)
    assert "must be false here or in dev.hcl" in str(error) and "222222222222, eu-west-1" in str(error)


def test_environments_sharing_an_account_load_when_one_sets_the_role(environments_copy):
    move_stage_into_devs_account(environments_copy)
    edit(environments_copy, "stage.hcl", "api {\n", "api {\n  account_cloudwatch_role = false\n")
    environments = load_environments(environments_copy)
    assert environments.get("stage").account_id == environments.get("dev").account_id
    assert not environments.get("stage").api.account_cloudwatch_role and environments.get("dev").api.account_cloudwatch_role


def test_the_same_account_in_another_region_may_set_its_own_role(environments_copy):
    move_stage_into_devs_account(environments_copy)
    edit(environments_copy, "stage.hcl", 'region     = "eu-west-1"', 'region     = "eu-central-1"')
    assert load_environments(environments_copy).get("stage").region == "eu-central-1"


def test_rejects_az_count_the_region_cannot_give(environments_copy):
    edit(environments_copy, "dev.hcl", 'region     = "eu-west-1"', 'region     = "us-west-1"')
    edit(environments_copy, "dev.hcl", "az_count                = 2", "az_count                = 3")
    error = load_error(environments_copy)
    assert error.key == "network.az_count"
    assert "at most 2, the Availability Zones us-west-1 offers, got 3" in str(error)


def test_rejects_zone_names_from_another_region(environments_copy):
    append(environments_copy, "dev.hcl", "")
    edit(environments_copy, "dev.hcl", "az_count                = 2",
         'az_count                = 2\n  availability_zones = ["eu-west-1a", "us-east-1b"]')
    error = load_error(environments_copy)
    assert error.key == "network.availability_zones" and '"us-east-1b"' in str(error)


def test_rejects_unknown_region(environments_copy):
    edit(environments_copy, "dev.hcl", '"eu-west-1"', '"eu-westish-1"')
    error = load_error(environments_copy)
    assert error.key == "region" and "an AWS region" in str(error)


def test_rejects_name_prefix_that_breaks_aws_limits(environments_copy):
    append(environments_copy, "dev.hcl", 'name_prefix = "a-very-long-company-name-for-dev"')
    error = load_error(environments_copy)
    assert error.key == "name_prefix"
    assert "load balancer name" in str(error) or "S3 bucket name" in str(error)
    assert "AWS allows" in str(error)


def test_rejects_state_bucket_name_aws_would_refuse(environments_copy):
    edit(environments_copy, "shared.hcl", "  lock_table", '  bucket = "Webapp_TFState"\n  lock_table')
    error = load_error(environments_copy)
    assert error.file.endswith("shared.hcl") and error.key == "state.bucket"


def test_rejects_duplicate_name_prefix(environments_copy):
    append(environments_copy, "dev.hcl", 'name_prefix = "webapp-x"')
    append(environments_copy, "stage.hcl", 'name_prefix = "webapp-x"')
    assert "already used by dev.hcl" in str(load_error(environments_copy))


def test_rejects_cloud_backend_without_organization(environments_copy):
    append(environments_copy, "dev.hcl", 'backend {\n  type = "cloud"\n}')
    error = load_error(environments_copy)
    assert error.key == "backend.organization"


def test_rejects_state_role_outside_the_state_account(environments_copy):
    edit(environments_copy, "shared.hcl", '  lock_table = "webapp-tfstate-locks"\n',
         '  lock_table = "webapp-tfstate-locks"\n  assume_role_arn = "arn:aws:iam::222222222222:role/state"\n')
    error = load_error(environments_copy)
    assert error.file.endswith("shared.hcl") and error.key == "state.assume_role_arn"
    assert "a role in the state account 111111111111" in str(error)


def test_rejects_registry_in_another_account_without_a_state_role(environments_copy):
    """shared-cicd runs with the registry account's credentials: they need a role in the state account."""
    edit(environments_copy, "shared.hcl", 'registry {\n  account_id = "111111111111"',
         'registry {\n  account_id = "555555555555"')
    error = load_error(environments_copy)
    assert error.file.endswith("shared.hcl") and error.key == "state.assume_role_arn"
    assert "555555555555 is another account" in str(error)


def test_extra_state_principals_must_be_in_the_environments_account(environments_copy):
    append(environments_copy, "dev.hcl",
           'backend {\n  state_principal_arns = ["arn:aws:iam::333333333333:role/admin"]\n}')
    error = load_error(environments_copy)
    assert error.file.endswith("dev.hcl") and error.key == "backend.state_principal_arns"
    assert "principals in this environment's account 222222222222" in str(error)


def test_rejects_extra_state_principals_that_are_not_iam_arns(environments_copy):
    append(environments_copy, "dev.hcl", 'backend {\n  state_principal_arns = ["admin"]\n}')
    assert load_error(environments_copy).key == "backend.state_principal_arns"


def test_rejects_role_arn_that_is_not_an_arn(environments_copy):
    edit(environments_copy, "prod.hcl", '"arn:aws:iam::444444444444:role/webapp-terraform-prod"', '"webapp-prod"')
    assert load_error(environments_copy).key == "assume_role_arn"


def test_rejects_flow_log_retention_cloudwatch_does_not_offer(environments_copy):
    edit(environments_copy, "dev.hcl", "flow_log_retention_days = 30", "flow_log_retention_days = 31")
    assert load_error(environments_copy).key == "network.flow_log_retention_days"


def test_rejects_name_key_because_the_file_name_is_the_name(environments_copy):
    append(environments_copy, "dev.hcl", 'name = "qa"')
    assert "the environment's name is the file name" in str(load_error(environments_copy))


def test_error_message_names_file_key_value_and_allowed(environments_copy):
    edit(environments_copy, "dev.hcl", "az_count                = 2", "az_count                = 7")
    message = str(load_error(environments_copy))
    assert re.fullmatch(r".*environments/dev\.hcl: network\.az_count must be 2\.\.4, got 7", message), message


def test_dns_zone_is_optional_and_typed(environments):
    assert environments.get("dev").dns is None
    assert environments.get("prod").dns.zone_name == "webapp.example.com"


def test_rejects_zone_name_that_is_not_a_dns_name(environments_copy):
    edit(environments_copy, "prod.hcl", '"webapp.example.com"', '"Webapp.Example.com."')
    error = load_error(environments_copy)
    assert error.key == "dns.zone_name" and '"Webapp.Example.com."' in str(error)


@pytest.mark.parametrize("block", ["database", "api"])
def test_the_old_protection_key_names_the_new_one(environments_copy, block):
    """`deletion_protection` (database and api until this version) is `prevent_destroy` in every tier."""
    text = (environments_copy / "stage.hcl").read_text()
    start = text.index(f"\n{block} {{")
    (environments_copy / "stage.hcl").write_text(
        text[:start] + text[start:].replace("prevent_destroy", "deletion_protection", 1))
    error = load_error(environments_copy)
    assert error.file.endswith("stage.hcl") and error.key == f"{block}.deletion_protection"
    assert "was renamed: write prevent_destroy = ..." in str(error)


def test_every_tier_protects_its_state_unless_the_file_says_otherwise():
    """One word and one default: a tier block that leaves `prevent_destroy` out is protected."""
    from modules.api.config import ApiConfig
    from modules.cicd.config import CicdEnvironmentConfig
    from modules.database.config import DatabaseConfig
    from modules.frontend.config import FrontendConfig
    from modules.network.config import NetworkConfig

    for config in (ApiConfig, CicdEnvironmentConfig, DatabaseConfig, FrontendConfig, NetworkConfig):
        (field,) = [f for f in dataclasses.fields(config) if f.name == "prevent_destroy"]
        assert field.default is True, config.__name__
        assert not [f for f in dataclasses.fields(config) if f.name == "deletion_protection"], config.__name__
