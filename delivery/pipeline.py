"""release, promote, migrate, verify: moving one immutable image from dev to prod.

- `release`  looks up a pushed tag's digest in ECR and pins it in the first environment's
             release file (refusing a missing tag, or one whose scan found CRITICAL issues);
- `promote`  copies the pinned digests (all, or one service's, optionally only if it is still
             the approved tag) one step along `promotion_order` (dev -> stage -> prod, never
             skipping), after checking each digest still exists in ECR;
- `migrate`  runs the environment's Flyway task definition once and fails on a non-zero exit;
- `verify`   waits until ECS has rolled out the task definition each service was just applied
             with (failing on a failed or rolled-back deployment), then calls the health path
             through the API of each service anyone may call, until it answers 200, and reads each
             service's health probe metric (modules/api/health.py) until it is healthy.

Release files are written atomically; any failure leaves every release file as it was.
Terraform (applying the release file) is the reconciler: see README "Delivery".
"""

from __future__ import annotations

import difflib
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from delivery import DeployError, UsageError, images, secrets
from delivery.aws import Aws, aws_error, load_environments, read_state_outputs, stack_output, state_role

MIGRATIONS = "migrations"


@dataclass
class Context:
    """What every command needs: the environments, AWS access and where output goes."""

    environments_dir: Path
    aws: Aws
    out: TextIO = sys.stdout

    def load(self, *names: str) -> Any:
        return load_environments(self.environments_dir, *names)


def _api_outputs(context: Context, environments: Any, environment: str) -> dict[str, Any]:
    state = environments.shared.state
    return read_state_outputs(context.aws, state.bucket, f"{environment}/api.tfstate", state.region,
                              state_role(context.aws, environments, environment))


# --- release and promote -------------------------------------------------------------------------

def image_config(environment: Any, name: str) -> Any:
    if name == MIGRATIONS:
        return environment.api.migrations
    for service in environment.api.service:
        if service.name == name:
            return service
    known = ", ".join([s.name for s in environment.api.service] + [MIGRATIONS])
    raise UsageError(f"{name!r} is not a service of {environment.name} ({known})")


def registry_client(context: Context, environments: Any) -> tuple[Any, str]:
    registry = environments.shared.registry
    return context.aws.client("ecr", registry.region), registry.account_id


def find_image(ecr: Any, registry_id: str, repository: str, image_id: dict[str, str]) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        details = ecr.describe_images(registryId=registry_id, repositoryName=repository,
                                      imageIds=[image_id])["imageDetails"]
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code == "ImageNotFoundException":
            return None
        if code == "RepositoryNotFoundException":
            raise DeployError(f"ECR repository {repository!r} does not exist in {registry_id}") from None
        raise DeployError(f"cannot read ECR {repository}: {aws_error(error)}") from None
    return details[0] if details else None


def critical_findings(ecr: Any, registry_id: str, repository: str, digest: str) -> int | None:
    """CRITICAL findings of the image's scan, or None when no completed scan is available."""
    from botocore.exceptions import ClientError

    try:
        result = ecr.describe_image_scan_findings(registryId=registry_id, repositoryName=repository,
                                                  imageId={"imageDigest": digest})
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("ScanNotFoundException", "ImageNotFoundException"):
            return None
        raise DeployError(f"cannot read the scan of {repository}@{digest}: {aws_error(error)}") from None
    if result.get("imageScanStatus", {}).get("status") != "COMPLETE":
        return None
    return int(result.get("imageScanFindings", {}).get("findingSeverityCounts", {}).get("CRITICAL", 0))


def write_reviewed_release(context: Context, environment: Any, path: Path, old: Any, new: Any) -> bool:
    """Validate `new` against the environment, print the diff, write atomically. False when unchanged."""
    from modules.core.errors import ConfigError
    from modules.release import apply_release, render_release, write_release

    try:
        apply_release(environment.api, new, path)
    except ConfigError as error:
        raise DeployError(f"refusing to write {path}: {error}") from None
    before = render_release(old).splitlines(keepends=True) if old is not None else []
    after = render_release(new).splitlines(keepends=True)
    if before == after:
        context.out.write(f"{path}: unchanged\n")
        return False
    context.out.writelines(difflib.unified_diff(before, after, f"a/{path.name}", f"b/{path.name}"))
    write_release(path, new)
    context.out.write(f"wrote {path}\n")
    return True


def release(context: Context, *, service: str, tag: str, environment: str | None = None) -> str:
    """Pin `service`'s image `tag` (by its digest) in the first environment's release file."""
    from modules.release import Release, ReleasedImage, load_release, release_path

    environments = context.load()
    target = environment or environments.shared.promotion_order[0]
    if target != environments.shared.promotion_order[0]:
        raise UsageError(f"release writes the first environment of promotion_order "
                         f"({environments.shared.promotion_order[0]}); use promote for {target}")
    config = environments.get(target)
    image = image_config(config, service)
    ecr, registry_id = registry_client(context, environments)
    found = find_image(ecr, registry_id, image.image_repository, {"imageTag": tag})
    if found is None:
        raise DeployError(f"{image.image_repository}:{tag} does not exist in ECR {registry_id}: push it first")
    digest = found["imageDigest"]
    critical = critical_findings(ecr, registry_id, image.image_repository, digest)
    if critical:
        raise DeployError(f"{image.image_repository}:{tag} ({digest}) has {critical} CRITICAL scan findings: "
                          "not released")
    if critical is None:
        context.out.write(f"note: no completed scan for {image.image_repository}@{digest}\n")
    # The sidecar every service task runs must offer each service's CPU architecture (delivery/images.py).
    cicd = environments.shared.cicd
    warning = images.check_sidecar(ecr, registry_id, cicd.collector_image_repository, cicd.collector_image_tag,
                                   {s.cpu_architecture.value for s in config.api.service})
    if warning:
        context.out.write(f"warning: {warning}\n")
    path = release_path(context.environments_dir, target)
    current = load_release(path)
    pinned = ReleasedImage(name=service, image_repository=image.image_repository, image_tag=tag,
                           image_digest=digest)
    write_reviewed_release(context, config, path, current, (current or Release()).with_image(pinned))
    return digest


def promote(context: Context, source: str, target: str, *, service: str | None = None,
            tag: str | None = None) -> None:
    """Copy the pinned digests of `source` into `target`, the next environment of promotion_order.

    With `service`, only that image moves (what an approval names); with `tag` too, only if
    `source` still pins that tag of it (a later release there was not the one approved).
    """
    from modules.release import Release, load_release, release_path

    environments = context.load()
    order = environments.shared.promotion_order
    for name in (source, target):
        if name not in order:
            raise UsageError(f"{name!r} is not in promotion_order ({' -> '.join(order)})")
    if order.index(target) != order.index(source) + 1:
        expected = order[order.index(source) + 1] if order.index(source) + 1 < len(order) else None
        follows = f"{source} promotes to {expected}" if expected else f"{source} is the last environment"
        raise UsageError(f"promotion goes {' -> '.join(order)} without skipping: {follows}, not {target}")
    source_path = release_path(context.environments_dir, source)
    source_release = load_release(source_path)
    if source_release is None or not (source_release.service or source_release.migrations):
        raise UsageError(f"{source_path} pins nothing yet: release to {source} first")
    target_config = environments.get(target)
    ecr, registry_id = registry_client(context, environments)
    images = list(source_release.service) + ([source_release.migrations] if source_release.migrations else [])
    if tag is not None and service is None:
        raise UsageError("--tag needs --service: it names the approved image of one service")
    if service is not None:
        image_config(target_config, service)
        images = [image for image in images if image.name == service]
        if not images:
            raise UsageError(f"{source_path} pins no {service}: release it to {source} first")
        if tag is not None and images[0].image_tag != tag:
            raise DeployError(f"{source} runs {service}:{images[0].image_tag}, not the approved {service}:{tag}: "
                              "nothing promoted (a later release replaced it there; promote that one)")
    target_path = release_path(context.environments_dir, target)
    current = load_release(target_path)
    promoted = current or Release()
    moving = []
    for image in images:
        if image.name != MIGRATIONS and image.name not in {s.name for s in target_config.api.service}:
            context.out.write(f"skip {image.name}: {target} does not run it\n")
            continue
        if find_image(ecr, registry_id, image.image_repository, {"imageDigest": image.image_digest}) is None:
            raise DeployError(f"{image.image_repository}@{image.image_digest} ({image.image_tag}) is no longer "
                              f"in ECR {registry_id}: nothing promoted")
        moving.append(image)
        promoted = promoted.with_image(image)
    for image in moving:
        tag_promoted(context, ecr, registry_id, image, target)
    write_reviewed_release(context, target_config, target_path, current, promoted)


ACCEPTED_MANIFESTS = [
    "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
]


def tag_promoted(context: Context, ecr: Any, registry_id: str, image: Any, environment: str) -> None:
    """Tag the digest `release-<env>-<tag>` (same manifest, no new image): the registry's lifecycle
    policy keeps such images apart from release_images_kept, so what an environment runs cannot expire."""
    from botocore.exceptions import ClientError

    from modules.contract import promoted_tag

    tag = promoted_tag(environment, image.image_tag)
    where = {"registryId": registry_id, "repositoryName": image.image_repository}
    try:
        found = ecr.batch_get_image(**where, imageIds=[{"imageDigest": image.image_digest}],
                                    acceptedMediaTypes=ACCEPTED_MANIFESTS)["images"]
        if not found:
            raise DeployError(f"{image.image_repository}@{image.image_digest} is no longer in ECR: nothing promoted")
        extra = {"imageManifestMediaType": found[0]["imageManifestMediaType"]} \
            if found[0].get("imageManifestMediaType") else {}
        ecr.put_image(**where, imageManifest=found[0]["imageManifest"], imageTag=tag, **extra)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code not in ("ImageAlreadyExistsException", "ImageTagAlreadyExistsException"):
            raise DeployError(f"cannot tag {image.image_repository}@{image.image_digest} {tag}: "
                              f"{aws_error(error)}; nothing promoted") from None
        tagged = find_image(ecr, registry_id, image.image_repository, {"imageTag": tag})
        if tagged is None or tagged["imageDigest"] != image.image_digest:
            raise DeployError(f"{image.image_repository}:{tag} already names another image "
                              f"({tagged and tagged['imageDigest']}): nothing promoted") from None
    context.out.write(f"tagged {image.image_repository}@{image.image_digest} {tag} (kept by the lifecycle policy)\n")


# --- migrate -------------------------------------------------------------------------------------

def migrate(context: Context, environment: str, *, timeout_seconds: float = 1800, poll_seconds: float = 5,
            sleep: Callable[[float], None] = time.sleep) -> int:
    """Run the Flyway task once in the environment's private subnets; the container's exit code."""
    from botocore.exceptions import ClientError

    from modules.contract import STARTED_BY_TAG, deploy_role_name
    from modules.environment import prefix_of

    environments = context.load(environment)
    config = environments.get(environment)
    outputs = _api_outputs(context, environments, environment)
    cluster = stack_output(outputs, "Api_ClusterName")
    task_definition = stack_output(outputs, "Api_Migrations_MigrationTaskDefinitionArn")
    subnets = stack_output(outputs, "Api_Migrations_MigrationSubnetIds")
    group = stack_output(outputs, "Api_Migrations_MigrationSecurityGroupId")
    ecs = context.aws.client("ecs", config.region)
    try:
        started = ecs.run_task(
            cluster=cluster, taskDefinition=task_definition, launchType="FARGATE", count=1,
            startedBy="delivery-migrate",
            # Said explicitly: the deploy role may run this task only with ecs:enable-execute-command
            # "false" (modules/cicd/pipeline.py RunMigrations), and a key the request leaves out is absent.
            enableExecuteCommand=False,
            # The deploy role may stop only tasks tagged with its name (modules/cicd/pipeline.py).
            tags=[{"key": STARTED_BY_TAG, "value": deploy_role_name(prefix_of(environments.shared, config))}],
            networkConfiguration={"awsvpcConfiguration": {
                "subnets": list(subnets), "securityGroups": [group], "assignPublicIp": "DISABLED"}},
        )
    except ClientError as error:
        raise DeployError(f"cannot start the migration task: {aws_error(error)}") from None
    if started.get("failures") or not started.get("tasks"):
        raise DeployError(f"the migration task did not start: {started.get('failures')}")
    task_arn = started["tasks"][0]["taskArn"]
    context.out.write(f"migration task {task_arn} started on {cluster}\n")
    deadline = time.monotonic() + timeout_seconds
    while True:
        task = ecs.describe_tasks(cluster=cluster, tasks=[task_arn])["tasks"][0]
        if task.get("lastStatus") == "STOPPED":
            break
        if time.monotonic() >= deadline:
            raise DeployError(f"the migration task {task_arn} did not stop within {timeout_seconds:.0f} s "
                              "(it is still running; stop it or wait)")
        sleep(poll_seconds)
    context.out.write(_log_link(ecs, config.region, task_definition, task_arn))
    containers = task.get("containers", [])
    codes = [c.get("exitCode") for c in containers]
    if not containers or any(code is None for code in codes):
        context.out.write(f"the migration task stopped without an exit code: {task.get('stoppedReason')}\n")
        return 1
    code = max(codes, key=lambda c: c != 0)
    context.out.write(f"migrations {'succeeded' if code == 0 else f'FAILED with exit code {code}'}\n")
    return int(code)


def _log_link(ecs: Any, region: str, task_definition: str, task_arn: str) -> str:
    definition = ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
    container = definition["containerDefinitions"][0]
    options = (container.get("logConfiguration") or {}).get("options") or {}
    group, prefix = options.get("awslogs-group"), options.get("awslogs-stream-prefix")
    if not group:
        return "logs: the task definition has no awslogs configuration\n"
    stream = f"{prefix}/{container['name']}/{task_arn.rsplit('/', 1)[-1]}" if prefix else "(stream per task)"
    return (f"logs: {group} {stream}\n"
            f"      https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
            f"#logsV2:log-groups/log-group/{group.replace('/', '$252F')}\n")


# --- verify --------------------------------------------------------------------------------------
#
# What tells a bad release apart: the ECS services, not the API. Terraform's apply returns as soon
# as UpdateService is accepted (no wait_for_steady_state), while the old tasks keep serving
# (minimum healthy 100 %), so a 200 through the API right after apply comes from the old version;
# prod also caches GET routes. ECS marks a deployment COMPLETED only once its tasks passed the NLB
# health checks and the old ones are gone, and a deployment the circuit breaker or a deployment
# alarm rolls back is replaced by one on the previous task definition. So verify first waits for
# each service's primary deployment to be COMPLETED on the task definition Terraform just applied
# (the stack's TaskDefinitionArns output), failing on FAILED or a rollback; then it calls the
# health path through the API for services anyone may call (authorization NONE, with their
# required headers and query parameters): that shows the route reaches them. AWS_IAM services are
# not called through the API: the deploy role is not an API caller (no execute-api:Invoke), and
# their rollout already proves the new tasks healthy behind the NLB. Last, every service's health
# probe metric (the stack's HealthMetrics output, modules/api/health.py: the metric its alarm
# reads) must read healthy in its latest period, within the service's grace period.

PROBE_REQUEST_ID = "delivery-verify"
CANARY_LABEL = "{service} (canary)"


def _canary_outputs(outputs: dict[str, Any], config: Any) -> dict[str, tuple[str, str]]:
    """`{"<service> (canary)": (ECS service name, task definition ARN)}` of each canary the release file
    runs; a canary the state does not show yet (not applied) is an error, as a missing service is."""
    running = [s.name for s in config.api.service if s.canary is not None]
    if not running:
        return {}
    names = stack_output(outputs, "Api_CanaryServiceNames",
                         missing="the <env>-api state has no CanaryServiceNames output: apply the api stack")
    arns = stack_output(outputs, "Api_CanaryTaskDefinitionArns",
                        missing="the <env>-api state has no CanaryTaskDefinitionArns output: apply the api stack")
    missing = [name for name in running if name not in names or name not in arns]
    if missing:
        raise DeployError(f"the release file runs a canary of {', '.join(missing)}, which the <env>-api state does "
                          "not have yet: apply the release first")
    return {CANARY_LABEL.format(service=name): (names[name], arns[name]) for name in running}


@dataclass(frozen=True)
class Rollout:
    """One service's deployment as ECS reports it: `state` is ok, wait or failed."""

    state: str
    message: str


def rollout(ecs: Any, cluster: str, service: str, expected: str) -> Rollout:
    """Where the rollout of `expected` (a task definition ARN) on `service` stands."""
    from botocore.exceptions import ClientError

    try:
        found = ecs.describe_services(cluster=cluster, services=[service])
    except ClientError as error:
        raise DeployError(f"cannot describe the ECS service {service} in {cluster}: {aws_error(error)}") from None
    if found.get("failures") or not found.get("services"):
        return Rollout("failed", f"ECS has no service {service} in {cluster}: {found.get('failures')}")
    deployments = found["services"][0].get("deployments") or []
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    if primary is None:
        return Rollout("wait", "no primary deployment yet")
    running = primary.get("taskDefinition")
    if running != expected:
        return Rollout("failed", f"the primary deployment runs {running}, not {expected}: ECS rolled the "
                                 "release back (circuit breaker or deployment alarm), or another deploy replaced it")
    state = primary.get("rolloutState") or "IN_PROGRESS"
    if state == "FAILED":
        return Rollout("failed", f"the deployment of {expected} FAILED: {primary.get('rolloutStateReason')}")
    older = [d for d in deployments if d is not primary and (d.get("runningCount") or 0) > 0]
    counts = f"{primary.get('runningCount', 0)}/{primary.get('desiredCount', 0)} new tasks running"
    if state == "COMPLETED" and not older:
        return Rollout("ok", f"{expected.rsplit('/', 1)[-1]} rolled out, {counts}")
    return Rollout("wait", f"{state}, {counts}, {len(older)} older deployment(s) still running")


def _status(request: urllib.request.Request, timeout: float) -> int | str:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, OSError) as error:
        return str(getattr(error, "reason", error))


def _probe(base_url: str, service: Any) -> urllib.request.Request | None:
    """The health request through the API, or None when the routes need SigV4 (AWS_IAM)."""
    from modules.api.config import Authorization

    if service.authorization is not Authorization.NONE:
        return None
    query = urllib.parse.urlencode({name: PROBE_REQUEST_ID for name in service.required_query_parameters})
    url = f"{base_url}/{service.path_prefix}{service.health_check_path}" + (f"?{query}" if query else "")
    # The request validator rejects a call without the service's required headers.
    return urllib.request.Request(url, headers={name: PROBE_REQUEST_ID for name in service.required_headers})


def health_reading(cloudwatch: Any, metric: dict[str, Any], *, minutes: int = 5) -> float | None:
    """The latest value of a service's health metric (None: no datapoint in the last `minutes`)."""
    from botocore.exceptions import ClientError

    end = time.time()
    try:
        found = cloudwatch.get_metric_statistics(
            Namespace=metric["namespace"], MetricName=metric["metric_name"],
            Dimensions=[{"Name": k, "Value": v} for k, v in sorted(metric["dimensions"].items())],
            StartTime=end - minutes * 60, EndTime=end, Period=int(metric["period"]), Statistics=[metric["statistic"]],
        )
    except ClientError as error:
        raise DeployError(f"cannot read {metric['namespace']} {metric['metric_name']}: {aws_error(error)}") from None
    points = sorted(found.get("Datapoints") or [], key=lambda point: point["Timestamp"])
    return float(points[-1][metric["statistic"]]) if points else None


def _verify_health(context: Context, config: Any, outputs: dict[str, Any], *, poll_seconds: float,
                   grace_seconds: float | None, sleep: Callable[[float], None]) -> list[str]:
    """The services whose health metric does not read healthy within their grace period."""
    metrics = stack_output(outputs, "Api_HealthMetrics",
                           missing="the <env>-api state has no HealthMetrics output: apply the api stack")
    cloudwatch = context.aws.client("cloudwatch", config.region)
    failed = []
    for service in config.api.routed_services:  # a worker has no probe (its rollout is its check)
        metric = metrics[service.name]
        grace = service.health_check_grace_period_seconds if grace_seconds is None else grace_seconds
        deadline = time.monotonic() + grace
        while True:
            value = health_reading(cloudwatch, metric)
            what = f"{metric['metric_name']} ({metric['statistic']}, {metric['namespace']})"
            if value is not None and value <= float(metric["healthy_at_most"]):
                context.out.write(f"ok      {service.name}: health probe {what} = {value:g}\n")
                break
            if time.monotonic() >= deadline:
                read = "no datapoint" if value is None else f"{value:g}"
                context.out.write(f"FAILED  {service.name}: health probe {what} read {read} after {grace:.0f} s "
                                  f"(healthy: at most {metric['healthy_at_most']:g})\n")
                failed.append(service.name)
                break
            sleep(poll_seconds)
    return failed


def verify(context: Context, environment: str, *, base_url: str | None = None, poll_seconds: float = 5,
           grace_seconds: float | None = None, rollout_timeout_seconds: float = 1800,
           sleep: Callable[[float], None] = time.sleep) -> int:
    """0 when every service's applied task definition has rolled out, its public health path answers 200
    and its health probe metric reads healthy."""
    environments = context.load(environment)
    config = environments.get(environment)
    outputs = _api_outputs(context, environments, environment)
    cluster = stack_output(outputs, "Api_ClusterName")
    names = stack_output(outputs, "Api_ServiceNames")
    expected = stack_output(outputs, "Api_TaskDefinitionArns",
                            missing="the <env>-api state has no TaskDefinitionArns output: apply the api stack")
    # Each running canary's candidate rolls out like a service (`<service> (canary)`): the stack's
    # Canary* outputs name it; they are empty without a canary.
    candidates = _canary_outputs(outputs, config)
    names = {**names, **{label: name for label, (name, _) in candidates.items()}}
    expected = {**expected, **{label: arn for label, (_, arn) in candidates.items()}}
    ecs = context.aws.client("ecs", config.region)
    # A secret without a value would fail every new task: say so now, not after the circuit breaker.
    secrets.check(context.aws.client("secretsmanager", config.region),
                  secrets.task_definition_secrets(ecs, [expected[s.name] for s in config.api.service]
                                                  + [arn for _, arn in candidates.values()]))
    failed: list[str] = []
    pending = [s.name for s in config.api.service] + list(candidates)
    deadline = time.monotonic() + rollout_timeout_seconds
    last: dict[str, str] = {}
    while pending:
        for name in list(pending):
            found = rollout(ecs, cluster, names[name], expected[name])
            if found.state == "wait":
                if last.get(name) != found.message:
                    context.out.write(f"waiting {name}: {found.message}\n")
                last[name] = found.message
                continue
            pending.remove(name)
            context.out.write(f"{'ok' if found.state == 'ok' else 'FAILED':<7} {name}: {found.message}\n")
            if found.state == "failed":
                failed.append(name)
        if pending and time.monotonic() >= deadline:
            for name in pending:
                context.out.write(f"FAILED  {name}: not rolled out within {rollout_timeout_seconds:.0f} s "
                                  f"({last.get(name)})\n")
            failed += pending
            break
        if pending:
            sleep(poll_seconds)
    if failed:
        return 1
    if base_url is None:
        base_url = str(stack_output(outputs, "Api_Gateway_InvokeUrl"))
    base_url = base_url.rstrip("/")
    for service in config.api.service:
        if service.worker:
            context.out.write(f"ok      {service.name}: a worker (no route, no probe): verified by its ECS rollout\n")
            continue
        request = _probe(base_url, service)
        if request is None:
            context.out.write(f"ok      {service.name}: verified by its ECS rollout only (its routes need "
                              f"{service.authorization.value} SigV4; the deploy role is not an API caller)\n")
            continue
        grace = service.health_check_grace_period_seconds if grace_seconds is None else grace_seconds
        probe_deadline = time.monotonic() + grace
        while True:
            status = _status(request, timeout=min(10.0, max(grace, 1.0)))
            if status == 200:
                cached_note = (f" (GET is cached up to {config.api.cache_ttl_seconds} s: this shows the route; "
                               "the rollout shows the new tasks)") if config.api.caching and service.caching else ""
                context.out.write(f"ok      {service.name}: {request.full_url} answered 200{cached_note}\n")
                break
            if time.monotonic() >= probe_deadline:
                context.out.write(f"FAILED  {service.name}: {request.full_url} answered {status} after {grace:.0f} s\n")
                failed.append(service.name)
                break
            sleep(poll_seconds)
    failed += _verify_health(context, config, outputs, poll_seconds=poll_seconds, grace_seconds=grace_seconds,
                             sleep=sleep)
    return 1 if failed else 0
