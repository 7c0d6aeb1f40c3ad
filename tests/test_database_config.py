"""The `database { ... }` block: what loads, and each bad input stopped before synthesis."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modules.core.errors import ConfigError
from modules.environment import load_environments


def edit(directory: Path, name: str, old: str, new: str) -> None:
    path = directory / name
    text = path.read_text()
    assert old in text, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new, 1))


def set_in_database(directory: Path, name: str, line: str) -> None:
    """Set `key = value` in the file's `database { ... }` block, replacing the key's line if it has one."""
    path = directory / name
    text = path.read_text()
    key = line.split("=", 1)[0].split("{", 1)[0].strip()
    existing = re.compile(rf"^  {re.escape(key)}\s*=.*$", re.MULTILINE)
    if existing.search(text):
        path.write_text(existing.sub(f"  {line}", text, count=1))
    else:
        edit(directory, name, "database {\n", f"database {{\n  {line}\n")


def load_error(directory: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_environments(directory)
    return caught.value


def test_loads_each_environments_database(environments):
    dev, prod, stage = (environments.get(name).database for name in ("dev", "prod", "stage"))
    assert (dev.multi_az, dev.replica_count, dev.prevent_destroy, dev.skip_final_snapshot) == (False, 0, False, True)
    assert (prod.multi_az, prod.replica_count, prod.prevent_destroy, prod.skip_final_snapshot) == (
        True, 1, True, False)
    assert stage.multi_az and stage.replica_count == 1 and stage.prevent_destroy
    assert dev.apply_immediately and not stage.apply_immediately and not prod.apply_immediately
    assert prod.backup_retention_days == 7 and prod.engine_major_version == "17"


def test_replicas_go_to_zones_the_primary_and_its_standby_never_use(environments):
    prod = environments.get("prod")
    zones = prod.network.zone_names(prod.region)
    assert prod.database.replica_zones(zones) == ("eu-west-1c",)
    assert prod.database.max_replicas(3) == 1
    dev = environments.get("dev").database
    assert dev.max_replicas(2) == 1 and dev.replica_zones(("eu-west-1a", "eu-west-1b")) == ()


def test_rejects_a_file_without_a_database_block(environments_copy):
    path = environments_copy / "dev.hcl"
    text = path.read_text()
    start = text.index("database {")
    path.write_text(text[:start] + text[text.index("\n}\n", start) + 3:])
    error = load_error(environments_copy)
    assert error.file.endswith("dev.hcl") and error.key == "database" and "is required" in str(error)


def test_rejects_more_replicas_than_zones_apart_from_primary_and_standby(environments_copy):
    edit(environments_copy, "prod.hcl", "replica_count             = 1", "replica_count             = 2")
    error = load_error(environments_copy)
    assert error.file.endswith("prod.hcl") and error.key == "database.replica_count"
    assert "must be 0..1" in str(error) and "Multi-AZ standby (network.az_count = 3), got 2" in str(error)


def test_rejects_replicas_where_a_single_zone_primary_leaves_no_zone(environments_copy):
    edit(environments_copy, "dev.hcl", "replica_count             = 0", "replica_count             = 2")
    error = load_error(environments_copy)
    assert error.key == "database.replica_count" and "must be 0..1" in str(error)


@pytest.mark.parametrize("days", [0, 36])
def test_rejects_backup_retention_outside_1_to_35(environments_copy, days):
    edit(environments_copy, "prod.hcl", "backup_retention_days     = 7", f"backup_retention_days     = {days}")
    message = str(load_error(environments_copy))
    assert re.fullmatch(rf".*environments/prod\.hcl: database\.backup_retention_days must be 1\.\.35, got {days}",
                        message), message


@pytest.mark.parametrize("key", ["multi_az", "prevent_destroy"])
def test_rejects_a_production_environment_without_its_safeguard(environments_copy, key):
    edit(environments_copy, "prod.hcl", f"{key:<25} = true", f"{key:<25} = false")
    error = load_error(environments_copy)
    assert error.file.endswith("prod.hcl") and error.key == f"database.{key}"
    assert str(error).endswith(f"database.{key} must be true when production = true, got false")


def test_the_same_settings_load_when_not_marked_production(environments_copy):
    edit(environments_copy, "prod.hcl", "production = true", "production = false")
    # Retiring production on purpose: its account leaves shared.hcl's production_accounts too.
    edit(environments_copy, "shared.hcl", 'production_accounts = ["444444444444"]', "production_accounts = []")
    edit(environments_copy, "prod.hcl", "prevent_destroy           = true", "prevent_destroy           = false")
    edit(environments_copy, "prod.hcl", "multi_az                  = true", "multi_az                  = false")
    edit(environments_copy, "prod.hcl", "replica_count             = 1", "replica_count             = 2")
    assert not load_environments(environments_copy).get("prod").database.multi_az


def test_rejects_storage_ceiling_below_allocated(environments_copy):
    edit(environments_copy, "prod.hcl", "max_allocated_storage_gib = 500", "max_allocated_storage_gib = 50")
    error = load_error(environments_copy)
    assert error.key == "database.max_allocated_storage_gib"
    assert "must be 110..65536" in str(error) and "allocated_storage_gib (100)" in str(error) and "got 50" in str(error)


@pytest.mark.parametrize("version", ["12", "19", "16.x", "latest"])
def test_rejects_an_unknown_engine_version(environments_copy, version):
    set_in_database(environments_copy, "dev.hcl", f'engine_version = "{version}"')
    error = load_error(environments_copy)
    assert error.key == "database.engine_version" and f'"{version}"' in str(error)


def test_accepts_a_pinned_minor_version(environments_copy):
    set_in_database(environments_copy, "dev.hcl", 'engine_version = "16.4"')
    database = load_environments(environments_copy).get("dev").database
    assert database.engine_major_version == "16"


@pytest.mark.parametrize("value", ["t4g.medium", "db.t4g", "db.r6g.huge", "DB.R6G.LARGE"])
def test_rejects_an_instance_class_not_of_the_form_db_family_size(environments_copy, value):
    edit(environments_copy, "prod.hcl", '"db.r6g.large"', f'"{value}"')
    error = load_error(environments_copy)
    assert error.key == "database.instance_class" and "db.<family>.<size>" in str(error)


def test_rejects_a_replica_class_of_the_wrong_form(environments_copy):
    set_in_database(environments_copy, "prod.hcl", 'replica_instance_class = "r6g.large"')
    assert load_error(environments_copy).key == "database.replica_instance_class"


def test_rejects_maintenance_window_overlapping_the_backup_window(environments_copy):
    set_in_database(environments_copy, "dev.hcl", 'maintenance_window = "wed:02:30-wed:03:30"')
    error = load_error(environments_copy)
    assert error.key == "database.maintenance_window" and "does not overlap backup_window" in str(error)


def test_rejects_windows_that_overlap_across_midnight(environments_copy):
    set_in_database(environments_copy, "dev.hcl", 'backup_window = "23:30-00:30"')
    set_in_database(environments_copy, "dev.hcl", 'maintenance_window = "sat:23:50-sun:01:00"')
    assert load_error(environments_copy).key == "database.maintenance_window"


def test_accepts_adjacent_windows(environments_copy):
    set_in_database(environments_copy, "dev.hcl", 'maintenance_window = "sun:03:00-sun:04:00"')
    assert load_environments(environments_copy).get("dev").database.maintenance_window == "sun:03:00-sun:04:00"


@pytest.mark.parametrize("key, value", [
    ("backup_window", "2:00-3:00"),
    ("backup_window", "02:00-02:15"),
    ("maintenance_window", "Sun:04:00-Sun:05:00"),
    ("maintenance_window", "sun:04:00-sun:04:10"),
])
def test_rejects_malformed_or_short_windows(environments_copy, key, value):
    set_in_database(environments_copy, "dev.hcl", f'{key} = "{value}"')
    assert load_error(environments_copy).key == f"database.{key}"


def test_rejects_skipping_the_final_snapshot_of_a_protected_database(environments_copy):
    set_in_database(environments_copy, "prod.hcl", "skip_final_snapshot = true")
    error = load_error(environments_copy)
    assert error.key == "database.skip_final_snapshot" and "while prevent_destroy = true" in str(error)


@pytest.mark.parametrize("value", ["2026-11-27 03:00:00", "2026-11-27T03:00:00+01:00", "2026-13-40T03:00:00Z"])
def test_rejects_a_restore_time_that_is_not_rfc3339_utc(environments_copy, value):
    set_in_database(environments_copy, "dev.hcl", f'point_in_time_restore {{\n    restore_time = "{value}"\n  }}')
    error = load_error(environments_copy)
    assert error.key == "database.point_in_time_restore.restore_time" and f'"{value}"' in str(error)


@pytest.mark.parametrize("key, value", [
    ("database_name", '"postgres"'),
    ("database_name", '"App"'),
    ("master_username", '"rdsadmin"'),
    # The services' logins and their groups (modules/database/access.py) are the library's.
    ("master_username", '"svc_admin"'),
    ("master_username", '"app_read_write"'),
    ("backup_replication_region", '"mars-east-1"'),
    ("master_password_version", "0"),
    ("port", "80"),
    ("log_retention_days", "31"),
    ("performance_insights_retention_days", "30"),
    ("monitoring_interval_seconds", "0"),
    ("alarm_topic_name", '"db alarms"'),
    ("alarm_email_addresses", '["oncall"]'),
    ("free_storage_alarm_gib", "20"),
    ("cpu_alarm_percent", "120"),
])
def test_rejects_other_values_aws_would_refuse(environments_copy, key, value):
    set_in_database(environments_copy, "dev.hcl", f"{key} = {value}")
    error = load_error(environments_copy)
    assert error.key.startswith(f"database.{key}"), str(error)


@pytest.mark.parametrize("lines, message", [
    ('source_dbi_resource_id = "webapp-dev-postgres"', "an RDS resource id like"),
    ('source_identifier = "old-db"\n    source_dbi_resource_id = "db-ABCDEFGHIJKLMNOPQRSTUVWXY0"',
     "unset while source_identifier is set"),
])
def test_rejects_a_restore_source_rds_cannot_use(environments_copy, lines, message):
    set_in_database(environments_copy, "dev.hcl", f"point_in_time_restore {{\n    {lines}\n  }}")
    error = load_error(environments_copy)
    assert error.key == "database.point_in_time_restore.source_dbi_resource_id" and message in str(error)


def test_rejects_an_unknown_database_key_with_the_near_miss(environments_copy):
    set_in_database(environments_copy, "dev.hcl", "replica_cuont = 1")
    error = load_error(environments_copy)
    assert error.key == "database.replica_cuont" and "did you mean 'replica_count'?" in str(error)


def test_rejects_a_name_prefix_rds_identifiers_cannot_carry(environments_copy):
    path = environments_copy / "dev.hcl"
    path.write_text(path.read_text() + '\nname_prefix = "web--dev"\n')
    error = load_error(environments_copy)
    assert error.key == "name_prefix" and 'RDS identifier "web--dev-postgres-replica-0"' in str(error)


def test_rejects_a_production_environment_without_a_second_region_for_its_backups(environments_copy):
    edit(environments_copy, "prod.hcl", 'backup_replication_region = "eu-central-1"', "")
    error = load_error(environments_copy)
    assert error.file.endswith("prod.hcl") and error.key == "database.backup_replication_region"
    assert "a second region when production = true" in str(error)


def test_rejects_replicating_backups_to_the_environments_own_region(environments_copy):
    edit(environments_copy, "prod.hcl", 'backup_replication_region = "eu-central-1"',
         'backup_replication_region = "eu-west-1"')
    error = load_error(environments_copy)
    assert error.key == "database.backup_replication_region"
    assert 'a region other than the environment\'s (eu-west-1), got "eu-west-1"' in str(error)
