"""`python -m delivery canary start|step|promote|abort|judge` and the release scope of a canary step.

ECR and CloudWatch are stand-ins answering as the AWS API references describe (ECR DescribeImages,
BatchGetImage, PutImage; CloudWatch GetMetricData MetricDataResults: Id, Timestamps, Values, newest
first). The judge's recorded series are shaped as API Gateway reports a canary: `AWS/ApiGateway`
metrics with Stage = `<stage>/Canary` for the canary's requests and `<stage>` for the stable
version's (API Gateway developer guide, "Set up an API Gateway canary release deployment").
"""

from __future__ import annotations

import datetime
import io
from pathlib import Path
from typing import Any

import pytest

from delivery import DeployError, UsageError
from delivery import canary as canary_commands
from delivery.pipeline import Context
from delivery.summary import Change, StackChanges
from modules.release import Release, ReleasedImage, load_release, release_path, write_release

REGISTRY = "111111111111"
STABLE = "sha256:" + "ab" * 32
CANDIDATE = "sha256:" + "cd" * 32


class Ecr:
    """Images by digest; put_image records the tags it adds."""

    def __init__(self, digests: set[str]) -> None:
        self.digests = digests
        self.tagged: list[tuple[str, str]] = []

    def describe_images(self, registryId: str, repositoryName: str, imageIds: list[dict]) -> dict:  # noqa: N803
        (image_id,) = imageIds
        digest = image_id.get("imageDigest")
        if digest not in self.digests:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "ImageNotFoundException", "Message": "not found"}}, "DescribeImages")
        return {"imageDetails": [{"imageDigest": digest, "repositoryName": repositoryName}]}

    def batch_get_image(self, registryId: str, repositoryName: str, imageIds: list[dict],  # noqa: N803
                        acceptedMediaTypes: list[str]) -> dict:  # noqa: N803
        return {"images": [{"imageId": imageIds[0], "imageManifest": "{}",
                            "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json"}]}

    def put_image(self, registryId: str, repositoryName: str, imageManifest: str, imageTag: str,  # noqa: N803
                  **extra: Any) -> dict:
        self.tagged.append((repositoryName, imageTag))
        return {}


class Aws:
    def __init__(self, **clients: Any) -> None:
        self.clients = clients

    def client(self, service: str, region: str, session: Any = None) -> Any:
        return self.clients[service]


def pin(directory: Path, env: str, digest: str, tag: str) -> None:
    write_release(release_path(directory, env), Release().with_image(ReleasedImage(
        name="service1", image_repository="webapp/service1", image_tag=tag, image_digest=digest)))


@pytest.fixture
def world(environments_copy: Path) -> tuple[Context, Ecr, Path]:
    """prod runs service1 `1111111` (STABLE); stage runs `2222222` (CANDIDATE), approved for prod."""
    pin(environments_copy, "prod", STABLE, "1111111")
    pin(environments_copy, "stage", CANDIDATE, "2222222")
    ecr = Ecr({STABLE, CANDIDATE})
    context = Context(environments_copy, Aws(ecr=ecr), out=io.StringIO())  # type: ignore[arg-type]
    return context, ecr, environments_copy


def prod_release(directory: Path) -> Release:
    found = load_release(release_path(directory, "prod"))
    assert found is not None
    return found


def test_start_pins_the_previous_environments_digest_as_a_canary_at_ten_percent(world):
    context, ecr, directory = world
    canary_commands.start(context, "prod", service="service1")
    release = prod_release(directory)
    (running,) = release.canary
    assert (running.name, running.image_tag, running.image_digest, running.percent) == (
        "service1", "2222222", CANDIDATE, 10.0)
    assert release.image("service1").image_digest == STABLE  # the stable version is untouched
    text = release_path(directory, "prod").read_text()
    assert 'canary "service1" {' in text and "percent          = 10\n" in text
    out = context.out.getvalue()
    assert '+canary "service1" {' in out and "+  percent          = 10" in out  # the diff, as release prints it
    assert ecr.tagged == [("webapp/service1", "release-prod-2222222")]  # kept by the lifecycle policy


def test_start_refuses_a_second_canary_of_the_same_service(world):
    context, _, directory = world
    canary_commands.start(context, "prod", service="service1")
    before = release_path(directory, "prod").read_text()
    with pytest.raises(DeployError, match="at most one canary per service"):
        canary_commands.start(context, "prod", service="service1")
    assert release_path(directory, "prod").read_text() == before


def test_start_refuses_the_first_environment_which_rolls(world):
    context, _, _ = world
    with pytest.raises(UsageError, match="dev is the first environment of promotion_order: its releases roll"):
        canary_commands.start(context, "dev", service="service1")


def test_start_refuses_a_digest_gone_from_ecr_and_writes_nothing(world):
    context, ecr, directory = world
    ecr.digests.discard(CANDIDATE)
    before = release_path(directory, "prod").read_text()
    with pytest.raises(DeployError, match="no longer in ECR"):
        canary_commands.start(context, "prod", service="service1")
    assert release_path(directory, "prod").read_text() == before and ecr.tagged == []


def test_start_refuses_what_already_runs_as_the_stable_version(world):
    context, _, directory = world
    pin(directory, "stage", STABLE, "1111111")
    with pytest.raises(DeployError, match="nothing to canary"):
        canary_commands.start(context, "prod", service="service1")


def test_step_raises_the_share_and_refuses_to_lower_it(world):
    context, _, directory = world
    canary_commands.start(context, "prod", service="service1")
    canary_commands.step(context, "prod", service="service1", percent=25)
    assert prod_release(directory).canary[0].percent == 25.0
    assert "-  percent          = 10\n+  percent          = 25" in context.out.getvalue()
    with pytest.raises(UsageError, match="step raises the share"):
        canary_commands.step(context, "prod", service="service1", percent=20)
    with pytest.raises(UsageError, match="--percent must be above 0 and below 100"):
        canary_commands.step(context, "prod", service="service1", percent=100)


def test_promote_makes_the_candidate_stable_and_removes_the_canary(world):
    context, _, directory = world
    canary_commands.start(context, "prod", service="service1")
    canary_commands.promote(context, "prod", service="service1")
    release = prod_release(directory)
    assert release.canary == ()
    stable = release.image("service1")
    assert (stable.image_tag, stable.image_digest) == ("2222222", CANDIDATE)


def test_abort_removes_the_canary_and_leaves_the_stable_version(world):
    context, _, directory = world
    before = release_path(directory, "prod").read_text()
    canary_commands.start(context, "prod", service="service1")
    canary_commands.abort(context, "prod", service="service1")
    assert release_path(directory, "prod").read_text() == before


@pytest.mark.parametrize("command", ["step", "promote", "abort", "judge"])
def test_every_step_needs_a_running_canary(world, command):
    context, _, _ = world
    options = {"step": {"percent": 50.0}, "judge": {"bake_minutes": 10}}.get(command, {})
    with pytest.raises(UsageError, match="runs no canary of service1"):
        getattr(canary_commands, command)(context, "prod", service="service1", **options)


# judge -----------------------------------------------------------------------------------------------

NOW = datetime.datetime(2026, 12, 6, 9, 30, 42, tzinfo=datetime.UTC)
# prod's service1 routes: ANY on both resources and the cached GET methods (prod has a stage cache).
ROUTES = [("/service1", "ANY"), ("/service1", "GET"), ("/service1/{proxy+}", "ANY"), ("/service1/{proxy+}", "GET")]


def minutes(count: int) -> list[datetime.datetime]:
    """The bake's one-minute periods, newest first (GetMetricData's default ScanBy)."""
    end = NOW.replace(second=0)
    return [end - datetime.timedelta(minutes=m + 1) for m in range(count)]


class CloudWatch:
    """GetMetricData answering recorded series: `{(stage, resource, method, metric): [value per minute]}`;
    a metric without data answers empty Timestamps and Values, as CloudWatch does."""

    def __init__(self, series: dict[tuple[str, str, str, str], list[float]]) -> None:
        self.series = series
        self.requests: list[dict] = []

    def get_metric_data(self, MetricDataQueries: list[dict], StartTime: Any, EndTime: Any,  # noqa: N803
                        **extra: Any) -> dict:
        self.requests.append({"queries": MetricDataQueries, "start": StartTime, "end": EndTime})
        results = []
        for query in MetricDataQueries:
            stat = query["MetricStat"]
            metric = stat["Metric"]
            assert metric["Namespace"] == "AWS/ApiGateway" and stat["Period"] == 60
            dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
            assert dims["ApiName"] == "webapp-prod-api"
            values = self.series.get((dims["Stage"], dims["Resource"], dims["Method"], metric["MetricName"]), [])
            results.append({"Id": query["Id"], "Label": metric["MetricName"], "StatusCode": "Complete",
                            "Timestamps": minutes(len(values)), "Values": values})
        return {"MetricDataResults": results, "Messages": []}


def recorded(canary: tuple[list[float], list[float], list[float]],
             stable: tuple[list[float], list[float], list[float]]) -> dict:
    """Count, 5XXError, Latency per minute on `/service1/{proxy+}` ANY (where the traffic is), per stage."""
    series = {}
    for stage, (count, errors, latency) in (("v1/Canary", canary), ("v1", stable)):
        series[(stage, "/service1/{proxy+}", "ANY", "Count")] = count
        series[(stage, "/service1/{proxy+}", "ANY", "5XXError")] = errors
        series[(stage, "/service1/{proxy+}", "ANY", "Latency")] = latency
    return series


def judged(world, series: dict) -> tuple[int, str, CloudWatch]:
    context, _, _ = world
    canary_commands.start(context, "prod", service="service1")
    cloudwatch = CloudWatch(series)
    context.aws.clients["cloudwatch"] = cloudwatch
    context.out = io.StringIO()
    code = canary_commands.judge(context, "prod", service="service1", bake_minutes=10, now=lambda: NOW)
    return code, context.out.getvalue(), cloudwatch


# prod's thresholds are the defaults: 100 requests, +1 point of 5XX, 1.5 x latency + 50 ms.
def test_judge_promotes_a_candidate_as_good_as_the_stable_version(world):
    code, out, cloudwatch = judged(world, recorded(
        canary=([20] * 10, [0] * 9 + [1], [110, 120, 100, 130, 115, 105, 125, 110, 120, 115]),
        stable=([180] * 10, [1] * 10, [100] * 10)))
    assert code == 0, out
    assert "canary         200 requests, 1 5XX (0.50%)" in out and "PROMOTE" in out
    (request,) = cloudwatch.requests
    assert request["end"] == NOW.replace(second=0) and request["start"] == NOW.replace(second=0, minute=20)
    asked = {(q["MetricStat"]["Metric"]["Dimensions"][1]["Value"], q["MetricStat"]["Metric"]["Dimensions"][2]["Value"],
              q["MetricStat"]["Metric"]["Dimensions"][3]["Value"]) for q in request["queries"]}
    assert asked == {(stage, resource, method) for stage in ("v1", "v1/Canary") for resource, method in ROUTES}


def test_judge_aborts_a_candidate_answering_more_5xx(world):
    code, out, _ = judged(world, recorded(
        canary=([20] * 10, [2] * 10, [100] * 10),
        stable=([180] * 10, [1] * 10, [100] * 10)))
    assert code == 3, out
    assert "5XX rate 10.00% against the stable version's 0.56%" in out and "ABORT" in out


def test_judge_aborts_a_slow_candidate(world):
    code, out, _ = judged(world, recorded(
        canary=([20] * 10, [0] * 10, [400] * 10),
        stable=([180] * 10, [0] * 10, [100] * 10)))
    assert code == 3, out
    assert "average latency 400 ms against the stable version's 100 ms: above 200 ms" in out


def test_judge_cannot_decide_on_too_little_traffic(world):
    code, out, _ = judged(world, recorded(
        canary=([4] * 10, [4] * 10, [900] * 10),
        stable=([36] * 10, [0] * 10, [100] * 10)))
    assert code == 1, out
    assert "the candidate served 40 requests, fewer than canary_min_requests (100)" in out and "UNDECIDED" in out


def test_judge_reads_nothing_as_too_little_traffic(world):
    code, out, _ = judged(world, {})
    assert code == 1 and "served 0 requests" in out


# release scope --------------------------------------------------------------------------------------

def plan(*entries: dict) -> dict:
    return {"resource_changes": list(entries)}


def entry(address: str, actions: list[str], before: Any = None, after: Any = None) -> dict:
    return {"address": address, "type": address.split(".")[0], "mode": "managed",
            "change": {"actions": actions, "before": before, "after": after, "after_unknown": {}}}


def test_a_canary_step_is_a_release_and_other_changes_are_not():
    stage = "aws_api_gateway_stage.Api_Gateway_Stage_FAB65129"
    changes = StackChanges.from_plan_json("prod-api", plan(
        entry("aws_lb_listener.Api_Service1_Canary_Listener_25B655B5", ["create"]),
        entry("aws_ecs_service.Api_Service1_Canary_Service_F1244323", ["create"]),
        entry("aws_appautoscaling_target.Api_Service1_Canary_ScalingTarget_2F05DDC8", ["delete"]),
        entry(stage, ["update"], {"stage_name": "v1", "canary_settings": []},
              {"stage_name": "v1", "canary_settings": [{"percent_traffic": 10}]}),
    ))
    assert changes.outside_release() == []
    other = StackChanges.from_plan_json("prod-api", plan(
        entry(stage, ["update"], {"variables": {"a": "1"}, "canary_settings": []},
              {"variables": {"a": "2"}, "canary_settings": [{"percent_traffic": 10}]}),
        entry("aws_lb_listener.Api_Service1_Listener_0F77B66A", ["update"], {"port": 1}, {"port": 2}),
    ))
    assert [c.address for c in other.outside_release()] == [stage, "aws_lb_listener.Api_Service1_Listener_0F77B66A"]


def test_only_resources_under_a_services_canary_count_as_the_candidates():
    assert Change("aws_lb_listener.Api_Service1_Canary_Listener_25B655B5", "aws_lb_listener", "create").in_release
    assert Change("aws_appautoscaling_scheduled_action.Api_Orders_Canary_ScheduleNights_0A1B2C3D",
                  "aws_appautoscaling_scheduled_action", "delete").in_release
    assert not Change("aws_lb_listener.Api_Service1_Listener_0F77B66A", "aws_lb_listener", "create").in_release
    # Not a candidate's: a tier part's, another kind of resource under a Canary, or a nested path.
    assert not Change("aws_lb.Api_LoadBalancer_Canary_Listener_0F77B66A", "aws_lb", "delete").in_release
    assert not Change("aws_security_group.Api_Service1_Canary_SecurityGroup_0F77B66A", "aws_security_group",
                      "delete").in_release
    assert not Change("aws_lb_listener.Api_Service1_Canary_Listener_X_0F77B66A", "aws_lb_listener",
                      "delete").in_release
    assert not Change("aws_api_gateway_stage.Api_Gateway_Stage_FAB65129", "aws_api_gateway_stage", "replace",
                      ("canary_settings",)).in_release


def test_pending_names_the_services_a_promotion_would_change(world):
    context, _, directory = world
    assert canary_commands.pending(context, "prod") == ["service1"]  # stage runs 2222222, prod 1111111
    assert canary_commands.pending(context, "stage") == []  # dev pins nothing: nothing to promote to stage
    pin(directory, "prod", CANDIDATE, "2222222")
    assert canary_commands.pending(context, "prod") == []
    with pytest.raises(UsageError, match="has no previous environment"):
        canary_commands.pending(context, "dev")
