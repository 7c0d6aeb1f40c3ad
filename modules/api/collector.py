"""The AWS Distro for OpenTelemetry collector sidecar of every API service task.

The API tier adds it to each service's task definition. Its contract with the
monitoring `shared-cicd` creates is in modules/contract.py: scrape job `metrics` (the
service's metrics path; health is probed by the NLB, see modules/api/health.py), labels
`environment` and `service`, remote write to the environment's workspace (found through
the SSM parameters `shared-cicd` writes in the environment's account).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from constructs import Construct

from modules import aws, contract
from modules.contract import ENVIRONMENT_LABEL, METRICS_JOB, SERVICE_LABEL
from modules.core import policy

CONTAINER = "otel-collector"
# The ADOT image runs as this non-root user (`aoc`).
USER = "10001"


@dataclass(frozen=True)
class CollectorSettings:
    """What the API tier needs to add collectors: from the organisation's `cicd` block the
    image, the scrape interval and whether the workspace is shared; the environment's name
    (the `environment` label)."""

    image_repository: str
    image_tag: str
    scrape_interval_seconds: int
    shared_prometheus: bool
    environment: str


@dataclass(frozen=True)
class CollectorTarget:
    """Where an environment's collectors write (tokens read from SSM at plan time)."""

    settings: CollectorSettings
    workspace_arn: str
    remote_write_url: str
    ingest_role_arn: str | None  # shared workspace: the role the task role assumes to write

    @property
    def repository(self) -> str:
        return self.settings.image_repository

    @property
    def tag(self) -> str:
        return self.settings.image_tag


def read_target(scope: Construct, settings: CollectorSettings, prefix: str) -> CollectorTarget:
    """The SSM parameters `shared-cicd` wrote for this environment (`CollectorWorkspaceArn`, ...):
    apply `shared-cicd` before the environment's API stack."""

    def parameter(construct_id: str, what: str) -> str:
        return aws.data_aws_ssm_parameter.DataAwsSsmParameter(
            scope, construct_id, name=contract.monitoring_parameter(prefix, what)
        ).value

    ingest = parameter("CollectorIngestRoleArn", "ingest-role-arn") if settings.shared_prometheus else None
    return CollectorTarget(
        settings=settings,
        workspace_arn=parameter("CollectorWorkspaceArn", "workspace-arn"),
        remote_write_url=parameter("CollectorRemoteWriteUrl", "remote-write-url"),
        ingest_role_arn=ingest,
    )


def collector_config(target: CollectorTarget, *, service: str, port: int, metrics_path: str, region: str) -> str:
    """The collector's configuration (YAML; JSON is YAML): scrape the service, write to the workspace."""
    interval = f"{target.settings.scrape_interval_seconds}s"
    labels = {ENVIRONMENT_LABEL: target.settings.environment, SERVICE_LABEL: service}

    def job(name: str, path: str) -> dict[str, Any]:
        return {"job_name": name, "metrics_path": path, "scrape_interval": interval, "scrape_timeout": "5s",
                "static_configs": [{"targets": [f"localhost:{port}"], "labels": labels}]}

    sigv4: dict[str, Any] = {"region": region, "service": "aps"}
    if target.ingest_role_arn is not None:
        sigv4["assume_role"] = {"arn": target.ingest_role_arn, "sts_region": region}
    config = {
        "extensions": {"sigv4auth": sigv4},
        "receivers": {"prometheus": {"config": {"scrape_configs": [
            job(METRICS_JOB, metrics_path),
        ]}}},
        "processors": {
            # Task ARN and friends as labels: each task's series stay apart.
            "resourcedetection/ecs": {"detectors": ["ecs"], "timeout": "5s", "override": False},
            "batch/metrics": {"timeout": "10s"},
        },
        "exporters": {"prometheusremotewrite": {
            "endpoint": target.remote_write_url,
            "auth": {"authenticator": "sigv4auth"},
            "resource_to_telemetry_conversion": {"enabled": True},
        }},
        "service": {
            "extensions": ["sigv4auth"],
            "pipelines": {"metrics": {"receivers": ["prometheus"],
                                      "processors": ["resourcedetection/ecs", "batch/metrics"],
                                      "exporters": ["prometheusremotewrite"]}},
        },
    }
    return json.dumps(config, sort_keys=True)


def collector_container(target: CollectorTarget, *, image: str, service: str, port: int, metrics_path: str,
                        region: str, log_group_name: str, tmp_volume: str) -> dict[str, Any]:
    """The sidecar's container definition, hardened like the service's own. Not essential: a
    collector that stops leaves the service serving (and probed: the NLB checks its health)."""
    return {
        "name": CONTAINER,
        "image": image,
        "essential": False,
        "user": USER,
        "readonlyRootFilesystem": True,
        "privileged": False,
        "linuxParameters": {"initProcessEnabled": True},
        "mountPoints": [{"sourceVolume": tmp_volume, "containerPath": "/tmp", "readOnly": False}],
        "volumesFrom": [],
        "portMappings": [],
        # The ADOT image reads its configuration from this variable.
        "environment": [{"name": "AOT_CONFIG_CONTENT", "value": collector_config(
            target, service=service, port=port, metrics_path=metrics_path, region=region,
        )}],
        "secrets": [],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {"awslogs-group": log_group_name, "awslogs-region": region, "awslogs-stream-prefix": CONTAINER},
        },
    }


def task_role_statements(target: CollectorTarget) -> list[Any]:
    """What the task role needs for its collector: write to this workspace, nothing else."""
    if target.ingest_role_arn is not None:
        return [policy.statement(sid="AssumePrometheusIngestRole", actions=["sts:AssumeRole"],
                                 resources=[target.ingest_role_arn])]
    return [policy.statement(sid="RemoteWriteMetrics", actions=["aps:RemoteWrite"], resources=[target.workspace_arn])]
