"""A small environment of hand-written stacks for the saved-plan tests on the emulator.

Four stacks named like an environment's (`<env>-network`, `-database`, `-api`, `-frontend`),
each a few resources moto creates in seconds, with the project's S3 backend and DynamoDB lock on
the emulator, and the API and database reading the network's outputs through
`terraform_remote_state` as the real tiers do. The real stacks climb the ladder elsewhere
(tests/emulator/test_*.py); what is tested with these is the delivery path around terraform,
which must not wait minutes for RDS on every case.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modules.core.target import EMULATOR_IGNORE_CHANGES

PROVIDER_SERVICES = ("cloudwatch", "dynamodb", "ec2", "ecs", "iam", "kms", "logs", "rds", "s3", "secretsmanager",
                     "sns", "ssm", "sts")


def backend(endpoint: str, bucket: str, table: str, key: str) -> dict[str, Any]:
    return {"s3": {
        "bucket": bucket, "key": key, "region": "eu-west-1", "dynamodb_table": table, "encrypt": True,
        "access_key": "test", "secret_key": "test", "skip_credentials_validation": True,
        "skip_metadata_api_check": True, "skip_region_validation": True, "use_path_style": True,
        "endpoints": {"s3": endpoint, "dynamodb": endpoint, "sts": endpoint, "iam": endpoint},
    }}


def provider(endpoint: str) -> dict[str, Any]:
    return {"aws": [{
        "region": "eu-west-1", "access_key": "test", "secret_key": "test", "skip_credentials_validation": True,
        "skip_metadata_api_check": "true", "skip_region_validation": True, "s3_use_path_style": True,
        "endpoints": [{service: endpoint for service in PROVIDER_SERVICES}],
    }]}


def terraform_block(endpoint: str, bucket: str, table: str, key: str) -> dict[str, Any]:
    return {"backend": backend(endpoint, bucket, table, key),
            "required_providers": {"aws": {"source": "aws", "version": "5.100.0"}}}


def remote_network(endpoint: str, bucket: str, env: str) -> dict[str, Any]:
    config = {k: v for k, v in backend(endpoint, bucket, "", f"{env}/network.tfstate")["s3"].items()
              if k not in ("dynamodb_table", "encrypt")}
    return {"terraform_remote_state": {"network": {"backend": "s3", "config": config}}}


def stacks(endpoint: str, bucket: str, table: str, env: str, *, revision: str = "1", db_name: str = "app",
           alarm_threshold: int = 80, image: str = "nginx:1", log_retention_days: int = 7,
           slow_seconds: int = 1) -> dict[str, dict[str, Any]]:
    """cdk.tf.json documents of the four stacks. `image` is what a release changes (the API's task
    definition); `alarm_threshold` an infrastructure change in the same stack; `db_name` replaces
    the database (RDS cannot rename the initial database); a new `revision` retags the VPC and
    replaces a step that takes `slow_seconds` (an apply long enough to interrupt)."""
    def stack(tier: str, resources: dict[str, Any], outputs: dict[str, Any] | None = None,
              data: dict[str, Any] | None = None) -> dict[str, Any]:
        document: dict[str, Any] = {
            "terraform": terraform_block(endpoint, bucket, table, f"{env}/{tier}.tfstate"),
            "provider": provider(endpoint), "resource": resources,
        }
        if outputs:
            document["output"] = outputs
        if data:
            document["data"] = data
        return document

    network_id = "${data.terraform_remote_state.network.outputs.vpc_id}"
    return {
        f"{env}-network": stack("network", {
            "aws_vpc": {"vpc": {"cidr_block": "10.42.0.0/16", "tags": {"Name": f"{env}-vpc", "revision": revision}}},
            "terraform_data": {"slow": {"triggers_replace": revision, "depends_on": ["aws_vpc.vpc"],
                                        "provisioner": [{"local-exec": {"command": f"sleep {slow_seconds}"}}]}},
        }, {"vpc_id": {"value": "${aws_vpc.vpc.id}"}}),
        f"{env}-database": stack("database", {
            "aws_security_group": {"db": {"name": f"{env}-db", "vpc_id": network_id}},
            "aws_db_instance": {"db": {
                "identifier_prefix": f"{env}-db-", "engine": "postgres", "engine_version": "15.8",
                "instance_class": "db.t3.micro", "allocated_storage": 20, "db_name": db_name,
                "username": "app", "password": "not-a-secret-1", "skip_final_snapshot": True,
                "vpc_security_group_ids": ["${aws_security_group.db.id}"],
                "lifecycle": {"create_before_destroy": True,
                              "ignore_changes": list(EMULATOR_IGNORE_CHANGES.get("aws_db_instance", ()))},
            }},
        }, {"endpoint": {"value": "${aws_db_instance.db.address}"}}, remote_network(endpoint, bucket, env)),
        f"{env}-api": stack("api", {
            "aws_ecs_cluster": {"cluster": {"name": f"{env}-cluster"}},
            "aws_ecs_task_definition": {"service": {
                "family": f"{env}-service", "requires_compatibilities": ["FARGATE"], "network_mode": "awsvpc",
                "cpu": "256", "memory": "512",
                "container_definitions": json.dumps([{"name": "app", "image": image, "essential": True}]),
            }},
            "aws_ecs_service": {"service": {
                "name": f"{env}-service", "cluster": "${aws_ecs_cluster.cluster.id}",
                "task_definition": "${aws_ecs_task_definition.service.arn}", "desired_count": 1,
                "launch_type": "FARGATE",
                "network_configuration": {"subnets": ["${aws_subnet.app.id}"]},
                # what moto echoes back differently, as the emulator target ignores it (modules/core/target.py)
                "lifecycle": {"ignore_changes": list(EMULATOR_IGNORE_CHANGES.get("aws_ecs_service", ()))},
            }},
            "aws_subnet": {"app": {"vpc_id": network_id, "cidr_block": "10.42.1.0/24"}},
            "aws_cloudwatch_metric_alarm": {"cpu": {
                "alarm_name": f"{env}-cpu", "namespace": "AWS/ECS", "metric_name": "CPUUtilization",
                "statistic": "Average", "period": 60, "evaluation_periods": 1, "threshold": alarm_threshold,
                "comparison_operator": "GreaterThanThreshold",
            }},
        }, {"task_definition": {"value": "${aws_ecs_task_definition.service.arn}"}},
            remote_network(endpoint, bucket, env)),
        f"{env}-frontend": stack("frontend", {
            "aws_s3_bucket": {"site": {"bucket_prefix": f"{env}-site-"}},
            "aws_cloudwatch_log_group": {"edge": {"name": f"/{env}/edge", "retention_in_days": log_retention_days}},
        }),
    }


def write(stacks_dir: Path, documents: dict[str, dict[str, Any]], only: tuple[str, ...] = ()) -> None:
    for name, document in documents.items():
        if only and name not in only:
            continue
        directory = stacks_dir / name
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "cdk.tf.json").write_text(json.dumps(document, indent=2, sort_keys=True))
