"""The names tiers share without referencing each other's stacks.

`shared-cicd` never references another stack's resources (the API stack reads the
monitoring workspace, so a reference back would be a cycle, and the stacks live in
different accounts). It names them instead, by the same `physical_name` calls the
tiers make; `tests/test_cicd.py` checks every name here against the synthesized
API and frontend stacks, so a rename there fails the suite instead of a deploy.

The monitoring contract lives here too: the scrape jobs and labels of the API's
collector sidecar (modules/api/collector.py), which shared-cicd's alert rules read
(modules/cicd/monitoring.py), and the SSM parameters through which the sidecar finds
the workspace shared-cicd created.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modules.core.naming import NameKind, physical_name

if TYPE_CHECKING:
    from modules.environment import EnvironmentConfig

MIGRATIONS = "migrations"  # modules/api/migrations.py: NAME

# The collector sidecar of every API task scrapes these jobs and puts these labels on every
# series; shared-cicd's alert rules select by them. Health is not scraped: the NLB probes it
# and the API tier alerts on it (modules/api/health.py).
METRICS_JOB = "metrics"  # the service's own metrics path
ENVIRONMENT_LABEL = "environment"
SERVICE_LABEL = "service"

# `delivery promote` tags each digest it promotes `release-<env>-<tag>` (modules/cicd/registry.py
# keeps such images ahead of the newest-tagged-images rule, so what an environment runs stays).
PROMOTED_TAG_PREFIX = "release-"


def promoted_tag(environment: str, tag: str) -> str:
    """`release-prod-3f2c1a9`: the extra tag of a digest promoted to `environment` (ECR: 128 characters)."""
    return f"{PROMOTED_TAG_PREFIX}{environment}-{tag}"[:128]


def execution_role_name(prefix: str, task: str) -> str:
    """modules/api/task.py `execution_role`: `<prefix>-<service>-execution`."""
    return physical_name(NameKind.IAM_ROLE, prefix, task, "execution")


def task_role_name(prefix: str, task: str) -> str:
    """modules/api/task.py `task_role`: `<prefix>-<service>-task`."""
    return physical_name(NameKind.IAM_ROLE, prefix, task, "task")


def cluster_name(prefix: str) -> str:
    """modules/api/cluster.py: `<prefix>-api`."""
    return physical_name(NameKind.ECS, prefix, "api")


def migrations_family(prefix: str) -> str:
    """modules/api/migrations.py: the Flyway task definition family."""
    return physical_name(NameKind.ECS, prefix, MIGRATIONS)


def api_log_group_prefix(prefix: str) -> str:
    """modules/api/task.py `log_group_name`: every API task logs under `/api/<prefix>/`."""
    return f"/api/{prefix}/"


def site_bucket_name(prefix: str, environment: EnvironmentConfig) -> str:
    """modules/frontend/frontend.py: the site bucket the deploy step syncs to."""
    return environment.frontend.site_bucket(prefix, environment.bucket_unique)


def monitoring_parameter(prefix: str, what: str) -> str:
    """SSM parameters `shared-cicd` writes in each environment's account for the API tier:
    `/<prefix>/monitoring/<what>` (`workspace-arn`, `remote-write-url`, `ingest-role-arn`)."""
    return f"/{prefix}/monitoring/{what}"


def deploy_role_name(prefix: str) -> str:
    """modules/cicd/pipeline.py `_deploy_role`: `<prefix>-deploy` (bootstrap's state-access roles trust it)."""
    return physical_name(NameKind.IAM_ROLE, prefix, "deploy")


def plan_role_name(prefix: str) -> str:
    """modules/cicd/pipeline.py `_plan_role`: `<prefix>-plan` (bootstrap's plan-state roles trust it)."""
    return physical_name(NameKind.IAM_ROLE, prefix, "plan")


# The tag `delivery migrate` puts on the migration task it starts; the deploy role may stop only
# tasks that carry its own name there (modules/cicd/pipeline.py, delivery/pipeline.py).
STARTED_BY_TAG = "started-by"
