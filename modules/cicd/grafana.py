"""Grafana dashboards over an environment's Prometheus workspace, generated from its service list.

`python -m modules.cicd.grafana [environments dir] [output dir]` writes `docs/grafana/<env>.json`
(`make grafana`); tests/test_operations.py fails when the committed files trail the environment
files. The queries read what the collector sidecars write (modules/api/collector.py, modules/contract.py: job
`metrics`, labels `environment` and `service`) and the request counter the alert rules read
(`cicd.metrics_requests_total`, `metrics_status_label`). The data source is an import input
(`DS_PROMETHEUS`): README "Grafana" says how to load them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from modules.contract import ENVIRONMENT_LABEL, METRICS_JOB, SERVICE_LABEL

DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
PANEL_WIDTH = 6
PANEL_HEIGHT = 8


def _panel(title: str, expression: str, legend: str, unit: str, x: int, y: int) -> dict[str, Any]:
    return {
        "type": "timeseries", "title": title, "datasource": DATASOURCE,
        "gridPos": {"h": PANEL_HEIGHT, "w": PANEL_WIDTH, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": "A", "datasource": DATASOURCE, "expr": expression, "legendFormat": legend}],
    }


def dashboard(environment: Any, cicd: Any, project: str) -> dict[str, Any]:
    """One environment's dashboard: a row per service with a metrics path."""
    requests, status = cicd.metrics_requests_total, cicd.metrics_status_label
    panels: list[dict[str, Any]] = []
    y = 0
    for service in environment.api.service:
        selector = f'{ENVIRONMENT_LABEL}="{environment.name}", {SERVICE_LABEL}="{service.name}"'
        panels.append({"type": "row", "title": service.name, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        y += 1
        if service.metrics_path is None:
            panels.append({"type": "text", "title": service.name, "gridPos": {"h": 3, "w": 24, "x": 0, "y": y},
                           "options": {"mode": "markdown", "content": "No `metrics_path`: nothing is scraped. "
                                       "Its health is on the CloudWatch dashboard."}})
            y += 3
            continue
        total = f"sum(rate({requests}{{{selector}}}[5m]))"

        def share(klass: str, selector: str = selector, total: str = total) -> str:
            return f'sum(rate({requests}{{{selector}, {status}=~"{klass}.."}}[5m])) / {total} * 100'

        panels += [
            _panel(f"{service.name}: requests / s", total, "requests", "reqps", 0, y),
            _panel(f"{service.name}: 5xx share", share("5"), "5xx", "percent", 6, y),
            _panel(f"{service.name}: 4xx share", share("4"), "4xx", "percent", 12, y),
            _panel(f"{service.name}: metrics scraped (per task)", f'up{{job="{METRICS_JOB}", {selector}}}',
                   "{{aws_ecs_task_arn}}", "none", 18, y),
        ]
        y += PANEL_HEIGHT
    return {
        "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource",
                      "pluginId": "prometheus", "pluginName": "Prometheus"}],
        "title": f"{project}-{environment.name}: services (Prometheus)",
        "uid": f"{project}-{environment.name}-services",
        "tags": [project, environment.name],
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "panels": panels,
    }


def render(environments: Any) -> dict[str, str]:
    """`{file name: JSON text}` for every environment."""
    shared = environments.shared
    return {f"{e.name}.json": json.dumps(dashboard(e, shared.cicd, shared.project), indent=2, sort_keys=True) + "\n"
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
