"""canary start|step|promote|abort|judge: a candidate beside the stable version, decided by measurement.

Every step writes `environments/<env>.release.hcl` as `release`/`promote` do (validated against the
environment, the diff printed, written atomically) and changes nothing in AWS: the commit of that file
is the step, and the reconciler applies it (README, "Releasing with a canary").

- `start`    pins, as `canary "<service>"`, the digest the previous environment of promotion_order
             runs for the service (the same digest `promote` would copy; it must still be in ECR and
             is tagged `release-<env>-<tag>` like a promotion), at a first share of the stage's requests;
- `step`     raises the share;
- `promote`  pins the candidate as the service's stable image and removes the canary;
- `abort`    removes the canary; the stable image stays as it is;
- `judge`    compares the candidate's requests with the stable version's over the bake window.

Where API Gateway reports a canary (API Gateway developer guide, "Set up an API Gateway canary
release deployment"): with canary settings on a stage, API Gateway generates separate CloudWatch
metrics for the requests the canary handles, under the stage's canary, named `<stage>/Canary`
(the canary's execution and access log groups carry the same `/Canary` suffix). So the candidate's
requests are `AWS/ApiGateway` `Count`, `5XXError` and `Latency` with dimensions ApiName, Stage =
`<stage>/Canary`, Resource and Method of the service's routes; the stable version's are the same
with Stage = `<stage>`. Other services' routes in the canary's requests reach their stable versions
(only the service's stage variable is overridden), and the judge reads only the service's routes.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from delivery import DeployError, UsageError
from delivery.aws import aws_error
from delivery.pipeline import Context, find_image, image_config, registry_client, tag_promoted, write_reviewed_release

FIRST_PERCENT = 10.0
# `judge` exit statuses (README): promote, too little traffic to decide, abort.
PROMOTE, UNDECIDED, ABORT = 0, 1, 3
CANARY_STAGE_SUFFIX = "/Canary"
METRICS_NAMESPACE = "AWS/ApiGateway"


def _release(context: Context, environment: str) -> tuple[Any, Any, Any, Any]:
    """(environments, the environment's config, its release file path, its release or an empty one)."""
    from modules.release import load_release, release_path

    environments = context.load()
    config = environments.get(environment)
    path = release_path(context.environments_dir, environment)
    current = load_release(path)
    return environments, config, path, current


def _service(config: Any, service: str) -> Any:
    if service == "migrations":
        raise UsageError("migrations have no canary: they run once, before the release (README, "
                         "\"Releasing with a canary\": keep them backward compatible while a canary runs)")
    return image_config(config, service)


def start(context: Context, environment: str, *, service: str, percent: float = FIRST_PERCENT) -> None:
    """Run the previous environment's image of `service` as a canary in `environment` at `percent`."""
    from modules.release import Release, ReleasedCanary, load_release, release_path

    environments, config, path, current = _release(context, environment)
    _service(config, service)
    order = environments.shared.promotion_order
    if environment not in order:
        raise UsageError(f"{environment!r} is not in promotion_order ({' -> '.join(order)})")
    if order.index(environment) == 0:
        raise UsageError(f"{environment} is the first environment of promotion_order: its releases roll "
                         "(`release`); a canary takes the image the previous environment runs")
    source = order[order.index(environment) - 1]
    release = current or Release()
    running = release.running_canary(service)
    if running is not None:
        raise DeployError(f"{environment} already runs a canary of {service} ({running.image_tag} at "
                          f"{running.percent:g} %): at most one canary per service; promote or abort it first")
    source_path = release_path(context.environments_dir, source)
    source_release = load_release(source_path)
    image = source_release.image(service) if source_release is not None else None
    if image is None:
        raise UsageError(f"{source_path} pins no {service}: release it to {source} first")
    stable = release.image(service)
    if stable is not None and stable.image_digest == image.image_digest:
        raise DeployError(f"{environment} already runs {service}@{image.image_digest} ({image.image_tag}) as its "
                          "stable version: nothing to canary")
    ecr, registry_id = registry_client(context, environments)
    if find_image(ecr, registry_id, image.image_repository, {"imageDigest": image.image_digest}) is None:
        raise DeployError(f"{image.image_repository}@{image.image_digest} ({image.image_tag}) is no longer in ECR "
                          f"{registry_id}: no canary started")
    candidate = _share(ReleasedCanary(name=service, image_repository=image.image_repository,
                                      image_tag=image.image_tag, image_digest=image.image_digest, percent=50.0),
                       percent)
    _check_write(context, config, path, current, release.with_canary(candidate))
    tag_promoted(context, ecr, registry_id, image, environment)


def pending(context: Context, environment: str) -> list[str]:
    """The services whose stable digest in `environment` differs from the previous environment's: what a
    promotion would change, and so what goes out as a canary (sorted; migrations never)."""
    from modules.release import load_release, release_path

    environments = context.load()
    order = environments.shared.promotion_order
    if environment not in order or order.index(environment) == 0:
        raise UsageError(f"{environment!r} has no previous environment in promotion_order ({' -> '.join(order)})")
    source = load_release(release_path(context.environments_dir, order[order.index(environment) - 1]))
    target = load_release(release_path(context.environments_dir, environment))
    runs = {s.name for s in environments.get(environment).api.service}
    changed = []
    for image in (source.service if source is not None else ()):
        current = target.image(image.name) if target is not None else None
        if image.name in runs and (current is None or current.image_digest != image.image_digest):
            changed.append(image.name)
    return sorted(changed)


def step(context: Context, environment: str, *, service: str, percent: float) -> None:
    """Raise the share of the stage's requests the running canary of `service` takes."""
    _, config, path, current = _release(context, environment)
    _service(config, service)
    running = current.running_canary(service) if current is not None else None
    if running is None:
        raise UsageError(f"{environment} runs no canary of {service}: start one first")
    if percent <= running.percent:
        raise UsageError(f"step raises the share: {service}'s canary takes {running.percent:g} %, not less than "
                         f"{percent:g} % (abort to stop it)")
    _check_write(context, config, path, current, current.with_canary(_share(running, percent)))


def promote(context: Context, environment: str, *, service: str) -> None:
    """Make the candidate of `service` its stable version and remove the canary."""
    _, config, path, current = _release(context, environment)
    _service(config, service)
    running = current.running_canary(service) if current is not None else None
    if running is None:
        raise UsageError(f"{environment} runs no canary of {service}: nothing to promote")
    _check_write(context, config, path, current, current.with_image(running.image).without_canary(service))


def abort(context: Context, environment: str, *, service: str) -> None:
    """Remove the canary of `service`; its stable version stays as it is."""
    _, config, path, current = _release(context, environment)
    _service(config, service)
    if current is None or current.running_canary(service) is None:
        raise UsageError(f"{environment} runs no canary of {service}: nothing to abort")
    _check_write(context, config, path, current, current.without_canary(service))


def _share(canary: Any, percent: float) -> Any:
    """`canary` at `percent`, or a UsageError saying which shares API Gateway takes."""
    from modules.core.errors import ConfigError

    try:
        return dataclasses.replace(canary, percent=percent)
    except ConfigError as error:
        raise UsageError(f"--percent {error.message}") from None


def _check_write(context: Context, config: Any, path: Any, old: Any, new: Any) -> None:
    if not write_reviewed_release(context, config, path, old, new):
        raise DeployError(f"{path} would not change")


# --- judge ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reading:
    """What one version served on the service's routes over the bake window."""

    requests: float
    errors: float
    latency_ms: float | None  # the average over every request, None without requests

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Thresholds:
    """`api.canary_*` of the environment file."""

    min_requests: int
    max_5xx_increase_percent: float
    max_latency_ratio: float
    latency_slack_ms: float

    @classmethod
    def of(cls, api: Any) -> Thresholds:
        return cls(api.canary_min_requests, api.canary_max_5xx_increase_percent, api.canary_max_latency_ratio,
                   float(api.canary_latency_slack_ms))


@dataclass(frozen=True)
class Verdict:
    status: int
    reasons: tuple[str, ...]


def decide(candidate: Reading, stable: Reading, thresholds: Thresholds) -> Verdict:
    """PROMOTE, ABORT, or UNDECIDED when the candidate served too few requests to tell."""
    if candidate.requests < thresholds.min_requests:
        return Verdict(UNDECIDED, (f"the candidate served {candidate.requests:g} requests, fewer than "
                                   f"canary_min_requests ({thresholds.min_requests}): too little traffic to decide",))
    reasons = []
    increase = (candidate.error_rate - stable.error_rate) * 100
    if increase > thresholds.max_5xx_increase_percent:
        reasons.append(f"5XX rate {candidate.error_rate:.2%} against the stable version's {stable.error_rate:.2%}: "
                       f"{increase:.2f} points more, above canary_max_5xx_increase_percent "
                       f"({thresholds.max_5xx_increase_percent:g})")
    if candidate.latency_ms is not None and stable.latency_ms is not None:
        allowed = stable.latency_ms * thresholds.max_latency_ratio + thresholds.latency_slack_ms
        if candidate.latency_ms > allowed:
            reasons.append(f"average latency {candidate.latency_ms:.0f} ms against the stable version's "
                           f"{stable.latency_ms:.0f} ms: above {allowed:.0f} ms (canary_max_latency_ratio "
                           f"{thresholds.max_latency_ratio:g} x + canary_latency_slack_ms "
                           f"{thresholds.latency_slack_ms:g})")
    if reasons:
        return Verdict(ABORT, tuple(reasons))
    return Verdict(PROMOTE, (f"{candidate.requests:g} requests, 5XX {candidate.error_rate:.2%} (stable "
                             f"{stable.error_rate:.2%}), latency {_ms(candidate.latency_ms)} (stable "
                             f"{_ms(stable.latency_ms)}): within the thresholds",))


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def metric_queries(api_name: str, stage: str, routes: list[tuple[str, str]], period_seconds: int) -> list[dict]:
    """GetMetricData queries: per version (`stable`, `canary`) and route, Count and 5XXError (Sum) and
    Latency (Average). Ids: `<version>_<metric>_<route index>`."""
    queries = []
    for version, stage_name in (("stable", stage), ("canary", stage + CANARY_STAGE_SUFFIX)):
        for index, (resource, method) in enumerate(routes):
            dimensions = [{"Name": "ApiName", "Value": api_name}, {"Name": "Stage", "Value": stage_name},
                          {"Name": "Resource", "Value": resource}, {"Name": "Method", "Value": method}]
            for metric, statistic, key in (("Count", "Sum", "count"), ("5XXError", "Sum", "errors"),
                                           ("Latency", "Average", "latency")):
                queries.append({
                    "Id": f"{version}_{key}_{index}",
                    "MetricStat": {"Metric": {"Namespace": METRICS_NAMESPACE, "MetricName": metric,
                                              "Dimensions": dimensions},
                                   "Period": period_seconds, "Stat": statistic},
                    "ReturnData": True,
                })
    return queries


def readings(results: list[dict[str, Any]], routes: int) -> dict[str, Reading]:
    """`{"stable": Reading, "canary": Reading}` from GetMetricData's MetricDataResults: requests and 5XX
    summed over every period and route; latency averaged weighted by each period's requests."""
    by_id = {r["Id"]: dict(zip(r.get("Timestamps") or [], r.get("Values") or [], strict=False)) for r in results}
    out = {}
    for version in ("stable", "canary"):
        requests = errors = weighted = weight = 0.0
        for index in range(routes):
            counts = by_id.get(f"{version}_count_{index}", {})
            requests += sum(counts.values())
            errors += sum(by_id.get(f"{version}_errors_{index}", {}).values())
            for timestamp, latency in by_id.get(f"{version}_latency_{index}", {}).items():
                n = counts.get(timestamp, 0.0)
                if n > 0 and not math.isnan(latency):
                    weighted += latency * n
                    weight += n
        out[version] = Reading(requests, errors, weighted / weight if weight else None)
    return out


def judge(context: Context, environment: str, *, service: str, bake_minutes: int,
          now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC)) -> int:
    """0 promote, 3 abort, 1 too little traffic: the canary of `service` against its stable version over
    the last `bake_minutes`."""
    from botocore.exceptions import ClientError

    from modules.api.gateway import api_name, cached
    from modules.api.service import route_methods
    from modules.environment import prefix_of

    if bake_minutes < 1:
        raise UsageError(f"--bake must be at least 1 minute, got {bake_minutes}")
    environments, config, _, current = _release(context, environment)
    settings = _service(config, service)
    running = current.running_canary(service) if current is not None else None
    if running is None:
        raise UsageError(f"{environment} runs no canary of {service}: nothing to judge")
    routes = route_methods(settings, cached(config.api, settings))
    name = api_name(prefix_of(environments.shared, config))
    end = now().replace(second=0, microsecond=0)
    start_time = end - datetime.timedelta(minutes=bake_minutes)
    # Periods of a minute (API Gateway's metrics resolution), summed here.
    queries = metric_queries(name, config.api.stage_name, routes, 60)
    cloudwatch = context.aws.client("cloudwatch", config.region)
    results: list[dict[str, Any]] = []
    try:
        for offset in range(0, len(queries), 500):  # GetMetricData takes at most 500 queries
            token: str | None = None
            while True:
                extra = {"NextToken": token} if token else {}
                page = cloudwatch.get_metric_data(MetricDataQueries=queries[offset:offset + 500],
                                                  StartTime=start_time, EndTime=end, **extra)
                results += page.get("MetricDataResults") or []
                token = page.get("NextToken")
                if not token:
                    break
    except ClientError as error:
        raise DeployError(f"cannot read {METRICS_NAMESPACE} metrics: {aws_error(error)}") from None
    merged: dict[str, dict[str, Any]] = {}
    for result in results:  # a paginated series arrives in parts
        entry = merged.setdefault(result["Id"], {"Id": result["Id"], "Timestamps": [], "Values": []})
        entry["Timestamps"] += list(result.get("Timestamps") or [])
        entry["Values"] += list(result.get("Values") or [])
    found = readings(list(merged.values()), len(routes))
    verdict = decide(found["canary"], found["stable"], Thresholds.of(config.api))
    word = {PROMOTE: "PROMOTE", ABORT: "ABORT", UNDECIDED: "UNDECIDED"}[verdict.status]
    context.out.write(f"{environment} {service}: canary {running.image_tag} at {running.percent:g} % against the "
                      f"stable version, {bake_minutes} min to {end:%Y-%m-%d %H:%M} UTC "
                      f"(Stage {config.api.stage_name}{CANARY_STAGE_SUFFIX} vs {config.api.stage_name}, "
                      f"{len(routes)} routes)\n")
    for version in ("canary", "stable"):
        reading = found[version]
        context.out.write(f"  {version:<7} {reading.requests:>10g} requests, {reading.errors:g} 5XX "
                          f"({reading.error_rate:.2%}), average latency {_ms(reading.latency_ms)}\n")
    for reason in verdict.reasons:
        context.out.write(f"  {reason}\n")
    context.out.write(f"{word}\n")
    return verdict.status
