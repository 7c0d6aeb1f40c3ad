"""`delivery verify`: a release counts only once ECS has rolled out what Terraform applied.

ECS is a scripted stand-in (moto's deployments are always COMPLETED at once); the API is a
local HTTP server that answers 200 from the start, as the old tasks (or a cache) would.
"""

from __future__ import annotations

import http.server
import io
import threading
from typing import Any

import pytest

import delivery.pipeline as pipeline
from delivery.pipeline import Context, verify
from tests.harness.project import ENVIRONMENTS_DIR

NEW = {name: f"arn:aws:ecs:eu-west-1:222222222222:task-definition/webapp-dev-{name}:8" for name in ("service1", "service2")}
OLD = {name: arn.replace(":8", ":7") for name, arn in NEW.items()}


def deployment(task_definition: str, state: str, status: str = "PRIMARY", running: int = 1, **extra: Any) -> dict:
    return {"status": status, "taskDefinition": task_definition, "rolloutState": state,
            "runningCount": running, "desiredCount": 1, **extra}


class Ecs:
    """describe_services answers from a script per service: each call takes the next step (the last repeats)."""

    def __init__(self, script: dict[str, list[list[dict]]]) -> None:
        self.script = script
        self.calls: dict[str, int] = {}

    def describe_services(self, cluster: str, services: list[str]) -> dict:
        assert cluster == "webapp-dev-api"
        (name,) = services
        service = name.removeprefix("webapp-dev-")
        count = self.calls[service] = self.calls.get(service, 0) + 1
        steps = self.script[service]
        return {"services": [{"serviceName": name, "deployments": steps[min(count, len(steps)) - 1]}], "failures": []}


    def describe_task_definition(self, taskDefinition: str) -> dict:  # noqa: N803 - boto3's keyword
        # As ECS returns a registered definition: secrets resolved to ARNs (service2 reads the payments key).
        secrets = [{"name": "DB_PASSWORD", "valueFrom": f"{DATABASE_SECRET}:password::"}]
        if "service2" in taskDefinition:
            secrets.append({"name": "PAYMENTS_API_KEY", "valueFrom": PAYMENTS_SECRET})
        return {"taskDefinition": {"containerDefinitions": [{"name": "app", "secrets": secrets}]}}


DATABASE_SECRET = "arn:aws:secretsmanager:eu-west-1:222222222222:secret:webapp-dev/database/master-AbCdEf"
PAYMENTS_SECRET = "arn:aws:secretsmanager:eu-west-1:222222222222:secret:webapp-dev/api/payments-api-key-GhIjKl"


class SecretsManager:
    """DescribeSecret: every secret has a current version unless named in `without_value`."""

    def __init__(self, without_value: tuple[str, ...] = ()) -> None:
        self.without_value = without_value

    def describe_secret(self, SecretId: str) -> dict:  # noqa: N803
        if SecretId in self.without_value:
            return {"ARN": SecretId}
        return {"ARN": SecretId, "VersionIdsToStages": {"v1": ["AWSCURRENT"]}}


def health_metric(service: str) -> dict:
    """A service's HealthMetrics output as the api stack states it (after apply: ARN suffixes)."""
    return {"namespace": "AWS/NetworkELB", "metric_name": "UnHealthyHostCount", "statistic": "Maximum",
            "period": 60, "healthy_at_most": 0,
            "dimensions": {"LoadBalancer": "net/webapp-dev-api/0123456789abcdef",
                           "TargetGroup": f"targetgroup/webapp-dev-{service}/0123456789abcdef"}}


class CloudWatch:
    """get_metric_statistics answers the latest UnHealthyHostCount per target group from a script."""

    def __init__(self, script: dict[str, list[float | None]]) -> None:
        self.script = script
        self.requests: list[dict] = []

    def get_metric_statistics(self, **request: Any) -> dict:
        self.requests.append(request)
        group = {d["Name"]: d["Value"] for d in request["Dimensions"]}["TargetGroup"]
        service = group.split("/")[1].removeprefix("webapp-dev-")
        steps = self.script.get(service, [0.0])
        value = steps.pop(0) if len(steps) > 1 else steps[0]
        if value is None:
            return {"Datapoints": []}
        return {"Datapoints": [{"Timestamp": 2, request["Statistics"][0]: value},
                               {"Timestamp": 1, request["Statistics"][0]: 99.0}]}


class FakeAws:
    def __init__(self, ecs: Ecs, secretsmanager: SecretsManager | None = None, cloudwatch: CloudWatch | None = None) -> None:
        self.ecs = ecs
        self.secretsmanager = secretsmanager or SecretsManager()
        self.cloudwatch = cloudwatch or CloudWatch({})

    def client(self, service: str, region: str, session: Any = None) -> Any:
        assert service in ("ecs", "secretsmanager", "cloudwatch") and region == "eu-west-1"
        return {"ecs": self.ecs, "secretsmanager": self.secretsmanager, "cloudwatch": self.cloudwatch}[service]


class Health(http.server.BaseHTTPRequestHandler):
    headers_seen: list[dict[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802
        Health.headers_seen.append(dict(self.headers))
        self.send_response(200 if self.path.split("?")[0].endswith("/health") else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api_url(monkeypatch):
    Health.headers_seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    outputs = {"Api_ClusterName": "webapp-dev-api",
               "Api_ServiceNames_1A2B3C4D": {n: f"webapp-dev-{n}" for n in NEW},
               "Api_TaskDefinitionArns_5E6F7A8B": NEW, "Api_Gateway_InvokeUrl_9C0D1E2F": url,
               "Api_HealthMetrics_3A4B5C6D": {n: health_metric(n) for n in NEW}}
    monkeypatch.setattr(pipeline, "_api_outputs", lambda context, environments, environment: outputs)
    yield url
    server.shutdown()


def run(script: dict[str, list[list[dict]]], environments_dir=ENVIRONMENTS_DIR, cloudwatch: CloudWatch | None = None,
        **options: Any) -> tuple[int, str, Ecs]:
    ecs = Ecs(script)
    context = Context(environments_dir, FakeAws(ecs, cloudwatch=cloudwatch), out=io.StringIO())  # type: ignore[arg-type]
    code = verify(context, "dev", poll_seconds=0, grace_seconds=2, sleep=lambda _: None, **options)
    return code, context.out.getvalue(), ecs


def rolling(name: str) -> list[list[dict]]:
    """Two polls with old and new tasks side by side, then the new revision alone, COMPLETED."""
    both = [deployment(NEW[name], "IN_PROGRESS"), deployment(OLD[name], "COMPLETED", status="ACTIVE")]
    return [both, both, [deployment(NEW[name], "COMPLETED")]]


def test_verify_waits_for_the_applied_task_definition_to_roll_out_then_calls_public_health(api_url):
    code, out, ecs = run({"service1": rolling("service1"), "service2": rolling("service2")})
    assert code == 0, out
    assert ecs.calls == {"service1": 3, "service2": 3}, "it kept polling while the old tasks still served"
    assert "waiting service1: IN_PROGRESS" in out
    assert f"ok      service1: {api_url}/service1/health answered 200" in out
    assert len(Health.headers_seen) == 1, "only service1's routes can be called without AWS credentials"
    assert "service2: verified by its ECS rollout only (its routes need AWS_IAM SigV4" in out


def test_stops_before_waiting_when_a_secret_the_tasks_read_has_no_value(api_url):
    from delivery.secrets import SecretMissing

    ecs = Ecs({"service1": rolling("service1"), "service2": rolling("service2")})
    context = Context(ENVIRONMENTS_DIR, FakeAws(ecs, SecretsManager((PAYMENTS_SECRET,))),  # type: ignore[arg-type]
                      out=io.StringIO())
    with pytest.raises(SecretMissing) as caught:
        verify(context, "dev", poll_seconds=0, grace_seconds=2, sleep=lambda _: None)
    assert str(caught.value).startswith(f"secret {PAYMENTS_SECRET} has no value; set it with aws secretsmanager "
                                        f"put-secret-value --secret-id {PAYMENTS_SECRET} --secret-string")
    assert ecs.calls == {} and not Health.headers_seen


def test_rejects_a_release_that_never_finishes_rolling_out_though_health_answers_200(api_url):
    stuck = [[deployment(NEW["service1"], "IN_PROGRESS"), deployment(OLD["service1"], "COMPLETED", status="ACTIVE")]]
    code, out, _ = run({"service1": stuck, "service2": rolling("service2")}, rollout_timeout_seconds=0)
    assert code == 1
    assert "FAILED  service1: not rolled out within 0 s" in out
    assert Health.headers_seen == [], "no health call counts before the rollout"


def test_rejects_a_release_ecs_rolled_back(api_url):
    rolled_back = [[deployment(OLD["service1"], "IN_PROGRESS"),
                    deployment(NEW["service1"], "FAILED", status="ACTIVE", running=0)]]
    code, out, ecs = run({"service1": rolled_back, "service2": rolling("service2")})
    assert code == 1 and ecs.calls["service1"] == 1, "a rollback fails at once"
    assert f"the primary deployment runs {OLD['service1']}, not {NEW['service1']}: ECS rolled the release back" in out


def test_rejects_a_failed_deployment(api_url):
    failed = [[deployment(NEW["service2"], "FAILED", rolloutStateReason="tasks failed to start")]]
    code, out, _ = run({"service1": rolling("service1"), "service2": failed})
    assert code == 1 and "FAILED  service2: the deployment of" in out and "tasks failed to start" in out


def test_public_probe_sends_the_required_headers_and_query_parameters(api_url, environments_copy):
    path = environments_copy / "dev.hcl"
    path.write_text(path.read_text().replace('    authorization = "NONE"\n', '    authorization = "NONE"\n'
                                             '    required_headers = ["X-Request-Id"]\n'
                                             '    required_query_parameters = ["probe"]\n'))
    code, out, _ = run({"service1": rolling("service1"), "service2": rolling("service2")},
                       environments_dir=environments_copy)
    assert code == 0, out
    (seen,) = Health.headers_seen
    assert seen.get("X-Request-Id") == "delivery-verify"
    assert "/service1/health?probe=delivery-verify answered 200" in out


def test_verify_waits_for_the_health_probe_metric_to_read_healthy(api_url):
    cloudwatch = CloudWatch({"service1": [None, 1.0, 0.0], "service2": [0.0]})
    code, out, _ = run({"service1": rolling("service1"), "service2": rolling("service2")}, cloudwatch=cloudwatch)
    assert code == 0, out
    assert "ok      service1: health probe UnHealthyHostCount (Maximum, AWS/NetworkELB) = 0" in out
    reads = [r for r in cloudwatch.requests if "webapp-dev-service1" in str(r["Dimensions"])]
    assert len(reads) == 3, "no datapoint and an unhealthy one were waited out"
    # It asks for exactly the output's metric (the one the service's alarm reads).
    metric = health_metric("service1")
    assert reads[0]["Namespace"] == metric["namespace"] and reads[0]["MetricName"] == metric["metric_name"]
    assert reads[0]["Statistics"] == [metric["statistic"]] and reads[0]["Period"] == metric["period"]
    assert {d["Name"]: d["Value"] for d in reads[0]["Dimensions"]} == metric["dimensions"]


def test_rejects_a_release_whose_tasks_keep_failing_their_health_probe(api_url):
    cloudwatch = CloudWatch({"service2": [2.0]})
    code, out, _ = run({"service1": rolling("service1"), "service2": rolling("service2")}, cloudwatch=cloudwatch)
    assert code == 1
    assert "FAILED  service2: health probe UnHealthyHostCount (Maximum, AWS/NetworkELB) read 2 after 2 s" in out


def test_a_worker_is_verified_by_its_rollout_alone(api_url, environments_copy, monkeypatch):
    """A worker has no route and no probe (tests/test_api_worker.py): verify waits for its rollout,
    calls no URL for it and reads no health metric of it (the HealthMetrics output has none)."""
    from tests.harness.edits import edit

    edit(environments_copy, "dev.hcl", "\n  # Flyway:", '\n  service "worker" {\n    image_repository = "webapp/worker"\n'
         '    image_tag = "1.0.0"\n    metrics_path = null\n  }\n\n  # Flyway:')
    worker = "arn:aws:ecs:eu-west-1:222222222222:task-definition/webapp-dev-worker:3"
    outputs = pipeline._api_outputs(None, None, "dev")  # the fixture's outputs, then the worker's rollout
    outputs = {**outputs, "Api_ServiceNames_1A2B3C4D": {**outputs["Api_ServiceNames_1A2B3C4D"], "worker": "webapp-dev-worker"},
               "Api_TaskDefinitionArns_5E6F7A8B": {**NEW, "worker": worker}}
    monkeypatch.setattr(pipeline, "_api_outputs", lambda context, environments, environment: outputs)
    cloudwatch = CloudWatch({"service1": [0.0], "service2": [0.0]})
    code, out, ecs = run({"service1": rolling("service1"), "service2": rolling("service2"),
                          "worker": [[deployment(worker, "COMPLETED")]]},
                         environments_dir=environments_copy, cloudwatch=cloudwatch)
    assert code == 0, out
    assert ecs.calls["worker"] == 1
    assert "ok      worker: a worker (no route, no probe): verified by its ECS rollout" in out
    assert not [r for r in cloudwatch.requests if "worker" in str(r["Dimensions"])]
    assert len(Health.headers_seen) == 1, "only service1's public health path was called"


# A canary: its candidate rolls out like a service (issue 18) ------------------------------------------

CANDIDATE_ARN = "arn:aws:ecs:eu-west-1:222222222222:task-definition/webapp-dev-service1-canary:3"


@pytest.fixture
def canary_dir(environments_copy, api_url, monkeypatch):
    """dev's release file runs a canary of service1; the state's outputs name its candidate."""
    (environments_copy / "dev.release.hcl").write_text(
        'canary "service1" {\n  image_repository = "webapp/service1"\n  image_tag = "2222222"\n'
        f'  image_digest = "sha256:{"cd" * 32}"\n  percent = 10\n}}\n')
    outputs = dict(pipeline._api_outputs(None, None, "dev"))
    outputs["Api_CanaryServiceNames_0A1B2C3D"] = {"service1": "webapp-dev-service1-canary"}
    outputs["Api_CanaryTaskDefinitionArns_4E5F6A7B"] = {"service1": CANDIDATE_ARN}
    monkeypatch.setattr(pipeline, "_api_outputs", lambda context, environments, environment: outputs)
    return environments_copy


def test_verify_waits_for_the_candidates_rollout_too(canary_dir):
    candidate = [[deployment(CANDIDATE_ARN, "IN_PROGRESS")], [deployment(CANDIDATE_ARN, "COMPLETED")]]
    code, out, ecs = run({"service1": rolling("service1"), "service2": rolling("service2"),
                          "service1-canary": candidate}, environments_dir=canary_dir)
    assert code == 0, out
    assert ecs.calls["service1-canary"] == 2
    assert "ok      service1 (canary): webapp-dev-service1-canary:3 rolled out" in out


def test_verify_fails_when_ecs_rolled_the_candidate_back(canary_dir):
    rolled_back = [[deployment(CANDIDATE_ARN.replace(":3", ":2"), "COMPLETED")]]
    code, out, _ = run({"service1": rolling("service1"), "service2": rolling("service2"),
                        "service1-canary": rolled_back}, environments_dir=canary_dir)
    assert code == 1
    assert f"FAILED  service1 (canary): the primary deployment runs {CANDIDATE_ARN.replace(':3', ':2')}" in out


def test_verify_refuses_a_canary_the_state_does_not_have_yet(canary_dir, monkeypatch):
    outputs = {k: v for k, v in pipeline._api_outputs(None, None, "dev").items() if "Canary" not in k}
    outputs["Api_CanaryServiceNames_0A1B2C3D"] = {}
    outputs["Api_CanaryTaskDefinitionArns_4E5F6A7B"] = {}
    monkeypatch.setattr(pipeline, "_api_outputs", lambda context, environments, environment: outputs)
    with pytest.raises(pipeline.DeployError, match="runs a canary of service1, which the <env>-api state does not"):
        run({"service1": rolling("service1"), "service2": rolling("service2")}, environments_dir=canary_dir)
