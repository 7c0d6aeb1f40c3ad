"""Grafana dashboards of an environment's services, generated from its service list.

`python -m modules.api.grafana [environments dir] [output dir]` writes `docs/grafana/<env>.json`
(`make grafana`); tests/test_operations.py fails when the committed files trail the environment
files. Two data sources, both import inputs (README "Grafana" says how to load them):

- `DS_PROMETHEUS`, the environment's Prometheus workspace: what the collector sidecars write
  (modules/api/collector.py, modules/contract.py: job `metrics`, labels `environment` and
  `service`) and the request counter the alert rules read (`cicd.metrics_requests_total`,
  `metrics_status_label`);
- `DS_CLOUDWATCH`, CloudWatch in the environment's account (assuming shared-cicd's
  `<prefix>-grafana-query` role): API Gateway's `Latency` p50 / p99 per route and method, the
  dimensions the CloudWatch dashboard uses (modules/api/dashboard.py), so latency is what callers
  see, whether or not a service exports metrics.
"""

from __future__ import annotations

import json
import string
import sys
from pathlib import Path
from typing import Any

from modules.api.dashboard import API_GATEWAY_NAMESPACE, PERIOD_SECONDS, api_gateway_dimensions
from modules.api.gateway import api_name, cached
from modules.api.service import route_methods
from modules.contract import ENVIRONMENT_LABEL, METRICS_JOB, SERVICE_LABEL

PROMETHEUS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
CLOUDWATCH = {"type": "cloudwatch", "uid": "${DS_CLOUDWATCH}"}
PANEL_WIDTH = 6
PANEL_HEIGHT = 8
LATENCY_STATISTICS = ("p50", "p99")


def _panel(title: str, targets: list[dict[str, Any]], datasource: dict[str, str], unit: str,
           x: int, y: int, width: int = PANEL_WIDTH) -> dict[str, Any]:
    return {
        "type": "timeseries", "title": title, "datasource": datasource,
        "gridPos": {"h": PANEL_HEIGHT, "w": width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": targets,
    }


def _prometheus(title: str, expression: str, legend: str, unit: str, x: int, y: int) -> dict[str, Any]:
    return _panel(title, [{"refId": "A", "datasource": PROMETHEUS, "expr": expression, "legendFormat": legend}],
                  PROMETHEUS, unit, x, y)


def _latency(environment: Any, service: Any, prefix: str, y: int) -> dict[str, Any]:
    """API Gateway's `Latency` (ms, request received to response sent) at p50 and p99, one series
    per route and method, as a CloudWatch metric query (Grafana's CloudWatchMetricsQuery: search
    mode, builder, exact dimensions)."""
    routes = route_methods(service, cached(environment.api, service))
    targets: list[dict[str, Any]] = []
    for statistic in LATENCY_STATISTICS:
        for resource, method in routes:
            targets.append({
                "refId": string.ascii_uppercase[len(targets)], "datasource": CLOUDWATCH, "queryMode": "Metrics",
                "metricQueryType": 0, "metricEditorMode": 0, "id": "", "expression": "",
                "region": environment.region, "namespace": API_GATEWAY_NAMESPACE, "metricName": "Latency",
                "dimensions": api_gateway_dimensions(api_name(prefix), environment.api.stage_name, resource, method),
                "matchExact": True, "statistic": statistic, "period": str(PERIOD_SECONDS),
                "label": f"{statistic} {method} {resource}",
            })
    return _panel(f"{service.name}: API latency p50 / p99", targets, CLOUDWATCH, "ms", 0, y, width=24)


def dashboard(environment: Any, cicd: Any, project: str, prefix: str) -> dict[str, Any]:
    """One environment's dashboard: a row per service, its API latency and, with a metrics path, its
    own request metrics."""
    requests, status = cicd.metrics_requests_total, cicd.metrics_status_label
    panels: list[dict[str, Any]] = []
    y = 0
    for service in environment.api.service:
        selector = f'{ENVIRONMENT_LABEL}="{environment.name}", {SERVICE_LABEL}="{service.name}"'
        panels.append({"type": "row", "title": service.name, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        y += 1
        if service.metrics_path is None:
            note = ("A worker (no route): no API metrics and nothing scraped. Its tasks, CPU and memory are on "
                    "the CloudWatch dashboard." if service.worker else
                    "No `metrics_path`: nothing is scraped. Its health is on the CloudWatch dashboard.")
            panels.append({"type": "text", "title": service.name, "gridPos": {"h": 3, "w": 24, "x": 0, "y": y},
                           "options": {"mode": "markdown", "content": note}})
            y += 3
        else:
            total = f"sum(rate({requests}{{{selector}}}[5m]))"

            def share(klass: str, selector: str = selector, total: str = total) -> str:
                return f'sum(rate({requests}{{{selector}, {status}=~"{klass}.."}}[5m])) / {total} * 100'

            panels += [
                _prometheus(f"{service.name}: requests / s", total, "requests", "reqps", 0, y),
                _prometheus(f"{service.name}: 5xx share", share("5"), "5xx", "percent", 6, y),
                _prometheus(f"{service.name}: 4xx share", share("4"), "4xx", "percent", 12, y),
                _prometheus(f"{service.name}: metrics scraped (per task)", f'up{{job="{METRICS_JOB}", {selector}}}',
                            "{{aws_ecs_task_arn}}", "none", 18, y),
            ]
            y += PANEL_HEIGHT
        if not service.worker:
            panels.append(_latency(environment, service, prefix, y))
            y += PANEL_HEIGHT
    return {
        "__inputs": [
            {"name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource",
             "pluginId": "prometheus", "pluginName": "Prometheus"},
            {"name": "DS_CLOUDWATCH", "label": "CloudWatch", "type": "datasource",
             "pluginId": "cloudwatch", "pluginName": "CloudWatch"},
        ],
        "title": f"{project}-{environment.name}: services (Prometheus, API latency from CloudWatch)",
        "uid": f"{project}-{environment.name}-services",
        "tags": [project, environment.name],
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "panels": panels,
    }


def render(environments: Any) -> dict[str, str]:
    """`{file name: JSON text}` for every environment."""
    from modules.environment import prefix_of

    shared = environments.shared
    return {f"{e.name}.json": json.dumps(dashboard(e, shared.cicd, shared.project, prefix_of(shared, e)),
                                         indent=2, sort_keys=True) + "\n"
            for e in environments.environments}


def main(argv: list[str]) -> int:
    from modules.environment import load_environments

    source = Path(argv[0]) if argv else Path(__file__).resolve().parents[2] / "environments"
    target = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[2] / "docs" / "grafana"
    target.mkdir(parents=True, exist_ok=True)
    for name, text in render(load_environments(source)).items():
        (target / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
