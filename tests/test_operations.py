"""Operating it (issue 22): health by probe, scaling on request count, the dashboard.

Expected values are literals from AWS's documentation: `AWS/NetworkELB` `UnHealthyHostCount`
with dimensions `LoadBalancer` and `TargetGroup` (NLB user guide, "CloudWatch metrics for your
Network Load Balancer"); API Gateway's `Count`, `4XXError`, `5XXError`, `Latency` with
`ApiName`, `Stage`, `Resource`, `Method` (API Gateway developer guide, "Amazon API Gateway
dimensions and metrics"); `ECS/ContainerInsights` `RunningTaskCount` by `ClusterName` and
`ServiceName`; `AWS/RDS` `CPUUtilization`, `DatabaseConnections`, `FreeStorageSpace`,
`ReplicaLag` by `DBInstanceIdentifier`; `AWS/CloudFront` by `DistributionId` and `Region = Global`
in us-east-1.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from modules.core.errors import ConfigError
from modules.environment import load_environments
from tests.harness.project import PROJECT
from tests.harness.synth import Stack

ENVIRONMENTS = ("dev", "stage", "prod")
SERVICES = {"service1": "Service1", "service2": "Service2"}


def output(stack: Stack, prefix: str) -> Any:
    (value,) = [o["value"] for name, o in stack.json["output"].items() if name.startswith(prefix + "_")]
    return value


def target_group_ref(stack: Stack, construct: str) -> str:
    (logical_id,) = [k for k in stack.resources("aws_lb_target_group") if k.startswith(f"Api_{construct}_TargetGroup_")]
    return logical_id


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_service_is_probed_on_its_health_path_with_its_codes(synth, env):
    stack = synth.stack(f"{env}-api")
    for construct in SERVICES.values():
        check = stack.resources("aws_lb_target_group")[target_group_ref(stack, construct)]["health_check"]
        # The design: healthy when /health answers 200; the NLB's HTTP check ignores the body.
        assert check["protocol"] == "HTTP" and check["path"] == "/health" and check["matcher"] == "200"
        assert check["port"] == "traffic-port" and check["enabled"] is True
        assert 2 <= check["timeout"] < check["interval"]


def test_configured_codes_and_timeout_reach_the_probe(environments_copy):
    from modules.api.config import ServiceConfig

    service = ServiceConfig(name="a", path_prefix="a", container_port=8080, image_repository="webapp/a",
                            image_tag="1", health_check_codes="200,204", health_check_timeout_seconds=3)
    assert service.health_check_codes == "200,204"
    for codes in ("2xx", "200-", "199", "600", "200;204"):
        with pytest.raises(Exception, match="health_check_codes"):
            ServiceConfig(name="a", path_prefix="a", container_port=8080, image_repository="webapp/a",
                          image_tag="1", health_check_codes=codes)
    with pytest.raises(Exception, match="health_check_timeout_seconds"):
        ServiceConfig(name="a", path_prefix="a", container_port=8080, image_repository="webapp/a", image_tag="1",
                      health_check_timeout_seconds=10)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_alert_and_verify_read_the_one_health_metric(synth, env):
    """The alarm that alerts (and rolls back) and the HealthMetrics output `delivery verify` reads
    (tests/test_delivery_verify.py shows verify asks CloudWatch for exactly that) name one metric."""
    stack = synth.stack(f"{env}-api")
    metrics = output(stack, "Api_HealthMetrics")
    assert set(metrics) == set(SERVICES)
    for service, construct in SERVICES.items():
        alarm = stack.resource("aws_cloudwatch_metric_alarm", f"Api/{construct}/UnhealthyHostsAlarm")
        metric = metrics[service]
        assert (metric["namespace"], metric["metric_name"]) == ("AWS/NetworkELB", "UnHealthyHostCount")
        assert (alarm["namespace"], alarm["metric_name"]) == (metric["namespace"], metric["metric_name"])
        assert alarm["statistic"] == metric["statistic"] and alarm["period"] == metric["period"]
        assert alarm["dimensions"] == metric["dimensions"]
        group = target_group_ref(stack, construct)
        assert metric["dimensions"]["TargetGroup"] == f"${{aws_lb_target_group.{group}.arn_suffix}}"
        assert alarm["threshold"] > metric["healthy_at_most"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_alert_reads_a_scrape_of_the_health_path(synth, env):
    for task in synth.stack(f"{env}-api").resources("aws_ecs_task_definition").values():
        for container in json.loads(task["container_definitions"]):
            for variable in container.get("environment", []):
                if variable["name"] == "AOT_CONFIG_CONTENT":
                    jobs = json.loads(variable["value"])["receivers"]["prometheus"]["config"]["scrape_configs"]
                    assert [job["metrics_path"] for job in jobs] == ["/metrics"]


def request_policies(stack: Stack) -> dict[str, dict]:
    return {p["name"]: p for p in stack.resources("aws_appautoscaling_policy").values()
            if "customized_metric_specification" in p["target_tracking_scaling_policy_configuration"]}


@pytest.mark.parametrize("env, targets", [
    ("dev", {"service1": 300}), ("stage", {}), ("prod", {"service1": 600}),
])
def test_request_count_targets_track_their_own_routes_per_running_task(synth, env, targets):
    stack = synth.stack(f"{env}-api")
    policies = request_policies(stack)
    assert set(policies) == {f"webapp-{env}-{s}-requests" for s in targets}
    for service, target in targets.items():
        policy = policies[f"webapp-{env}-{service}-requests"]
        configuration = policy["target_tracking_scaling_policy_configuration"]
        assert policy["policy_type"] == "TargetTrackingScaling" and configuration["target_value"] == target
        metrics = {m["id"]: m for m in configuration["customized_metric_specification"]["metrics"]}
        requests = [m for m in metrics.values() if "metric_stat" in m
                    and m["metric_stat"]["metric"]["metric_name"] == "Count"]
        resources = set()
        for metric in requests:
            stat = metric["metric_stat"]
            assert stat["metric"]["namespace"] == "AWS/ApiGateway" and stat["stat"] == "Sum"
            dimensions = {d["name"]: d["value"] for d in stat["metric"]["dimensions"]}
            assert dimensions["ApiName"] == f"webapp-{env}-api" and dimensions["Stage"] == "v1"
            resources.add(dimensions["Resource"])
        # Its own resources, nobody else's.
        assert resources == {f"/{service}", f"/{service}/{{proxy+}}"}
        (tasks,) = [m for m in metrics.values() if "metric_stat" in m
                    and m["metric_stat"]["metric"]["metric_name"] == "RunningTaskCount"]
        assert tasks["metric_stat"]["metric"]["namespace"] == "ECS/ContainerInsights"
        dimensions = {d["name"]: d["value"] for d in tasks["metric_stat"]["metric"]["dimensions"]}
        assert dimensions["ServiceName"] == f"webapp-{env}-{service}"
        (result,) = [m for m in metrics.values() if m.get("return_data")]
        used = set(re.findall(r"[a-z_][a-z0-9_]*", result["expression"])) - {"FILL"}
        assert used == {m["id"] for m in requests} | {"tasks"} and result["expression"].endswith("/ tasks")
        # Beside CPU and memory on the same scalable target.
        names = {p["name"] for p in stack.resources("aws_appautoscaling_policy").values()
                 if p["resource_id"] == policy["resource_id"]}
        assert names == {f"webapp-{env}-{service}-{kind}" for kind in ("cpu", "memory", "requests")}


def test_schedules_set_min_and_max_by_cron(synth):
    actions = {a["name"]: a for a in synth.stack("prod-api").resources("aws_appautoscaling_scheduled_action").values()}
    assert set(actions) == {"webapp-prod-service1-working-hours", "webapp-prod-service1-nights"}
    day = actions["webapp-prod-service1-working-hours"]
    assert day["schedule"] == "cron(0 7 ? * MON-FRI *)" and day["timezone"] == "Europe/Berlin"
    assert day["scalable_target_action"] == {"min_capacity": "6", "max_capacity": "12"}
    # The schedules own the bounds once they run: Terraform does not reset them.
    target = synth.stack("prod-api").resource("aws_appautoscaling_target", "Api/Service1/ScalingTarget")
    assert target["lifecycle"]["ignore_changes"] == ["min_capacity", "max_capacity"]
    untouched = synth.stack("prod-api").resource("aws_appautoscaling_target", "Api/Service2/ScalingTarget")
    assert "lifecycle" not in untouched


def test_a_schedule_cannot_raise_the_ceiling():
    from modules.api.config import ScheduleConfig, ServiceConfig

    with pytest.raises(ConfigError, match="its ceiling"):
        ServiceConfig(name="a", path_prefix="a", container_port=8080, image_repository="webapp/a", image_tag="1",
                      max_count=4, schedule=(ScheduleConfig(name="peak", cron="cron(0 7 * * ? *)", min_count=2,
                                                            max_count=8),))


def load_error(directory: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_environments(directory)
    return caught.value


def test_request_target_needs_container_insights(environments_copy):
    path = environments_copy / "dev.hcl"
    path.write_text(path.read_text().replace("  service \"service1\" {", "  container_insights = false\n\n"
                                             "  service \"service1\" {", 1))
    error = load_error(environments_copy)
    assert error.key == "api.service[0].requests_per_task_target" and "container_insights" in str(error)


def test_a_schedule_must_fit_the_service(environments_copy):
    path = environments_copy / "dev.hcl"
    path.write_text(path.read_text().replace('cron      = "cron(0 7 ? * MON-FRI *)"', 'cron = "0 7 * * *"', 1))
    error = load_error(environments_copy)
    assert error.key.endswith("cron") and "six fields" in str(error)


def test_metrics_path_may_be_null_and_the_health_path_stays(environments_copy):
    from modules.api.config import ServiceConfig

    service = ServiceConfig(name="worker", path_prefix="worker", container_port=8080,
                            image_repository="webapp/worker", image_tag="1", metrics_path=None)
    assert service.metrics_path is None and service.health_check_path == "/health"


@pytest.fixture(scope="module")
def dev_without_service2_metrics(tmp_path_factory):
    """dev synthesized with `metrics_path = null` on service2 (service1 keeps `/metrics`)."""
    from tests.harness.edits import edit
    from tests.harness.project import ENVIRONMENTS_DIR
    from tests.harness.synth import synthesize

    root = tmp_path_factory.mktemp("no-metrics-path")
    environments_dir = root / "environments"
    shutil.copytree(ENVIRONMENTS_DIR, environments_dir)
    edit(environments_dir, "dev.hcl", 'image_repository = "webapp/service2"',
         'image_repository = "webapp/service2"\n    metrics_path     = null')
    return synthesize(load_environments(environments_dir, ("dev",)), root / "cdktf.out").stack("dev-api")


def containers_of(stack: Stack, family: str) -> dict[str, dict]:
    (task,) = [t for t in stack.resources("aws_ecs_task_definition").values() if t["family"] == family]
    return {c["name"]: c for c in json.loads(task["container_definitions"])}


def test_a_service_without_metrics_path_is_still_probed_in_the_synthesized_stack(dev_without_service2_metrics):
    """The design's health check is the NLB's probe of the health path, whatever the service
    exports: without a metrics path nothing is scraped (no collector sidecar, no metrics write
    permission), and the probe, its alarm and the metric `delivery verify` reads all stay."""
    stack = dev_without_service2_metrics
    assert set(containers_of(stack, "webapp-dev-service2")) == {"service2"}
    assert set(containers_of(stack, "webapp-dev-service1")) == {"service1", "otel-collector"}
    policies = {r["//"]["metadata"]["path"] for r in stack.resources("aws_iam_role_policy").values()}
    assert "dev-api/Api/Service1/CollectorPolicy" in policies
    assert "dev-api/Api/Service2/CollectorPolicy" not in policies
    check = stack.resources("aws_lb_target_group")[target_group_ref(stack, "Service2")]["health_check"]
    assert check["enabled"] is True and check["protocol"] == "HTTP"
    assert check["path"] == "/health" and check["matcher"] == "200"
    alarm = stack.resource("aws_cloudwatch_metric_alarm", "Api/Service2/UnhealthyHostsAlarm")
    metric = output(stack, "Api_HealthMetrics")["service2"]
    assert (alarm["namespace"], alarm["metric_name"]) == ("AWS/NetworkELB", "UnHealthyHostCount")
    assert alarm["dimensions"] == metric["dimensions"]
    assert metric["dimensions"]["TargetGroup"] == f"${{aws_lb_target_group.{target_group_ref(stack, 'Service2')}.arn_suffix}}"
    # The container's own health check calls the health path too (ECS restarts a task that fails it).
    (command,) = [c["healthCheck"]["command"] for c in containers_of(stack, "webapp-dev-service2").values()]
    assert command[-1].startswith("curl -fsS http://localhost:8081/health")


def dashboard(stack: Stack) -> tuple[dict, list[dict]]:
    (resource,) = stack.resources("aws_cloudwatch_dashboard").values()
    return resource, json.loads(resource["dashboard_body"])["widgets"]


def cloudfront_searches(widgets: list[dict]) -> dict[str, tuple[str, str]]:
    """{metric name: (SEARCH expression, widget region)} of the CloudFront panels."""
    found = {}
    for widget in widgets:
        for row in widget["properties"].get("metrics", []) if widget["type"] == "metric" else []:
            if isinstance(row[0], dict) and "AWS/CloudFront" in row[0]["expression"]:
                (name,) = re.findall(r'MetricName=\\?"([A-Za-z0-9]+)', row[0]["expression"])
                found[name] = (row[0]["expression"], widget["properties"]["region"])
    return found


def metric_rows(widgets: list[dict]) -> list[tuple[str, str, dict[str, str], str]]:
    rows = []
    for widget in widgets:
        if widget["type"] != "metric":
            continue
        for row in widget["properties"]["metrics"]:
            if isinstance(row[0], dict):
                continue  # a SEARCH expression (cloudfront_searches)
            plain = [item for item in row if not isinstance(item, dict)]
            namespace, name, rest = plain[0], plain[1], plain[2:]
            rows.append((namespace, name, dict(zip(rest[::2], rest[1::2], strict=True)),
                         widget["properties"]["region"]))
    return rows


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_dashboard_names_every_service_the_database_and_the_distribution(synth, env):
    stack = synth.stack(f"{env}-api")
    resource, widgets = dashboard(stack)
    assert resource["dashboard_name"] == f"webapp-{env}"
    # Widgets stay on the 24-column grid.
    assert all(0 <= w["x"] and w["x"] + w["width"] <= 24 for w in widgets)
    rows = metric_rows(widgets)
    namespaces = {row[0] for row in rows}
    assert {"AWS/ApiGateway", "AWS/ECS", "AWS/NetworkELB", "AWS/RDS"} <= namespaces
    for service, construct in SERVICES.items():
        api = [d for ns, _, d, _ in rows if ns == "AWS/ApiGateway" and d["Resource"].startswith(f"/{service}")]
        assert {n for ns, n, d, _ in rows if ns == "AWS/ApiGateway" and d["Resource"] == f"/{service}"} == {
            "Count", "4XXError", "5XXError", "Latency"}
        assert all(d["ApiName"] == f"webapp-{env}-api" and d["Stage"] == "v1" for d in api)
        ecs = {n for ns, n, d, _ in rows if d.get("ServiceName") == f"webapp-{env}-{service}"}
        assert ecs == {"CPUUtilization", "MemoryUtilization", "RunningTaskCount"}
        group = f"${{aws_lb_target_group.{target_group_ref(stack, construct)}.arn_suffix}}"
        assert {n for ns, n, d, _ in rows if d.get("TargetGroup") == group} == {"UnHealthyHostCount", "HealthyHostCount"}
    percentiles = {o["stat"] for w in widgets if w["type"] == "metric" for row in w["properties"]["metrics"]
                   for o in row if isinstance(o, dict) and "stat" in o}
    assert {"p50", "p99"} <= percentiles
    searches = cloudfront_searches(widgets)
    # The distribution id is not the API stack's to know (README "On call"): its account's
    # distributions, by the metric and Region = Global CloudFront publishes in us-east-1.
    assert {"Requests", "4xxErrorRate", "5xxErrorRate"} <= set(searches)
    for expression, region in searches.values():
        assert region == "us-east-1" and "{AWS/CloudFront,DistributionId,Region}" in expression
        assert 'Region="Global"' in expression
    (alarms,) = [w for w in widgets if w["type"] == "alarm"]
    assert len(alarms["properties"]["alarms"]) == 2 * len(SERVICES)


def test_dashboard_dimensions_exist_in_the_synthesized_stacks(synth):
    """Every plain dimension value names a resource the stacks create; every token, one of its own."""
    api, database = synth.stack("prod-api"), synth.stack("prod-database")
    _, widgets = dashboard(api)
    instances = {i["identifier"] for i in database.resources("aws_db_instance").values()}
    rds = {d["DBInstanceIdentifier"]: n for ns, n, d, _ in metric_rows(widgets) if ns == "AWS/RDS"}
    assert set(rds) == instances == {"webapp-prod-postgres", "webapp-prod-postgres-replica-0"}
    assert rds["webapp-prod-postgres-replica-0"] == "ReplicaLag"
    ecs_services = {s["name"] for s in api.resources("aws_ecs_service").values()}
    clusters = {f"${{aws_ecs_cluster.{k}.name}}" for k in api.resources("aws_ecs_cluster")}
    for _, _, dimensions, _ in metric_rows(widgets):
        if "ServiceName" in dimensions:
            assert dimensions["ServiceName"] in ecs_services and dimensions["ClusterName"] in clusters
        for value in dimensions.values():
            for reference in re.findall(r"\$\{([a-z_]+)\.([A-Za-z0-9_]+)\.", value):
                if reference[0] != "data":
                    assert reference[1] in api.resources(reference[0]), reference
    # The cache hit rate exists only with the distribution's additional metrics (prod).
    frontend = synth.stack("prod-frontend")
    (subscription,) = frontend.resources("aws_cloudfront_monitoring_subscription").values()
    assert subscription["distribution_id"].startswith("${aws_cloudfront_distribution.")
    assert "CacheHitRate" in cloudfront_searches(widgets)
    _, dev_widgets = dashboard(synth.stack("dev-api"))
    assert not synth.stack("dev-frontend").resources("aws_cloudfront_monitoring_subscription")
    assert "CacheHitRate" not in cloudfront_searches(dev_widgets), "dev has no additional metrics"


GRAFANA_DIR = PROJECT / "docs" / "grafana"


def test_grafana_dashboards_are_generated_from_the_service_lists(environments, tmp_path):
    from modules.api.grafana import main

    assert main([str(PROJECT / "environments"), str(tmp_path)]) == 0
    for environment in environments.environments:
        committed = GRAFANA_DIR / f"{environment.name}.json"
        assert committed.read_text() == (tmp_path / committed.name).read_text(), "run `make grafana`"
        model = json.loads(committed.read_text())
        rows = [p["title"] for p in model["panels"] if p["type"] == "row"]
        assert rows == [s.name for s in environment.api.service]
        queries = [t["expr"] for p in model["panels"] for t in p.get("targets", []) if "expr" in t]
        for service in environment.api.service:
            # The labels and job the collector writes (tests/test_cicd_collector.py reads them there).
            mine = [q for q in queries if f'environment="{environment.name}", service="{service.name}"' in q]
            assert any(q.startswith('up{job="metrics"') for q in mine)
            assert any('code=~"5.."' in q and "http_requests_total" in q for q in mine)
        assert {p["datasource"]["uid"] for p in model["panels"] if "datasource" in p} == {
            "${DS_PROMETHEUS}", "${DS_CLOUDWATCH}"}
        assert [i["name"] for i in model["__inputs"]] == ["DS_PROMETHEUS", "DS_CLOUDWATCH"]
        assert {i["pluginId"] for i in model["__inputs"]} == {"prometheus", "cloudwatch"}


def api_methods(stack: Stack) -> set[tuple[str, str]]:
    """(Resource, Method) of every method the stack's REST API has, the resource as its full path."""
    resources = stack.resources("aws_api_gateway_resource")

    def path(reference: str) -> str:
        match = re.fullmatch(r"\$\{aws_api_gateway_resource\.(\w+)\.id\}", reference)
        if match is None:
            assert reference.endswith(".root_resource_id}"), reference
            return ""
        resource = resources[match.group(1)]
        return f"{path(resource['parent_id'])}/{resource['path_part']}"

    return {(path(m["resource_id"]), m["http_method"]) for m in stack.resources("aws_api_gateway_method").values()}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_grafana_latency_panels_query_metrics_the_stacks_publish(synth, env):
    """Every CloudWatch query of docs/grafana/<env>.json names API Gateway's `Latency` (p50 and
    p99) under dimensions the synthesized api stack creates: its REST API's name, its stage, and a
    method that exists, per route of each service; the stage publishes per-method metrics."""
    stack = synth.stack(f"{env}-api")
    model = json.loads((GRAFANA_DIR / f"{env}.json").read_text())
    (api_name,) = [a["name"] for a in stack.resources("aws_api_gateway_rest_api").values()]
    (stage,) = [s["stage_name"] for s in stack.resources("aws_api_gateway_stage").values()]
    methods = api_methods(stack)
    settings = [s for s in stack.resources("aws_api_gateway_method_settings").values() if s["method_path"] == "*/*"]
    assert [s["settings"]["metrics_enabled"] for s in settings] == [True]
    latency = [p for p in model["panels"] if p.get("datasource", {}).get("type") == "cloudwatch"]
    assert [p["title"] for p in latency] == [f"{s}: API latency p50 / p99" for s in SERVICES]
    for service, panel in zip(SERVICES, latency, strict=True):
        seen = set()
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "cloudwatch", "uid": "${DS_CLOUDWATCH}"}
            assert (target["namespace"], target["metricName"]) == ("AWS/ApiGateway", "Latency")
            assert target["queryMode"] == "Metrics" and target["matchExact"] is True
            assert target["region"] == "eu-west-1"  # environments/<env>.hcl region
            dimensions = target["dimensions"]
            assert set(dimensions) == {"ApiName", "Stage", "Resource", "Method"}
            assert dimensions["ApiName"] == api_name and dimensions["Stage"] == stage
            route = (dimensions["Resource"], dimensions["Method"])
            assert route in methods, route
            assert route[0] in (f"/{service}", f"/{service}/{{proxy+}}")
            seen.add((target["statistic"], *route))
        # p50 and p99 of every method the service has.
        mine = {m for m in methods if m[0] in (f"/{service}", f"/{service}/{{proxy+}}")}
        assert seen == {(statistic, *m) for statistic in ("p50", "p99") for m in mine}
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])


def test_grafana_reads_cloudwatch_through_each_environments_query_role(synth):
    """The data source the latency panels use can read CloudWatch: the per-environment query role
    Grafana assumes allows GetMetricData and ListMetrics, and the workspace lists CloudWatch."""
    cicd = synth.stack("shared-cicd")
    documents = cicd.data("aws_iam_policy_document")
    roles = {r["name"]: r for r in cicd.resources("aws_iam_role").values()}
    for env in ENVIRONMENTS:
        assert f"webapp-{env}-grafana-query" in roles
        (document,) = [d for d in documents.values()
                       if d["//"]["metadata"]["path"].endswith(f"/{env.capitalize()}/QueryPermissions")]
        (read,) = [s for s in document["statement"] if s["sid"] == "ReadCloudWatchMetrics"]
        assert sorted(read["actions"]) == ["cloudwatch:GetMetricData", "cloudwatch:ListMetrics"]
        assert read["resources"] == ["*"]  # CloudWatch has no resource types for these actions


# The collector configuration, checked against the components' documented settings: no
# collector binary can be had here (no Docker engine; the ADOT and contrib collectors are not on
# PyPI, npm or Debian). Checked again in December 2026: the collector's Go modules are on the Go
# module proxy (go.opentelemetry.io/collector/otelcol v0.165.0; contrib v0.165.1 prometheusreceiver,
# sigv4authextension, prometheusremotewriteexporter), but building a collector from them needs a
# Go toolchain far newer than Debian's golang-go 1.19, the only one apt offers here, and a
# toolchain download is not allowed. Keys from the opentelemetry-collector-contrib READMEs at v0.102.0 (what
# ADOT v0.40.0 builds on): receiver/prometheusreceiver (config: a Prometheus configuration,
# scrape_configs with job_name, metrics_path, scrape_interval, scrape_timeout, static_configs
# targets/labels), exporter/prometheusremotewriteexporter (endpoint, auth.authenticator,
# resource_to_telemetry_conversion.enabled), extension/sigv4authextension (region, service,
# assume_role.arn / sts_region), processor/resourcedetectionprocessor (detectors, timeout,
# override; `ecs` a detector), processor/batchprocessor (timeout).
DOCUMENTED = {
    "extensions": {"sigv4auth": {"region", "service", "assume_role"}},
    "receivers": {"prometheus": {"config"}},
    "processors": {"resourcedetection": {"detectors", "timeout", "override"}, "batch": {"timeout"}},
    "exporters": {"prometheusremotewrite": {"endpoint", "auth", "resource_to_telemetry_conversion"}},
}
SCRAPE_KEYS = {"job_name", "metrics_path", "scrape_interval", "scrape_timeout", "static_configs"}
ADOT_V0_40_COMPONENTS = {"sigv4auth", "prometheus", "resourcedetection", "batch", "prometheusremotewrite"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_collector_config_uses_only_documented_settings_of_components_adot_ships(synth, env):
    for task in synth.stack(f"{env}-api").resources("aws_ecs_task_definition").values():
        for container in json.loads(task["container_definitions"]):
            for variable in container.get("environment", []):
                if variable["name"] != "AOT_CONFIG_CONTENT":
                    continue
                config = json.loads(variable["value"])
                for kind, documented in DOCUMENTED.items():
                    for component_id, settings in config[kind].items():
                        component = component_id.split("/")[0]
                        assert component in ADOT_V0_40_COMPONENTS and component in documented, component_id
                        assert set(settings) <= documented[component], (component_id, settings)
                for job in config["receivers"]["prometheus"]["config"]["scrape_configs"]:
                    assert set(job) <= SCRAPE_KEYS
                    assert re.fullmatch(r"\d+s", job["scrape_interval"]) and re.fullmatch(r"\d+s", job["scrape_timeout"])
                assert config["processors"]["resourcedetection/ecs"]["detectors"] == ["ecs"]
                pipeline = config["service"]["pipelines"]["metrics"]
                for kind in ("receivers", "processors", "exporters"):
                    assert set(pipeline[kind]) <= set(config[kind]), "a pipeline names only defined components"
                assert set(config["service"]["extensions"]) <= set(config["extensions"])


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_readme_dashboard_picture_is_drawn_from_the_synthesized_dashboard(synth, env):
    from diagrams_gen.dashboard import svg, title, widgets

    committed = (PROJECT / "docs" / "architecture" / f"{env}-dashboard.svg").read_text()
    assert committed == svg(synth.outdir, env), "run `make diagrams`"
    for widget in widgets(synth.outdir, env):
        assert html.escape(title(widget)) in committed
