"""Typed configuration of the database tier (the `database { ... }` block)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from modules.core.errors import shown
from modules.core.naming import NameKind
from modules.core.regions import AZ_COUNT_BY_REGION
from modules.core.schema import check, check_range, whole
from modules.core.values import EMAIL, LOG_RETENTION_DAYS
from modules.database.access import LIBRARY_ROLES, LOGIN_PREFIX

# RDS for PostgreSQL majors in standard support; the parameter-group family follows (`postgres17`).
ENGINE_MAJOR_VERSIONS = ("14", "15", "16", "17")
# "17" (RDS picks the newest minor, and auto minor upgrades never show as drift) or "17.4".
ENGINE_VERSION = whole(r"^(?P<major>[0-9]+)(?:\.[0-9]+)?$")
# db.<family>.<size>: db.t4g.medium, db.r6g.large, db.m7g.2xlarge, db.x2iedn.metal-32xl.
INSTANCE_CLASS = whole(r"^db\.[a-z][a-z0-9-]*\.(?:micro|small|medium|large|[1-9]?[0-9]?xlarge|metal(?:-[0-9]+xl)?)$")
IDENTIFIER = whole(r"^[a-z][a-z0-9_]{0,62}$")
RESERVED_DATABASE_NAMES = frozenset({"postgres", "template0", "template1", "rdsadmin"})
RESERVED_USERNAMES = frozenset({"rdsadmin", "rdsrepladmin", "rds_superuser", "public"})
TOPIC_NAME = whole(r"^[A-Za-z0-9_-]{1,200}$")
DBI_RESOURCE_ID = whole(r"^db-[A-Z0-9]{10,}$")
RESTORE_TIME = whole(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MINUTES = 24 * 60
WEEK_MINUTES = 7 * DAY_MINUTES
CLOCK = r"([01][0-9]|2[0-3]):([0-5][0-9])"
BACKUP_WINDOW = whole(rf"^{CLOCK}-{CLOCK}$")
MAINTENANCE_WINDOW = whole(rf"^({'|'.join(DAYS)}):{CLOCK}-({'|'.join(DAYS)}):{CLOCK}$")
MIN_WINDOW_MINUTES = 30  # RDS refuses shorter backup and maintenance windows

GP3_MIN_GIB, GP3_MAX_GIB = 20, 65_536
# Performance Insights keeps 7 days free, or whole months up to two years.
PERFORMANCE_INSIGHTS_RETENTION_DAYS = (7, *(31 * months for months in range(1, 24)), 731)
MONITORING_INTERVALS_SECONDS = (1, 5, 10, 15, 30, 60)


def _backup_window(value: str) -> tuple[int, int]:
    """`hh:mm-hh:mm` (UTC, daily) as (start minute of the day, length in minutes)."""
    match = BACKUP_WINDOW.match(value)
    check(match is not None, "backup_window", value, "\"hh:mm-hh:mm\" in UTC, like \"02:00-03:00\"")
    assert match is not None
    start = int(match[1]) * 60 + int(match[2])
    end = int(match[3]) * 60 + int(match[4])
    return start, (end - start) % DAY_MINUTES


def _maintenance_window(value: str) -> tuple[int, int]:
    """`ddd:hh:mm-ddd:hh:mm` (UTC, weekly) as (start minute of the week, length in minutes)."""
    match = MAINTENANCE_WINDOW.match(value)
    check(match is not None, "maintenance_window", value,
          "\"ddd:hh:mm-ddd:hh:mm\" in UTC with lowercase days, like \"sun:04:00-sun:05:00\"")
    assert match is not None
    start = DAYS.index(match[1]) * DAY_MINUTES + int(match[2]) * 60 + int(match[3])
    end = DAYS.index(match[4]) * DAY_MINUTES + int(match[5]) * 60 + int(match[6])
    return start, (end - start) % WEEK_MINUTES


def _is_time(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _overlap(first: tuple[int, int], second: tuple[int, int], period: int) -> bool:
    """Whether two (start, length) intervals on a circle of `period` minutes intersect."""
    (a, a_length), (b, b_length) = first, second
    return (b - a) % period < a_length or (a - b) % period < b_length


@dataclass(frozen=True, kw_only=True, slots=True)
class PointInTimeRestoreConfig:
    """`point_in_time_restore { ... }`: a new instance built from the automated backups.

    The primary is left as it is; the restored instance (`<prefix>-postgres-restored`)
    gets the primary's network, encryption, parameters and monitoring.
    """

    restore_time: str | None = None  # RFC 3339 UTC; unset means the latest restorable time
    source_identifier: str | None = None  # an existing instance; unset means this environment's primary
    # A deleted instance's retained automated backups are found by its resource id (`db-...`,
    # this tier's `PrimaryResourceId` output), not by its identifier.
    source_dbi_resource_id: str | None = None

    def __post_init__(self) -> None:
        if self.restore_time is not None:
            check(bool(RESTORE_TIME.match(self.restore_time)) and _is_time(self.restore_time), "restore_time",
                  self.restore_time,
                  "an RFC 3339 UTC time like \"2026-11-27T03:15:00Z\" (or unset for the latest restorable time)")
        if self.source_identifier is not None:
            check(bool(whole(NameKind.RDS_IDENTIFIER.value.pattern).match(self.source_identifier)),
                  "source_identifier", self.source_identifier, "an RDS instance identifier")
        if self.source_dbi_resource_id is not None:
            check(bool(DBI_RESOURCE_ID.match(self.source_dbi_resource_id)), "source_dbi_resource_id",
                  self.source_dbi_resource_id, "an RDS resource id like \"db-ABCDEFGHIJKLMNOPQRSTUVWXY0\"")
            check(self.source_identifier is None, "source_dbi_resource_id", self.source_dbi_resource_id,
                  "unset while source_identifier is set (one source: an existing instance, or a deleted one's backups)")


@dataclass(frozen=True, kw_only=True, slots=True)
class DatabaseConfig:
    """RDS for PostgreSQL: size, availability, replicas, backups, protection and alarms."""

    instance_class: str = "db.t4g.medium"
    replica_instance_class: str | None = None  # unset: the primary's class
    engine_version: str = "17"
    multi_az: bool = False
    replica_count: int = 0
    allocated_storage_gib: int = 20
    max_allocated_storage_gib: int = 100
    database_name: str = "app"
    master_username: str = "app_admin"
    # Raise it to rotate the master password (a new one is generated, stored and set).
    master_password_version: int = 1
    port: int = 5432
    backup_retention_days: int = 7
    backup_window: str = "02:00-03:00"
    maintenance_window: str = "sun:04:00-sun:05:00"
    prevent_destroy: bool = True
    skip_final_snapshot: bool = False
    apply_immediately: bool = False
    log_min_duration_statement_ms: int = 1000
    log_retention_days: int = 365
    performance_insights_retention_days: int = 7
    monitoring_interval_seconds: int = 60
    alarm_topic_name: str = "database-alarms"
    alarm_email_addresses: tuple[str, ...] = ()
    cpu_alarm_percent: int = 80
    free_storage_alarm_gib: int = 5
    freeable_memory_alarm_mib: int = 256
    connections_alarm_count: int = 200
    replica_lag_alarm_seconds: int = 60
    point_in_time_restore: PointInTimeRestoreConfig | None = None
    # A second region the automated backups (snapshots and transaction logs) are copied to, with
    # a key of the tier there: point-in-time restore survives the loss of the primary's region.
    # Required when the environment is production. They are kept backup_retention_days.
    backup_replication_region: str | None = None

    def __post_init__(self) -> None:
        for key in ("instance_class", "replica_instance_class"):
            value = getattr(self, key)
            if value is not None:
                check(bool(INSTANCE_CLASS.match(value)), key, value,
                      "an RDS instance class of the form db.<family>.<size>, like \"db.r6g.large\"")
        version = ENGINE_VERSION.match(self.engine_version)
        check(version is not None, "engine_version", self.engine_version, "a PostgreSQL version like \"17\" or \"17.4\"")
        assert version is not None
        check(version["major"] in ENGINE_MAJOR_VERSIONS, "engine_version", self.engine_version,
              f"a PostgreSQL major version RDS supports ({', '.join(ENGINE_MAJOR_VERSIONS)})")
        check(self.replica_count >= 0, "replica_count", self.replica_count, "0 or more")
        check_range("allocated_storage_gib", self.allocated_storage_gib, GP3_MIN_GIB, GP3_MAX_GIB)
        # RDS refuses a storage-autoscaling ceiling less than 10 % above the allocated storage.
        floor = (self.allocated_storage_gib * 11 + 9) // 10
        check(floor <= self.max_allocated_storage_gib <= GP3_MAX_GIB, "max_allocated_storage_gib",
              self.max_allocated_storage_gib,
              f"{floor}..{GP3_MAX_GIB}: the storage-autoscaling ceiling, at least 10% above "
              f"allocated_storage_gib ({self.allocated_storage_gib})")
        check(bool(IDENTIFIER.match(self.database_name)) and self.database_name not in RESERVED_DATABASE_NAMES,
              "database_name", self.database_name,
              "1..63 lowercase letters, digits and underscores, starting with a letter, "
              f"and none of {sorted(RESERVED_DATABASE_NAMES)}")
        check(bool(IDENTIFIER.match(self.master_username)) and self.master_username not in RESERVED_USERNAMES,
              "master_username", self.master_username,
              "1..63 lowercase letters, digits and underscores, starting with a letter, "
              f"and none of {sorted(RESERVED_USERNAMES)}")
        check(not self.master_username.startswith(LOGIN_PREFIX) and self.master_username not in LIBRARY_ROLES,
              "master_username", self.master_username,
              f"a name that does not start with {shown(LOGIN_PREFIX)} and is none of {list(LIBRARY_ROLES)} "
              "(the API services' logins and their groups, modules/database/access.py)")
        if self.backup_replication_region is not None:
            check(self.backup_replication_region in AZ_COUNT_BY_REGION, "backup_replication_region",
                  self.backup_replication_region, f"an AWS region ({', '.join(sorted(AZ_COUNT_BY_REGION))})")
        check(self.master_password_version >= 1, "master_password_version", self.master_password_version,
              "1 or more; raise it by one to rotate the master password")
        check_range("port", self.port, 1150, 65535)
        check_range("backup_retention_days", self.backup_retention_days, 1, 35)
        backup = _backup_window(self.backup_window)
        check(backup[1] >= MIN_WINDOW_MINUTES, "backup_window", self.backup_window,
              f"at least {MIN_WINDOW_MINUTES} minutes long")
        maintenance = _maintenance_window(self.maintenance_window)
        check(maintenance[1] >= MIN_WINDOW_MINUTES, "maintenance_window", self.maintenance_window,
              f"at least {MIN_WINDOW_MINUTES} minutes long")
        # The backup window recurs daily; the maintenance window weekly.
        daily_backups = [(backup[0] + day * DAY_MINUTES, backup[1]) for day in range(7)]
        check(not any(_overlap(b, maintenance, WEEK_MINUTES) for b in daily_backups), "maintenance_window",
              self.maintenance_window, f"a window that does not overlap backup_window ({shown(self.backup_window)})")
        if self.skip_final_snapshot:
            check(not self.prevent_destroy, "skip_final_snapshot", self.skip_final_snapshot,
                  "false while prevent_destroy = true (a protected database is snapshotted when deleted)")
        check_range("log_min_duration_statement_ms", self.log_min_duration_statement_ms, -1, 3_600_000)
        check(self.log_retention_days in LOG_RETENTION_DAYS, "log_retention_days", self.log_retention_days,
              f"one of CloudWatch's retention periods {LOG_RETENTION_DAYS}")
        check(self.performance_insights_retention_days in PERFORMANCE_INSIGHTS_RETENTION_DAYS,
              "performance_insights_retention_days", self.performance_insights_retention_days,
              "7, a multiple of 31 up to 713, or 731")
        check(self.monitoring_interval_seconds in MONITORING_INTERVALS_SECONDS, "monitoring_interval_seconds",
              self.monitoring_interval_seconds, f"one of {MONITORING_INTERVALS_SECONDS}")
        check(bool(TOPIC_NAME.match(self.alarm_topic_name)), "alarm_topic_name", self.alarm_topic_name,
              "1..200 letters, digits, hyphens and underscores")
        for index, address in enumerate(self.alarm_email_addresses):
            check(bool(EMAIL.match(address)), f"alarm_email_addresses[{index}]", address, "an email address")
        check_range("cpu_alarm_percent", self.cpu_alarm_percent, 1, 100)
        check(1 <= self.free_storage_alarm_gib < self.allocated_storage_gib, "free_storage_alarm_gib",
              self.free_storage_alarm_gib, f"1..{self.allocated_storage_gib - 1} (below allocated_storage_gib)")
        check(self.freeable_memory_alarm_mib >= 1, "freeable_memory_alarm_mib", self.freeable_memory_alarm_mib,
              "1 or more")
        check(self.connections_alarm_count >= 1, "connections_alarm_count", self.connections_alarm_count, "1 or more")
        check(self.replica_lag_alarm_seconds >= 1, "replica_lag_alarm_seconds", self.replica_lag_alarm_seconds,
              "1 or more")

    @property
    def engine_major_version(self) -> str:
        return self.engine_version.split(".")[0]

    @property
    def primary_zone_count(self) -> int:
        """Zones the primary may run in: its own, plus its standby's when Multi-AZ."""
        return 2 if self.multi_az else 1

    def max_replicas(self, zone_count: int) -> int:
        """Replicas the zones allow: each needs a zone the primary (and its standby) never uses."""
        return max(zone_count - self.primary_zone_count, 0)

    def replica_zones(self, zones: tuple[str, ...] | list[str]) -> tuple[str, ...]:
        """The zone of each replica, after the zones the primary and its standby use."""
        return tuple(zones[self.primary_zone_count:][: self.replica_count])
