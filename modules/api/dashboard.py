"""The environment's CloudWatch dashboard, built from its config: a new service appears by itself.

The API stack owns it: the services' dimension values (target group and NLB ARN suffixes, the
cluster) are its own resources; the database's instance identifiers are names the database
tier derives from config (`Database.identifier`, `replica_identifiers`). The CloudFront
distribution id is not known to the API stack: a `terraform_remote_state` of the frontend fails
the plan while the frontend is not applied ("Unable to find remote state", measured on the
emulator), and a cross-stack reference would make the API wait for the frontend. So the
CloudFront panels search the environment's account (`SEARCH` over `AWS/CloudFront` with
`Region = Global`): exact while each environment has an account of its own, as these do.

Layout, top to bottom: what on-call reads first (the alarms, every service's health), then a
row group per service (requests, 4XX/5XX, latency p50/p99, running tasks, CPU/memory, health),
the database (CPU, connections, free storage, replica lag) and CloudFront (requests, error
rates, cache hit ratio; its metrics live in us-east-1 with `Region = Global`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modules.api.health import HEALTH_METRIC

WIDTH = 24  # the dashboard grid's columns (CloudWatch dashboard body structure)
PERIOD_SECONDS = 60
CLOUDFRONT_REGION = "us-east-1"  # CloudFront publishes its metrics there, with Region = Global


@dataclass(frozen=True)
class ServicePanel:
    """What the dashboard shows of one service (values may be Terraform tokens)."""

    name: str
    ecs_service: str
    routes: Sequence[tuple[str, str]]  # (Resource, Method) API Gateway reports it under
    load_balancer: str  # ARN suffix
    target_group: str | None  # ARN suffix; None: a worker (no route, no probe)


@dataclass(frozen=True)
class Neighbours:
    """What the dashboard shows of the other tiers: the database's instance identifiers and whether
    the frontend has CloudFront's additional metrics."""

    database_primary: str
    database_replicas: Sequence[str]
    cache_hit_rate: bool


@dataclass(frozen=True)
class DashboardInputs:
    title: str
    region: str
    api_name: str
    stage: str
    cluster: str
    container_insights: bool
    services: Sequence[ServicePanel]
    neighbours: Neighbours
    alarm_arns: Sequence[str]


API_GATEWAY_NAMESPACE = "AWS/ApiGateway"


def api_gateway_dimensions(api_name: str, stage: str, resource: str, method: str) -> dict[str, str]:
    """The dimensions API Gateway reports a REST API method's metrics under (API Gateway developer
    guide, "Amazon API Gateway dimensions and metrics"): per method with the stage's detailed metrics."""
    return {"ApiName": api_name, "Stage": stage, "Resource": resource, "Method": method}


def _metric(namespace: str, name: str, dimensions: dict[str, str], **options: Any) -> list[Any]:
    row: list[Any] = [namespace, name]
    for key, value in dimensions.items():
        row += [key, value]
    return row + ([options] if options else [])


def _graph(title: str, metrics: list[list[Any]], region: str, *, stat: str = "Sum",
           width: int = 8, height: int = 6) -> dict[str, Any]:
    return {"type": "metric", "width": width, "height": height, "properties": {
        "title": title, "view": "timeSeries", "region": region, "stat": stat, "period": PERIOD_SECONDS,
        "metrics": metrics,
    }}


def _text(markdown: str, height: int = 2) -> dict[str, Any]:
    return {"type": "text", "width": WIDTH, "height": height, "properties": {"markdown": markdown}}


def _health(service: ServicePanel, region: str, *, width: int = 8) -> dict[str, Any]:
    assert service.target_group is not None, "a worker has no probe"
    dimensions = HEALTH_METRIC.dimensions(service.load_balancer, service.target_group)
    return _graph(f"{service.name}: health (tasks failing the probe / passing)", [
        _metric(HEALTH_METRIC.namespace, HEALTH_METRIC.name, dimensions, stat=HEALTH_METRIC.statistic,
                label="failing the probe"),
        _metric(HEALTH_METRIC.namespace, "HealthyHostCount", dimensions, stat="Minimum", label="passing"),
    ], region, stat=HEALTH_METRIC.statistic, width=width)


def _service(inputs: DashboardInputs, service: ServicePanel) -> list[dict[str, Any]]:
    region = inputs.region

    def api(metric: str, **options: Any) -> list[list[Any]]:
        return [_metric(API_GATEWAY_NAMESPACE, metric, api_gateway_dimensions(inputs.api_name, inputs.stage,
                                                                              resource, method),
                        label=f"{method} {resource}", **options)
                for resource, method in service.routes]

    ecs = {"ClusterName": inputs.cluster, "ServiceName": service.ecs_service}
    widgets = [_text(f"## {service.name}")]
    if service.routes:  # a worker has no route: no API metrics
        widgets += [
            _graph(f"{service.name}: API requests", api("Count"), region),
            _graph(f"{service.name}: 4XX / 5XX", api("4XXError") + api("5XXError"), region),
            _graph(f"{service.name}: latency p50 / p99 (ms)",
                   api("Latency", stat="p50") + api("Latency", stat="p99"), region, stat="p50"),
        ]
    if inputs.container_insights:
        widgets.append(_graph(f"{service.name}: running tasks", [
            _metric("ECS/ContainerInsights", "RunningTaskCount", ecs, label="running"),
        ], region, stat="Average"))
    widgets += [
        _graph(f"{service.name}: CPU / memory (%)", [
            _metric("AWS/ECS", "CPUUtilization", ecs, label="CPU"),
            _metric("AWS/ECS", "MemoryUtilization", ecs, label="memory"),
        ], region, stat="Average"),
    ]
    if service.target_group is not None:
        widgets.append(_health(service, region))
    return widgets


def _database(inputs: DashboardInputs) -> list[dict[str, Any]]:
    region = inputs.region
    database = inputs.neighbours
    instances = [database.database_primary, *database.database_replicas]

    def rds(metric: str) -> list[list[Any]]:
        return [_metric("AWS/RDS", metric, {"DBInstanceIdentifier": i}, label=i) for i in instances]

    widgets = [
        _text("## Database"),
        _graph("database: CPU (%)", rds("CPUUtilization"), region, stat="Average", width=6),
        _graph("database: connections", rds("DatabaseConnections"), region, stat="Maximum", width=6),
        _graph("database: free storage (bytes)", rds("FreeStorageSpace"), region, stat="Minimum", width=6),
    ]
    replicas = [_metric("AWS/RDS", "ReplicaLag", {"DBInstanceIdentifier": i}, label=i)
                for i in database.database_replicas]
    if replicas:
        widgets.append(_graph("database: replica lag (s)", replicas, region, stat="Maximum", width=6))
    return widgets


def _cloudfront(inputs: DashboardInputs) -> list[dict[str, Any]]:
    def cf(metric: str, statistic: str, label: str, index: int) -> dict[str, Any]:
        query = f"{{AWS/CloudFront,DistributionId,Region}} MetricName=\"{metric}\" Region=\"Global\""
        return {"expression": f"SEARCH('{query}', '{statistic}', {PERIOD_SECONDS})", "label": label, "id": f"e{index}"}

    widgets = [
        _text("## CloudFront (us-east-1, Region = Global; the environment account's distributions)"),
        _graph("CloudFront: requests", [[cf("Requests", "Sum", "requests", 1)]], CLOUDFRONT_REGION),
        _graph("CloudFront: error rates (%)", [[cf("4xxErrorRate", "Average", "4xx", 1)],
                                               [cf("5xxErrorRate", "Average", "5xx", 2)],
                                               [cf("TotalErrorRate", "Average", "total", 3)]],
               CLOUDFRONT_REGION, stat="Average"),
    ]
    if inputs.neighbours.cache_hit_rate:  # an additional metric (frontend.additional_metrics)
        widgets.append(_graph("CloudFront: cache hit ratio (%)", [[cf("CacheHitRate", "Average", "cache hit rate", 1)]],
                              CLOUDFRONT_REGION, stat="Average"))
    return widgets


def _place(widgets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Left to right, wrapping at the grid's width (x, y as the dashboard body wants them)."""
    x = y = row_height = 0
    placed = []
    for widget in widgets:
        if x + widget["width"] > WIDTH:
            x, y, row_height = 0, y + row_height, 0
        placed.append({**widget, "x": x, "y": y})
        x += widget["width"]
        row_height = max(row_height, widget["height"])
    return placed


def dashboard_body(inputs: DashboardInputs) -> str:
    """The dashboard body (CloudWatch "Dashboard Body Structure and Syntax")."""
    first = [
        _text(f"# {inputs.title}\nOn call: the alarms first, then each service's health; "
              "the rows below show why (requests, errors, latency, tasks, the database, CloudFront)."),
        {"type": "alarm", "width": WIDTH, "height": 4,
         "properties": {"title": "Alarms", "alarms": list(inputs.alarm_arns), "sortBy": "stateUpdatedTimestamp"}},
    ]
    probed = [service for service in inputs.services if service.target_group is not None]
    health_width = max(WIDTH // max(len(probed), 1), 6)
    first += [_health(service, inputs.region, width=health_width) for service in probed]
    widgets = first
    for service in inputs.services:
        widgets += _service(inputs, service)
    widgets += _database(inputs) + _cloudfront(inputs)
    return json.dumps({"widgets": _place(widgets)}, sort_keys=True)
