"""`python -m delivery <command>`: the project's delivery commands (see `--help`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from delivery import DeployError, UsageError, version
from delivery.terraform import DEFAULT_LOCK_TIMEOUT, DEFAULT_PARALLEL_PLANS

PROJECT = Path(__file__).resolve().parent.parent


def environment_argument(command: argparse.ArgumentParser, *, required: bool = True,
                         meaning: str = "environment name (environments/<ENV>.hcl)") -> None:
    """The environment, named the same way in every command: a positional ENV. `--env ENV` is kept
    as another spelling (deploy-frontend and release took it), so older scripts keep working."""
    command.add_argument("env", nargs="?", metavar="ENV", help=f"{meaning}; --env ENV is the same")
    command.add_argument("--env", dest="env_option", metavar="ENV", help=argparse.SUPPRESS)
    command.set_defaults(env_required=required, command_parser=command)


def _resolve_environment(args: argparse.Namespace) -> None:
    """One `env` from ENV or --env ENV; argparse's own usage error (exit 2) when it is missing or given twice."""
    if not hasattr(args, "env_required"):
        return
    option = vars(args).pop("env_option", None)
    if option is not None and args.env is not None and option != args.env:
        args.command_parser.error(f"the environment is given twice ({args.env} and --env {option}): give ENV once")
    args.env = args.env or option
    if args.env_required and args.env is None:
        args.command_parser.error("the following arguments are required: ENV")


def _deploy_frontend(args: argparse.Namespace) -> int:
    from delivery.frontend import Options, deploy

    deploy(Options(
        env=args.env,
        directory=args.dir,
        environments_dir=args.environments_dir,
        bucket=args.bucket,
        distribution_id=args.distribution_id,
        endpoint_url=args.endpoint_url,
        role_arn=args.role_arn,
        dry_run=args.dry_run,
        wait=args.wait,
        invalidate_all=args.invalidate_all,
        keep_old_days=args.keep_old_days,
        immutable_patterns=tuple(args.immutable or ()),
        include_hidden=args.include_hidden,
        workers=args.workers,
    ))
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m delivery",
        description="Delivery commands for the webapp environments (run from Jenkins or a shell). Every "
                    "command checks its arguments and the environment files before it looks for AWS "
                    "credentials.",
    )
    root.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    frontend = commands.add_parser(
        "deploy-frontend",
        help="publish a built frontend to an environment and invalidate CloudFront",
        description=(
            "Upload a built frontend (the folder holding index.html) to the environment's site bucket: "
            "fingerprinted assets first (Cache-Control: public, max-age=31536000, immutable), then the "
            "other entry points and index.html last (no-cache); then one CloudFront invalidation for the "
            "entry points that changed; then remove objects no longer in the build (or keep them "
            "--keep-old-days). A failed upload stops before index.html: the previous build keeps serving. "
            "Bucket and distribution come from the <env>-frontend stack's Terraform state outputs "
            "(s3://<state bucket>/<env>/frontend.tfstate) unless given as flags. Credentials: the usual "
            "AWS chain (AWS_PROFILE, AWS_ACCESS_KEY_ID/..., an instance or task role); AWS_ENDPOINT_URL "
            "or --endpoint-url points every call at an emulator."
        ),
        epilog="exit status: 0 done (or dry run), 1 failed part-way (the message says what is live), "
               "2 bad input (nothing touched)",
    )
    environment_argument(frontend)
    frontend.add_argument("--dir", required=True, type=Path, help="the build output folder (holds index.html)")
    frontend.add_argument("--environments-dir", type=Path, default=PROJECT / "environments",
                          help="where the environment files are (default: the project's environments/)")
    frontend.add_argument("--bucket", help="site bucket; default: the stack output bucket_name")
    frontend.add_argument("--distribution-id", help="CloudFront distribution; default: the stack output "
                                                    "distribution_id")
    frontend.add_argument("--dry-run", action="store_true", help="print the uploads, deletes and "
                                                                 "invalidation, change nothing")
    frontend.add_argument("--wait", action="store_true", help="wait until the invalidation has completed")
    frontend.add_argument("--invalidate-all", action="store_true",
                          help="invalidate /* instead of the changed entry points")
    frontend.add_argument("--keep-old-days", type=int, default=0, metavar="N",
                          help="keep objects that left the build N days (old tabs still load their chunks); "
                               "default 0: delete them once the new index.html is live")
    frontend.add_argument("--immutable", action="append", metavar="GLOB",
                          help="files cached for a year (repeatable, e.g. 'assets/*'); default: file names "
                               "carrying a content hash (main.3f2a1b9c.js). HTML is never immutable")
    frontend.add_argument("--endpoint-url", help="send every AWS call here (an emulator); "
                                                 "AWS_ENDPOINT_URL works too")
    frontend.add_argument("--role-arn", help="assume this role for the bucket and CloudFront")
    frontend.add_argument("--include-hidden", action="store_true",
                          help="also publish names starting with a dot (.env, .git/ are left out by default; "
                               ".well-known/ is always published)")
    frontend.add_argument("--workers", type=int, default=8, help="parallel uploads (default 8)")
    frontend.set_defaults(handler=_deploy_frontend)
    _add_pipeline_commands(commands)
    return root


def _context(args: argparse.Namespace) -> object:
    """Credentials: the usual AWS chain, read when the first AWS client is made (delivery/aws.py), so
    the command's own checks come first; AWS_ENDPOINT_URL or --endpoint-url for an emulator."""
    from delivery.aws import Aws
    from delivery.pipeline import Context

    return Context(environments_dir=args.environments_dir, aws=Aws(None, args.endpoint_url))


def _release(args: argparse.Namespace) -> int:
    from delivery.pipeline import release

    release(_context(args), service=args.service, tag=args.tag, environment=args.env)  # type: ignore[arg-type]
    return 0


def _promote(args: argparse.Namespace) -> int:
    from delivery.pipeline import promote

    promote(_context(args), args.source, args.target, service=args.service, tag=args.tag)  # type: ignore[arg-type]
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from delivery.pipeline import migrate

    return migrate(_context(args), args.env, timeout_seconds=args.timeout_seconds)  # type: ignore[arg-type]


def _verify(args: argparse.Namespace) -> int:
    from delivery.pipeline import verify

    return verify(_context(args), args.env, base_url=args.url,  # type: ignore[arg-type]
                  grace_seconds=args.grace_seconds, poll_seconds=args.poll_seconds,
                  rollout_timeout_seconds=args.rollout_timeout_seconds)


def _canary(args: argparse.Namespace) -> int:
    from delivery import canary

    context = _context(args) if args.action in ("start", "judge") else _offline_context(args)
    if args.action == "pending":
        print(" ".join(canary.pending(context, args.env)))  # type: ignore[arg-type]
        return 0
    if not args.service:
        raise UsageError(f"canary {args.action} needs --service")
    if args.action == "start":
        percent = canary.FIRST_PERCENT if args.percent is None else args.percent
        canary.start(context, args.env, service=args.service, percent=percent)  # type: ignore[arg-type]
    elif args.action == "step":
        if args.percent is None:
            raise UsageError("canary step needs --percent (the new, higher share)")
        canary.step(context, args.env, service=args.service, percent=args.percent)  # type: ignore[arg-type]
    elif args.action == "promote":
        canary.promote(context, args.env, service=args.service)  # type: ignore[arg-type]
    elif args.action == "abort":
        canary.abort(context, args.env, service=args.service)  # type: ignore[arg-type]
    else:
        if args.bake is None:
            raise UsageError("canary judge needs --bake MINUTES (the window it compares)")
        return canary.judge(context, args.env, service=args.service, bake_minutes=args.bake)  # type: ignore[arg-type]
    return 0


def _offline_context(args: argparse.Namespace) -> object:
    """step, promote and abort only rewrite the release file: no AWS call, no credentials needed."""
    from delivery.pipeline import Context

    return Context(environments_dir=args.environments_dir, aws=None)  # type: ignore[arg-type]


def _add_pipeline_commands(commands: argparse._SubParsersAction) -> None:
    from modules import tiers

    def common(command: argparse.ArgumentParser) -> None:
        command.add_argument("--environments-dir", type=Path, default=PROJECT / "environments",
                             help="where the environment and release files are (default: environments/)")
        command.add_argument("--endpoint-url", help="send every AWS call here (an emulator); "
                                                    "AWS_ENDPOINT_URL works too")

    release = commands.add_parser(
        "release", help="pin a pushed image tag, by digest, in the first environment's release file",
        description="Look up the digest of SERVICE's image TAG in ECR (the registry in shared.hcl) and write it "
                    "into environments/<first env>.release.hcl. Refuses a tag that does not exist and an image "
                    "whose completed scan has CRITICAL findings. Commit the file: that commit is the deploy.",
        epilog="exit status: 0 released, 1 refused or failed (no file changed), 2 bad input")
    release.add_argument("--service", required=True, help="service name (or 'migrations' for the Flyway image)")
    release.add_argument("--tag", required=True, help="the pushed tag (the commit SHA)")
    environment_argument(release, required=False,
                         meaning="the first environment of promotion_order (the default, and the only one allowed)")
    common(release)
    release.set_defaults(handler=_release)

    promote = commands.add_parser(
        "promote", help="copy the pinned digests to the next environment (dev -> stage -> prod)",
        description="Copy the digests pinned in SOURCE's release file (every one, or only --service's) into "
                    "TARGET's, where TARGET follows SOURCE in promotion_order (no skipping). With --tag, refuses "
                    "unless SOURCE still pins that tag of the service (the approved one). Checks each digest "
                    "still exists in ECR and prints the diff; never rebuilds or retags.",
        epilog="exit status: 0 promoted (or already equal), 1 refused or failed (no file changed), 2 bad input")
    promote.add_argument("source", help="environment to promote from")
    promote.add_argument("target", help="the next environment")
    promote.add_argument("--service", help="promote only this service's image (or 'migrations')")
    promote.add_argument("--tag", help="with --service: only if SOURCE pins this tag of it (the approved one)")
    common(promote)
    promote.set_defaults(handler=_promote)

    canary = commands.add_parser(
        "canary", help="run a candidate beside a service's stable version, step, judge, promote or abort it",
        description="start, step, promote and abort rewrite environments/<env>.release.hcl (diff printed, written "
                    "atomically) and changes nothing in AWS: commit the file, the reconciler applies it. "
                    "start: pin as the service's canary the digest the previous environment of promotion_order "
                    "runs (checked in ECR and tagged release-<env>-<tag> like a promotion) at --percent (default "
                    "10) of the stage's requests; at most one canary per service. step: raise the share to "
                    "--percent. promote: the candidate becomes the stable image, the canary goes. abort: the canary "
                    "goes, the stable image stays. judge: compare the candidate's 5XX rate and average latency on "
                    "the service's routes (API Gateway metrics of Stage <stage>/Canary) with the stable version's "
                    "(Stage <stage>) over the last --bake minutes, against the environment's api.canary_* "
                    "thresholds. pending: print the services whose digest in the previous environment differs from this "
                    "environment's (what goes out as a canary).",
        epilog="exit status: 0 written (judge: promote), 1 refused or failed (judge: too little traffic to decide), "
               "2 bad input, 3 judge: abort")
    canary.add_argument("action", choices=["start", "step", "promote", "abort", "judge", "pending"])
    canary.add_argument("env", help="environment name")
    canary.add_argument("--service", help="the service (every action but pending)")
    canary.add_argument("--percent", type=float, help="start: the first share (default 10); step: the new share")
    canary.add_argument("--bake", type=int, metavar="MINUTES", help="judge: the window compared, in minutes")
    common(canary)
    canary.set_defaults(handler=_canary)

    migrate = commands.add_parser(
        "migrate", help="run the Flyway migration task once in an environment",
        description="Run the <env>-api stack's migration task definition (its state output) as a one-off "
                    "Fargate task in the private subnets, wait for it to stop, print where its logs are, and exit "
                    "with the container's exit code. Run `apply-migrations <env>` first (it registers the "
                    "release's migrations image), then this, then `apply <env>`.",
        epilog="exit status: the container's exit code (0 migrated), 1 failed or no exit code, 2 bad input")
    environment_argument(migrate)
    migrate.add_argument("--timeout-seconds", type=float, default=1800, help="give up waiting after this long")
    common(migrate)
    migrate.set_defaults(handler=_migrate)

    verify = commands.add_parser(
        "verify", help="wait until ECS has rolled out what was applied, then call each public health path",
        description="For each service of the environment: wait until its ECS primary deployment is COMPLETED on "
                    "the task definition the <env>-api stack was just applied with (its TaskDefinitionArns "
                    "output), failing at once when the deployment FAILED or ECS rolled it back; then, for services "
                    "whose routes need no AWS credentials (authorization NONE), call <invoke URL>/<path_prefix>"
                    "<health_check_path> with their required headers until it answers 200 within "
                    "health_check_grace_period_seconds. AWS_IAM services are verified by their rollout only (the "
                    "deploy role is not an API caller); a cached GET answer only shows the route works.",
        epilog="exit status: 0 all rolled out and healthy, 1 a rollout failed, was rolled back or timed out, or a "
               "health path did not answer 200 in time, 2 bad input")
    environment_argument(verify)
    verify.add_argument("--url", help="base URL instead of the <env>-api stack's invoke URL output")
    verify.add_argument("--grace-seconds", type=float, help="override every service's grace period")
    verify.add_argument("--poll-seconds", type=float, default=5, help="seconds between probes (default 5)")
    verify.add_argument("--rollout-timeout-seconds", type=float, default=1800,
                        help="give up waiting for the ECS rollouts after this long (default 1800)")
    common(verify)
    verify.set_defaults(handler=_verify)

    stacks = commands.add_parser("stacks", help="an environment's stacks, in the order they apply",
                                 description="Print the environment's stack names in dependency order.")
    environment_argument(stacks)
    common(stacks)
    stacks.set_defaults(handler=_stacks)

    def terraform_options(command: argparse.ArgumentParser) -> None:
        environment_argument(command)
        command.add_argument("--stacks-dir", type=Path, default=PROJECT / "cdktf.out" / "stacks",
                             help="the synthesized stacks (default: cdktf.out/stacks; run `make synth` first)")
        command.add_argument("--lock-timeout", default=DEFAULT_LOCK_TIMEOUT, metavar="DURATION",
                             help="how long terraform waits for a state lock another run holds (default "
                                  f"{DEFAULT_LOCK_TIMEOUT}; e.g. 30s, 10m)")
        common(command)

    plan = commands.add_parser(
        "plan", help="plan every stack of an environment into saved plans and a summary",
        description="In cdktf.out/stacks/<stack>: terraform init and plan every stack of the environment, "
                    "side by side (a plan changes nothing), into --out: <stack>.tfplan (the saved plan apply "
                    "takes), <stack>.tfplan.json (terraform show -json), <stack>.tfplan.txt, and summary.json / "
                    "summary.md: per stack the counts of create, update, replace and delete, every replaced or "
                    "deleted address with the stateful ones flagged, the commit, the synth's hash, the "
                    "terraform and provider versions and the time. Credentials as configured (Jenkins assumes "
                    "the environment's role first).",
        epilog="exit status: 0 planned, 1 terraform failed, 2 bad input (nothing run), 130 interrupted")
    terraform_options(plan)
    plan.add_argument("--out", type=Path, help="where the plans go (default: cdktf.out/plans/<env>)")
    plan.add_argument("--release", action="store_true",
                      help="an application release: plan only <env>-api")
    plan.add_argument("--parallel", type=int, default=DEFAULT_PARALLEL_PLANS, metavar="N",
                      help=f"stacks planned at once (default {DEFAULT_PARALLEL_PLANS})")
    plan.set_defaults(handler=_plan)

    apply = commands.add_parser(
        "apply", help="apply an environment's saved plans (--plans), or plan and apply now",
        description="With --plans DIR: apply exactly the saved plans `plan --out DIR` wrote, in dependency "
                    "order, after checking them all: refused (one line each, nothing applied) when they were "
                    "made from another commit or synth, when a stack's state changed since its plan (stale), "
                    "when a production environment's plan replaces or deletes a stateful resource that "
                    "--allow-replace does not name, and with --release when <env>-api's plan changes anything "
                    "but task definitions and ECS services. Without --plans (humans): plan now, same checks, "
                    "apply. prevent_destroy in the stacks stays the second wall. Before <env>-api's services roll "
                    "(before it is planned, or its saved plan applied), every Secrets Manager secret its task "
                    "definitions read must have a value: otherwise exit 2, one line naming the secret and the "
                    "command that sets it (a first deploy without --plans creates the api stack's secrets alone "
                    "first).",
        epilog="exit status: 0 applied, 1 terraform failed or the apply was not approved (the message says what "
               "was applied), 2 refused or "
               "bad input (nothing applied; a secret without a value: no service rolled, the stacks before "
               "<env>-api may be applied), 130 interrupted (terraform stopped cleanly)")
    terraform_options(apply)
    apply.add_argument("--plans", type=Path, help="the saved plans (from `plan --out`)")
    apply.add_argument("--allow-replace", action="append", default=[], metavar="ADDRESS",
                       help="a stateful resource address a production plan may replace or delete (repeatable)")
    apply.add_argument("--release", action="store_true",
                       help="an application release: apply only <env>-api, refused when its plan holds "
                            "infrastructure changes")
    apply.add_argument("--yes", action="store_true",
                       help="apply without asking; without it, a terminal is asked once the plans are checked "
                            "(only 'yes' approves). Without a terminal (pipelines) nothing is asked")
    apply.set_defaults(handler=_apply)

    apply_stack = commands.add_parser(
        "apply-stack", help="plan and apply bootstrap or shared-cicd (the stacks of no one environment)",
        description="In cdktf.out/stacks/<stack> (run `make synth` for every environment first): terraform init, "
                    "plan, the checks of `apply` (a plan that replaces or deletes a stateful resource is refused "
                    "unless --allow-replace names it), apply. bootstrap: with credentials for the state account "
                    "(its state is the local file terraform.bootstrap.tfstate in the project folder); shared-cicd: "
                    "for the registry account, which must be able to assume every environment's Terraform role.",
        epilog="exit status: 0 applied, 1 terraform failed, 2 refused or bad input (nothing applied), "
               "130 interrupted (terraform stopped cleanly)")
    apply_stack.add_argument("stack", choices=[tiers.BOOTSTRAP.name, tiers.CICD.name])
    apply_stack.add_argument("--stacks-dir", type=Path, default=PROJECT / "cdktf.out" / "stacks",
                             help="the synthesized stacks (default: cdktf.out/stacks; run `make synth` first)")
    apply_stack.add_argument("--lock-timeout", default=DEFAULT_LOCK_TIMEOUT, metavar="DURATION",
                             help=f"how long terraform waits for a state lock (default {DEFAULT_LOCK_TIMEOUT})")
    apply_stack.add_argument("--allow-replace", action="append", default=[], metavar="ADDRESS",
                             help="let the plan replace or delete this stateful resource (repeatable)")
    apply_stack.add_argument("--yes", action="store_true",
                             help="apply without asking; without it, a terminal is asked once the plan is checked "
                                  "(only 'yes' approves). Without a terminal nothing is asked")
    apply_stack.add_argument("--endpoint-url", help="send every AWS call here (an emulator); "
                                                    "AWS_ENDPOINT_URL works too")
    apply_stack.set_defaults(handler=_apply_stack)

    drift = commands.add_parser(
        "drift", help="plan every stack and report whether the cloud differs from main (changes nothing)",
        description="Plan every stack of the environment (into --out, default cdktf.out/drift/<env>) and apply "
                    "nothing. Prints the summary when a stack would change, including what changed outside "
                    "Terraform.",
        epilog="exit status: 0 no drift, 3 drift, 1 error, 2 bad input")
    terraform_options(drift)
    drift.add_argument("--out", type=Path, help="where the plans go (default: cdktf.out/drift/<env>)")
    drift.add_argument("--parallel", type=int, default=DEFAULT_PARALLEL_PLANS, metavar="N")
    drift.set_defaults(handler=_drift)

    notify = commands.add_parser(
        "notify", help="publish a message to the pipeline report topic",
        description="Publish --subject and the text of --message-file to the pipeline report topic (the "
                    "shared-cicd stack's ReportTopic output, or --topic-arn). The CI role may publish there.",
        epilog="exit status: 0 published, 1 failed, 2 bad input")
    notify.add_argument("--subject", required=True)
    notify.add_argument("--message-file", required=True, type=Path)
    notify.add_argument("--topic-arn", help="default: the shared-cicd stack's ReportTopic output")
    common(notify)
    notify.set_defaults(handler=_notify)

    migrations = commands.add_parser(
        "apply-migrations", help="register the release's Flyway task definition (before migrate)",
        description="In cdktf.out/stacks/<env>-api (run `make synth` first): terraform init, then a plan "
                    "targeted at the Flyway task definition the stack's MigrationTaskDefinitionArn output names "
                    "(and what it needs), refused like a release (--release) when it holds anything but task "
                    "definitions and ECS services, then its apply. Run it before `migrate`, which "
                    "runs that output: without it, migrate would run the previous release's migrations image. "
                    "Terraform runs as the environment's Terraform role, as for every apply.",
        epilog="exit status: 0 done, 1 terraform failed, 2 bad input")
    terraform_options(migrations)
    migrations.set_defaults(handler=_apply_migrations)

    collector = commands.add_parser(
        "collector-image", help="print the collector mirror's source, target and region, or --check it in ECR",
        description="Print `SOURCE TARGET REGION` for copying the ADOT collector sidecar into the registry with every "
                    "platform (`make mirror-collector` passes them to ci/mirror-image.sh). With --check: read the "
                    "mirrored tag's manifest from ECR (BatchGetImage) and fail unless it offers every CPU "
                    "architecture the environments' services run on.",
        epilog="exit status: 0 printed or every architecture present, 1 an architecture missing or the tag absent, "
               "2 bad input")
    collector.add_argument("--source", help="copy from this image instead of public.ecr.aws/aws-observability/"
                                            "aws-otel-collector:<collector_image_tag>")
    collector.add_argument("--check", action="store_true", help="check the mirrored image instead of printing")
    common(collector)
    collector.set_defaults(handler=_collector_image)

    lock = commands.add_parser(
        "lock", help="print the name of an environment's pipeline lock (<project>-<env>)",
        description="The Lockable Resources name the infrastructure pipeline holds while it plans or applies the "
                    "environment: <project>-<env>, from the environment files (no AWS call).")
    environment_argument(lock)
    common(lock)
    lock.set_defaults(handler=_lock)

    role = commands.add_parser(
        "role", help="print the CI role's ARN, or an environment's plan or deploy role's",
        description="Derive the role ARN from the environment files, by the names shared-cicd gives the roles "
                    "(no AWS call: the pipelines exchange their Jenkins id token for it).",
        epilog="exit status: 0 printed, 2 bad input")
    role.add_argument("kind", choices=["ci", "plan", "deploy"])
    environment_argument(role, required=False, meaning="environment (plan and deploy roles)")
    common(role)
    role.set_defaults(handler=_role)


def _stacks(args: argparse.Namespace) -> int:
    from delivery.pipeline import Context
    from delivery.terraform import environment_stacks

    context = Context(args.environments_dir, aws=None)  # type: ignore[arg-type]
    print(" ".join(environment_stacks(context.load(args.env), args.env)))
    return 0


def _credentials() -> None:
    """Terraform and boto3 share the AWS credential chain: stop before anything runs without one."""
    from delivery.aws import credentials_session

    credentials_session()


def _environment(args: argparse.Namespace) -> tuple[Any, Any]:
    """The environments (the named one loaded) and its config."""
    from delivery.aws import load_environments

    environments = load_environments(args.environments_dir, args.env)
    return environments, environments.get(args.env)


def _terraform(args: argparse.Namespace) -> Any:
    from delivery.terraform import Terraform

    extra = {"AWS_ENDPOINT_URL": args.endpoint_url} if args.endpoint_url else {}
    return Terraform.create(args.stacks_dir.parent / ".terraform-cli", sys.stdout, args.lock_timeout, extra)


def _plan_options(args: argparse.Namespace, release: bool) -> Any:
    """What plan, apply and drift run, after the checks that need no credentials: the flags, the
    environment files, the synthesized stacks."""
    from delivery.terraform import PlanOptions, check_lock_timeout, environment_dependencies, synthesized
    from modules.layout import stack_name

    check_lock_timeout(args.lock_timeout)
    if getattr(args, "parallel", 1) < 1:
        raise UsageError(f"--parallel must be at least 1, got {args.parallel}")
    plans = getattr(args, "plans", None)
    if plans is not None and not plans.is_dir():
        raise UsageError(f"--plans {plans} is not a folder: make the plans with `python -m delivery plan "
                         f"{args.env} --out {plans}`")
    environments, config = _environment(args)
    dependencies = environment_dependencies(environments, args.env)
    stacks = (stack_name(args.env, "api"),) if release else tuple(dependencies)
    for stack in stacks:
        synthesized(args.stacks_dir, stack)
    return PlanOptions(environment=args.env, stacks=stacks, dependencies=dependencies,
                       production=config.production, release=release,
                       parallel=getattr(args, "parallel", DEFAULT_PARALLEL_PLANS))


def _plan(args: argparse.Namespace) -> int:
    from delivery.terraform import forwarding_signals, plan_environment

    options = _plan_options(args, args.release)
    _credentials()
    terraform = _terraform(args)
    with forwarding_signals(terraform):
        plan_environment(terraform, args.stacks_dir, args.out or args.stacks_dir.parent / "plans" / args.env, options)
    return 0


def _apply(args: argparse.Namespace) -> int:
    from delivery.secrets import gate, saved_plan_check
    from delivery.terraform import ApplyOptions, apply_plans, apply_targeted, forwarding_signals, plan_and_apply
    from modules.layout import stack_name

    plan = _plan_options(args, args.release)
    options = ApplyOptions(environment=args.env, stacks=plan.stacks, dependencies=plan.dependencies,
                           production=plan.production, release=args.release,
                           allow_replace=tuple(args.allow_replace))
    _credentials()
    terraform = _terraform(args)
    api = stack_name(args.env, "api")
    plans_dir = args.stacks_dir.parent / "plans" / args.env

    def secrets_check(stack: str) -> None:
        """Before `<env>-api`'s services roll: every secret their tasks read has a value
        (delivery/secrets.py). The Secrets Manager client is made only when that stack is reached."""
        if stack != api:
            return
        _, config = _environment(args)
        secretsmanager = _context(args).aws.client("secretsmanager", config.region)  # type: ignore[attr-defined]
        if args.plans is not None:
            saved_plan_check(args.stacks_dir, api, args.env, secretsmanager)(stack)
        else:
            gate(args.stacks_dir, api, secretsmanager, lambda targets: apply_targeted(
                terraform, args.stacks_dir, plans_dir / "secrets", api, targets, options))(stack)

    confirm = None if args.yes or sys.stdin is None or not sys.stdin.isatty() else _ask
    with forwarding_signals(terraform):
        if args.plans is not None:
            apply_plans(terraform, args.stacks_dir, args.plans, options, before_apply=secrets_check, confirm=confirm)
        else:
            plan_and_apply(terraform, args.stacks_dir, plans_dir, plan, options, before_plan=secrets_check,
                           confirm=confirm)
    return 0


def _ask(question: str) -> bool:
    """Ask at the terminal; only `yes` approves (terraform's rule). Ctrl-C here stops at once (nothing
    runs while the question waits), rather than going to terraform like Ctrl-C during an apply."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return input(question).strip() == "yes"
    except EOFError:
        return False
    finally:
        signal.signal(signal.SIGINT, previous)


def _apply_stack(args: argparse.Namespace) -> int:
    """bootstrap or shared-cicd: the organisation's stacks, which no environment's `apply` reaches.

    The same plan, checks and apply as `apply <env>`, with the stateful guard of production on: both
    hold what cannot come back (the state bucket and lock table; the image repositories and keys)."""
    from delivery.terraform import ApplyOptions, PlanOptions, forwarding_signals, plan_and_apply, synthesized

    stack = args.stack
    try:
        synthesized(args.stacks_dir, stack)
    except UsageError as missing:
        raise UsageError(f"{missing}, for every environment ({stack} is built from all of them; "
                         "ENVIRONMENTS=... leaves it out)") from None
    plan = PlanOptions(environment=stack, stacks=(stack,), dependencies={stack: ()}, production=True, parallel=1)
    options = ApplyOptions(environment=stack, stacks=(stack,), dependencies={stack: ()}, production=True,
                           allow_replace=tuple(args.allow_replace))
    _credentials()
    terraform = _terraform(args)
    confirm = None if args.yes or sys.stdin is None or not sys.stdin.isatty() else _ask
    with forwarding_signals(terraform):
        plan_and_apply(terraform, args.stacks_dir, args.stacks_dir.parent / "plans" / stack, plan, options,
                       confirm=confirm)
    return 0


def _drift(args: argparse.Namespace) -> int:
    from delivery.terraform import drift, forwarding_signals

    options = _plan_options(args, release=False)
    _credentials()
    terraform = _terraform(args)
    with forwarding_signals(terraform):
        return drift(terraform, args.stacks_dir, args.out or args.stacks_dir.parent / "drift" / args.env, options)


def _notify(args: argparse.Namespace) -> int:
    from delivery.aws import aws_error
    from delivery.terraform import report_topic

    if not args.message_file.is_file():
        raise UsageError(f"--message-file {args.message_file} does not exist")
    context = _context(args)
    environments = context.load()  # type: ignore[attr-defined]
    topic = args.topic_arn or report_topic(environments, context.aws)  # type: ignore[attr-defined]
    region = topic.split(":")[3] if topic.count(":") >= 5 else environments.shared.registry.region
    from botocore.exceptions import ClientError

    try:
        context.aws.client("sns", region).publish(  # type: ignore[attr-defined]
            TopicArn=topic, Subject=args.subject[:100], Message=args.message_file.read_text())
    except ClientError as error:
        raise DeployError(f"cannot publish to {topic}: {aws_error(error)}") from None
    print(f"published to {topic}")
    return 0


def _apply_migrations(args: argparse.Namespace) -> int:
    from delivery.terraform import apply_migrations, forwarding_signals

    _environment(args)
    _credentials()
    terraform = _terraform(args)
    with forwarding_signals(terraform):
        apply_migrations(terraform, args.stacks_dir, args.env)
    return 0


def _collector_image(args: argparse.Namespace) -> int:
    from delivery.images import architectures_in_use, check_sidecar, collector_image
    from delivery.pipeline import Context

    environments = Context(args.environments_dir, aws=None).load()  # type: ignore[arg-type]
    if not args.check:
        print(" ".join(collector_image(environments, args.source)))
        return 0
    registry, cicd = environments.shared.registry, environments.shared.cicd
    ecr = _context(args).aws.client("ecr", registry.region)  # type: ignore[attr-defined]
    warning = check_sidecar(ecr, registry.account_id, cicd.collector_image_repository, cicd.collector_image_tag,
                            architectures_in_use(environments))
    if warning:
        raise DeployError(warning)
    print(f"ok: {cicd.collector_image_repository}:{cicd.collector_image_tag} has every architecture in use")
    return 0


def _role(args: argparse.Namespace) -> int:
    from delivery.pipeline import Context
    from delivery.terraform import role

    context = Context(args.environments_dir, aws=None)  # type: ignore[arg-type]
    names = (args.env,) if args.kind != "ci" and args.env else ()
    print(role(context.load(*names), args.kind, args.env))
    return 0


def _lock(args: argparse.Namespace) -> int:
    from delivery.pipeline import Context
    from delivery.terraform import pipeline_lock

    context = Context(args.environments_dir, aws=None)  # type: ignore[arg-type]
    print(pipeline_lock(context.load(args.env), args.env))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from delivery.terraform import Interrupted

    args = parser().parse_args(argv)
    _resolve_environment(args)
    try:
        return int(args.handler(args))
    except UsageError as error:
        for line in str(error).splitlines() or [""]:
            print(f"error: {line}", file=sys.stderr)
        return 2
    except Interrupted as error:
        print(f"error: {error}", file=sys.stderr)
        return 130
    except DeployError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] in ("delivery", "modules"):
            raise
        # Run outside the project's virtualenv (`python3 -m delivery` with the system Python).
        print(f"error: {error.name} is not installed for {sys.executable}: run the commands with the project's "
              "virtualenv, `.venv/bin/python -m delivery ...` (`make venv` creates it)", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - one line for the user; DELIVERY_DEBUG=1 shows the traceback
        if os.environ.get("DELIVERY_DEBUG") == "1":
            raise
        print(f"error: unexpected {type(error).__name__}: {error} (DELIVERY_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
