"""The `api { ... }` block and `registry { ... }`: what loads, and every bad input stopped before synthesis."""

from __future__ import annotations

from pathlib import Path

import pytest

from modules.api.config import Authorization, CpuArchitecture, LoggingLevel
from modules.core.errors import ConfigError
from modules.database.access import DatabaseAccess
from modules.environment import load_environments


def edit(directory: Path, name: str, old: str, new: str, count: int = 1) -> None:
    path = directory / name
    text = path.read_text()
    assert text.count(old) >= count, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new, count))


def load_error(directory: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_environments(directory)
    return caught.value


def test_services_are_labelled_blocks_typed_and_named_by_their_label(environments):
    dev = environments.get("dev").api
    assert [s.name for s in dev.service] == ["service1", "service2"]
    service1, service2 = dev.service
    assert (service1.path_prefix, service1.container_port) == ("service1", 8080)
    assert service1.authorization is Authorization.NONE and service2.authorization is Authorization.AWS_IAM
    assert service2.cpu_architecture is CpuArchitecture.ARM64
    assert service2.secrets == {"PAYMENTS_API_KEY": "payments-api-key"}
    assert dev.logging_level is LoggingLevel.INFO
    assert dev.migrations.image_repository == "webapp/migrations"
    assert environments.shared.registry.account_id == "111111111111"


def test_only_prod_has_a_cache_and_only_dev_uses_spot(environments):
    assert [e.api.caching for e in environments.environments] == [False, True, False]
    assert [e.api.fargate_spot_weight for e in environments.environments] == [3, 0, 0]


def test_rejects_ecs_exec_in_a_vpc_without_nat(environments_copy):
    edit(environments_copy, "dev.hcl", 'nat_gateways            = "single"', 'nat_gateways            = "none"')
    edit(environments_copy, "dev.hcl", "api {\n", "api {\n  enable_execute_command = true\n")
    error = load_error(environments_copy)
    assert error.file.endswith("dev.hcl") and error.key == "api.enable_execute_command"
    assert 'false when network.nat_gateways = "none"' in str(error)


def test_ecs_exec_loads_where_the_vpc_has_nat(environments_copy):
    edit(environments_copy, "dev.hcl", "api {\n", "api {\n  enable_execute_command = true\n")
    assert load_environments(environments_copy).get("dev").api.enable_execute_command


def test_rejects_internet_egress_in_a_vpc_without_nat(environments_copy):
    edit(environments_copy, "dev.hcl", 'nat_gateways            = "single"', 'nat_gateways            = "none"')
    error = load_error(environments_copy)  # dev.hcl's service2 asks for it
    assert error.file.endswith("dev.hcl") and error.key == "api.service[1].internet_egress_https"
    assert 'false when network.nat_gateways = "none"' in str(error)


def test_internet_egress_is_off_unless_a_service_asks(environments):
    for environment in environments.environments:
        assert [s.internet_egress_https for s in environment.api.service] == [False, True]


def test_rejects_internet_egress_that_is_not_a_bool(environments_copy):
    edit(environments_copy, "dev.hcl", "internet_egress_https = true", 'internet_egress_https = "yes"')
    error = load_error(environments_copy)
    assert error.key.endswith("internet_egress_https") and "true or false" in str(error)


def test_rejects_waf_allow_large_bodies_that_is_not_a_bool(environments_copy):
    edit(environments_copy, "dev.hcl", "api {\n", 'api {\n  waf_allow_large_bodies = "yes"\n')
    error = load_error(environments_copy)
    assert error.key == "api.waf_allow_large_bodies" and "true or false" in str(error)


def test_rejects_the_former_nlb_access_log_retention_with_the_upgrade_step(environments_copy):
    edit(environments_copy, "dev.hcl", "api {\n", "api {\n  nlb_access_log_retention_days = 30\n")
    error = load_error(environments_copy)
    assert error.key == "api.nlb_access_log_retention_days"
    assert "dev.hcl: api.nlb_access_log_retention_days" in str(error)
    assert "only for TLS listeners" in str(error) and "remove the key" in str(error)


def test_rejects_a_path_prefix_used_twice(environments_copy):
    edit(environments_copy, "dev.hcl", 'path_prefix      = "service2"', 'path_prefix      = "service1"')
    error = load_error(environments_copy)
    assert error.file.endswith("dev.hcl")
    assert error.key == "api.service[1].path_prefix"
    assert '"service1" is already the path prefix of service "service1"' in str(error)


def test_rejects_a_port_used_twice(environments_copy):
    edit(environments_copy, "stage.hcl", "container_port   = 8081", "container_port   = 8080")
    error = load_error(environments_copy)
    assert error.file.endswith("stage.hcl") and error.key == "api.service[1].container_port"
    assert '8080 is already the port of service "service1"' in str(error)


def test_rejects_cpu_and_memory_fargate_does_not_allow_together(environments_copy):
    edit(environments_copy, "prod.hcl", "memory_mib       = 2048", "memory_mib       = 512")
    error = load_error(environments_copy)
    assert error.key == "api.service[0].memory_mib"
    assert "must be a size Fargate allows with cpu_units = 1024 (2048..8192 in steps of 1024), got 512" in str(error)


def test_rejects_a_cpu_size_fargate_does_not_offer(environments_copy):
    edit(environments_copy, "prod.hcl", "cpu_units        = 1024", "cpu_units        = 1000")
    error = load_error(environments_copy)
    assert error.key == "api.service[0].cpu_units" and "one of Fargate's CPU sizes" in str(error)


def test_rejects_min_count_above_max_count(environments_copy):
    edit(environments_copy, "prod.hcl", "min_count        = 3", "min_count        = 13")
    error = load_error(environments_copy)
    # desired_count 3 is then outside min_count..max_count too: both lines are reported.
    assert str(error.errors[0]).endswith("api.service[0].min_count must be at most max_count (12), got 13")


def test_rejects_desired_count_outside_min_and_max(environments_copy):
    edit(environments_copy, "prod.hcl", "desired_count    = 3", "desired_count    = 20")
    assert load_error(environments_copy).key == "api.service[0].desired_count"


def test_rejects_a_secret_name_that_does_not_exist_in_config(environments_copy):
    edit(environments_copy, "dev.hcl", '{ PAYMENTS_API_KEY = "payments-api-key" }', '{ PAYMENTS_API_KEY = "payment-key" }')
    error = load_error(environments_copy)
    assert error.key == "api.service[1].secrets.PAYMENTS_API_KEY"
    assert 'names the secret "payment-key", which is not in api.secrets (known: "payments-api-key")' in str(error)


def test_rejects_a_secret_json_key_reference_to_an_unknown_secret(environments_copy):
    edit(environments_copy, "dev.hcl", '"payments-api-key" }', '"other:token" }')
    assert 'names the secret "other"' in str(load_error(environments_copy))


def test_rejects_throttling_rate_above_burst(environments_copy):
    edit(environments_copy, "prod.hcl", "throttling_rate_limit         = 500", "throttling_rate_limit         = 1500")
    error = load_error(environments_copy)
    assert error.key == "api.throttling_rate_limit"
    assert "at most throttling_burst_limit (1000 requests), got 1500.0" in str(error)


def test_rejects_scale_in_cooldown_not_longer_than_scale_out(environments_copy):
    edit(environments_copy, "dev.hcl", "    max_count        = 2\n",
         "    max_count        = 2\n    scale_out_cooldown_seconds = 300\n    scale_in_cooldown_seconds = 120\n")
    error = load_error(environments_copy)
    assert error.key == "api.service[0].scale_in_cooldown_seconds"
    assert "longer than scale_out_cooldown_seconds (300)" in str(error)


def test_rejects_a_variable_the_database_tier_sets(environments_copy):
    edit(environments_copy, "dev.hcl", '{ LOG_LEVEL = "debug" }', '{ DB_HOST = "localhost" }')
    error = load_error(environments_copy)
    assert error.key == "api.service[0].environment" and "DB_HOST" in str(error)


def test_rejects_a_root_user(environments_copy):
    edit(environments_copy, "dev.hcl", '    image_tag        = "1.0.0"\n', '    image_tag        = "1.0.0"\n    user = "0"\n')
    error = load_error(environments_copy)
    assert error.key == "api.service[0].user" and "non-root" in str(error)


def test_rejects_an_image_digest_that_is_not_sha256(environments_copy):
    edit(environments_copy, "dev.hcl", '    image_tag        = "1.0.0"\n',
         '    image_tag        = "1.0.0"\n    image_digest = "sha256:abc"\n')
    assert load_error(environments_copy).key == "api.service[0].image_digest"


def test_rejects_a_cache_size_api_gateway_does_not_offer(environments_copy):
    edit(environments_copy, "prod.hcl", "cache_cluster_size_gib        = 0.5", "cache_cluster_size_gib        = 2")
    error = load_error(environments_copy)
    assert error.key == "api.cache_cluster_size_gib" and "0.5, 1.6, 6.1" in str(error)


def test_rejects_the_reserved_service_name(environments_copy):
    edit(environments_copy, "dev.hcl", 'service "service2"', 'service "migrations"')
    assert load_error(environments_copy).key == "api.service[1].name"


def test_rejects_an_unknown_key_in_a_service_block(environments_copy):
    edit(environments_copy, "dev.hcl", "container_port   = 8080", "container_prot   = 8080")
    error = load_error(environments_copy)
    assert error.key == "api.service[0].container_prot" and "did you mean 'container_port'?" in str(error)


def test_rejects_a_service_name_that_makes_a_target_group_name_too_long(environments_copy):
    edit(environments_copy, "stage.hcl", 'service "service2"', 'service "orders-and-invoicing"')
    error = load_error(environments_copy)
    assert error.file.endswith("stage.hcl") and error.key == "api.service[1].name"
    assert 'target group name "webapp-stage-orders-and-invoicing" (33 characters)' in str(error)
    assert "AWS allows 1..32" in str(error)


def test_rejects_production_without_deletion_protection(environments_copy):
    edit(environments_copy, "prod.hcl", "prevent_destroy               = true", "prevent_destroy               = false")
    error = load_error(environments_copy)
    assert error.file.endswith("prod.hcl")
    assert str(error).endswith("api.prevent_destroy must be true when production = true, got false")


def test_rejects_an_api_without_services(environments_copy):
    path = environments_copy / "dev.hcl"
    text = path.read_text()
    start = text.index('  service "service1"')
    end = text.index("  # Flyway")
    path.write_text(text[:start] + text[end:])
    error = load_error(environments_copy)
    assert error.key == "api.service" and "is required" in str(error)


def test_rejects_a_shared_file_without_the_registry(environments_copy):
    path = environments_copy / "shared.hcl"
    text = path.read_text()
    path.write_text(text[: text.index("registry {")])
    error = load_error(environments_copy)
    assert error.file.endswith("shared.hcl") and error.key == "registry" and "is required" in str(error)


def test_rejects_a_registry_account_that_is_not_twelve_digits(environments_copy):
    edit(environments_copy, "shared.hcl", 'account_id = "111111111111"\n  region     = "eu-west-1"\n}\n',
         'account_id = "1111"\n  region     = "eu-west-1"\n}\n')
    error = load_error(environments_copy)
    assert error.key == "registry.account_id"
    assert "12-digit" in str(error)


def test_services_declare_their_database_access(environments):
    for environment in environments.environments:
        assert [s.database_access for s in environment.api.service] == [DatabaseAccess.READ_WRITE] * 2
        assert environment.api.database_logins() == {
            "svc_service1": DatabaseAccess.READ_WRITE, "svc_service2": DatabaseAccess.READ_WRITE}


def test_database_access_defaults_to_none(environments_copy):
    edit(environments_copy, "dev.hcl", '    database_access  = "read_write"\n', "")
    service1 = load_environments(environments_copy).get("dev").api.service[0]
    assert service1.database_access is DatabaseAccess.NONE


@pytest.mark.parametrize("value", ["true", '"admin"', '"readwrite"'])
def test_rejects_a_database_access_that_is_not_a_level(environments_copy, value):
    edit(environments_copy, "dev.hcl", 'database_access  = "read_write"', f"database_access  = {value}")
    error = load_error(environments_copy)
    assert error.file.endswith("dev.hcl") and error.key == "api.service[0].database_access"
    assert 'must be one of "read_write", "read_only", "none"' in str(error)


@pytest.mark.parametrize("value", ['"Public"', '"pg_catalog"', '"1app"'])
def test_rejects_a_migration_schema_postgresql_would_need_quoted_or_reserves(environments_copy, value):
    edit(environments_copy, "dev.hcl", 'image_tag        = "10.20.1"', f'image_tag        = "10.20.1"\n    schema = {value}')
    error = load_error(environments_copy)
    assert error.key == "api.migrations.schema"

@pytest.mark.parametrize("name, part", [("gateway", "Gateway"), ("cluster", "Cluster"),
                                        ("secret-payments", "SecretPayments")])
def test_rejects_a_service_named_like_a_part_of_the_api_tier(environments_copy, name, part):
    edit(environments_copy, "dev.hcl", 'service "service1"', f'service "{name}"')
    error = load_error(environments_copy)
    assert str(error).endswith(
        f'dev.hcl: api.service[0].name must be a name whose construct id ("{part}") the API tier does not use for '
        'one of its own parts (taken: "gateway", "cluster", "load-balancer", "migrations", "stage", ... and names '
        f'starting "secret-"), got "{name}"')


def test_the_api_tiers_own_part_ids_are_all_reserved(environments, tmp_path):
    """Builds dev's stacks and lists the children of the scopes that hold one construct per service:
    every child that is not a service must be reserved, so no service name can collide with it."""
    from cdktf import App

    from modules.api.config import API_PART_ID_PREFIX, API_PART_IDS
    from modules.app import EnvironmentBuilder
    from modules.core.target import Target

    dev = environments.get("dev")
    builder = EnvironmentBuilder(App(outdir=str(tmp_path)), environments, dev, Target())
    api = builder.build()["api"]
    services = {service.construct_id for service in dev.api.service}
    parts = {child.node.id for scope in (api, api.gateway) for child in scope.node.children}
    unreserved = sorted(part for part in parts - services
                        if part not in API_PART_IDS and not API_PART_ID_PREFIX.match(part))
    assert unreserved == []


def test_rejects_more_environment_than_a_task_definition_holds(environments_copy):
    # ECS: a task definition is at most 64 KiB (service quotas); 20 values of 2,000 characters pass each
    # string's own bound and together exceed the service's share.
    variables = ", ".join(f'V{index} = "{"x" * 2000}"' for index in range(20))
    edit(environments_copy, "dev.hcl", 'environment   = { LOG_LEVEL = "debug" }', f"environment   = {{ {variables} }}")
    assert str(load_error(environments_copy)).endswith(
        "dev.hcl: api.service[0].environment must be at most 32768 bytes of names and values (an ECS task "
        "definition is at most 64 KiB, and the collector sidecar, secrets and settings share it): put large values "
        "in a secret, got 20 variables of 40050 bytes")


def test_rejects_more_services_than_the_load_balancer_has_listeners(environments_copy):
    services = "\n".join(
        f'service "s{index}" {{\n path_prefix = "s{index}"\n container_port = {9000 + index}\n'
        f' image_repository = "webapp/s{index}"\n image_tag = "1"\n}}' for index in range(51))
    edit(environments_copy, "dev.hcl", '  service "service1" {', services + '\n  service "service1" {')
    assert str(load_error(environments_copy)).endswith(
        "dev.hcl: api.service must be 1..50 service \"<name>\" { ... } blocks (each has a listener on the one NLB, "
        "which takes at most 50), got 53 services")
