"""`python -m delivery <command>`: the project's delivery commands (see `--help`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from delivery import DeployError, UsageError

PROJECT = Path(__file__).resolve().parent.parent


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
        description="Delivery commands for the webapp environments (run from Jenkins or a shell).",
    )
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
    frontend.add_argument("--env", required=True, help="environment name (environments/<env>.hcl)")
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
    """Credentials: the usual AWS chain; AWS_ENDPOINT_URL or --endpoint-url for an emulator."""
    import boto3
    from botocore.exceptions import NoCredentialsError

    from delivery.frontend import Aws
    from delivery.pipeline import Context

    session = boto3.Session()
    if session.get_credentials() is None:
        raise UsageError("no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                         "or run where an instance or task role is available") from NoCredentialsError()
    return Context(environments_dir=args.environments_dir, aws=Aws(session, args.endpoint_url))


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


def _add_pipeline_commands(commands: argparse._SubParsersAction) -> None:
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
    release.add_argument("--env", help="the first environment of promotion_order (the default)")
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

    migrate = commands.add_parser(
        "migrate", help="run the Flyway migration task once in an environment",
        description="Run the <env>-api stack's migration task definition (its state output) as a one-off "
                    "Fargate task in the private subnets, wait for it to stop, print where its logs are, and exit "
                    "with the container's exit code. Run `apply-migrations <env>` first (it registers the "
                    "release's migrations image), then this, then `apply <env>`.",
        epilog="exit status: the container's exit code (0 migrated), 1 failed or no exit code, 2 bad input")
    migrate.add_argument("env", help="environment name")
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
    verify.add_argument("env", help="environment name")
    verify.add_argument("--url", help="base URL instead of the <env>-api stack's invoke URL output")
    verify.add_argument("--grace-seconds", type=float, help="override every service's grace period")
    verify.add_argument("--poll-seconds", type=float, default=5, help="seconds between probes (default 5)")
    verify.add_argument("--rollout-timeout-seconds", type=float, default=1800,
                        help="give up waiting for the ECS rollouts after this long (default 1800)")
    common(verify)
    verify.set_defaults(handler=_verify)

    stacks = commands.add_parser("stacks", help="an environment's stacks, in the order they apply",
                                 description="Print the environment's stack names in dependency order.")
    stacks.add_argument("env", help="environment name")
    common(stacks)
    stacks.set_defaults(handler=_stacks)

    for name, verb in (("plan", "plan"), ("apply", "plan and apply")):
        command = commands.add_parser(
            name, help=f"{verb} every stack of an environment in dependency order",
            description=f"In cdktf.out/stacks/<stack> (run `make synth` first): terraform init, then {verb} "
                        "each stack of the environment in order. Plans are kept as <stack>.tfplan and "
                        "<stack>.tfplan.txt for review and archiving. Uses the backend and credentials as "
                        "configured (Jenkins assumes the environment's deploy role first).",
            epilog="exit status: 0 done, 1 terraform failed, 2 bad input")
        command.add_argument("env", help="environment name")
        command.add_argument("--stacks-dir", type=Path, default=PROJECT / "cdktf.out" / "stacks")
        common(command)
        command.set_defaults(handler=_plan, apply=name == "apply")

    migrations = commands.add_parser(
        "apply-migrations", help="register the release's Flyway task definition (before migrate)",
        description="In cdktf.out/stacks/<env>-api (run `make synth` first): terraform init, then a plan and apply "
                    "targeted at the Flyway task definition the stack's MigrationTaskDefinitionArn output names "
                    "(and what it needs), kept as <env>-api.migrations.tfplan(.txt). Run it before `migrate`, which "
                    "runs that output: without it, migrate would run the previous release's migrations image. "
                    "Terraform runs as the environment's Terraform role, as for every apply.",
        epilog="exit status: 0 done, 1 terraform failed, 2 bad input")
    migrations.add_argument("env", help="environment name")
    migrations.add_argument("--stacks-dir", type=Path, default=PROJECT / "cdktf.out" / "stacks")
    common(migrations)
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

    role = commands.add_parser("role", help="print the CI role or an environment's deploy role ARN",
                               description="Read the role ARN from the shared-cicd stack's state outputs.")
    role.add_argument("kind", choices=["ci", "deploy"])
    role.add_argument("env", nargs="?", help="environment (deploy roles)")
    common(role)
    role.set_defaults(handler=_role)

    access = commands.add_parser(
        "access", help="print how the pipeline assumes the CI role or a deploy role (external id, via)",
        description="Print key=value lines from the environment files (no AWS call): external_id (what the "
                    "role's trust requires; empty when none) and, for deploy roles, via (ci-role: assume it from "
                    "a CI-role session; principals: only cicd.deploy_principal_arns may) and mfa. The Jenkinsfiles "
                    "read these instead of keeping copies.",
        epilog="exit status: 0 printed, 2 bad input")
    access.add_argument("kind", choices=["ci", "deploy"])
    access.add_argument("env", nargs="?", help="environment (deploy roles)")
    common(access)
    access.set_defaults(handler=_access)


def _stacks(args: argparse.Namespace) -> int:
    from delivery.pipeline import Context
    from delivery.terraform import environment_stacks

    context = Context(args.environments_dir, aws=None)  # type: ignore[arg-type]
    print(" ".join(environment_stacks(context.load(args.env), args.env)))
    return 0


def _plan(args: argparse.Namespace) -> int:
    from delivery.pipeline import Context
    from delivery.terraform import environment_stacks, plan

    context = Context(args.environments_dir, aws=None)  # type: ignore[arg-type]
    environments = context.load(args.env)
    before = _secrets_gate(args, environments) if args.apply else None
    plan(args.stacks_dir, environment_stacks(environments, args.env), sys.stdout, apply=args.apply, before=before)
    return 0


def _secrets_gate(args: argparse.Namespace, environments: object) -> Callable[[str], None]:
    """Before `<env>-api` is planned: its new secrets applied alone, then every secret its tasks read
    checked for a value (delivery/secrets.py)."""
    from delivery.secrets import gate
    from delivery.terraform import plan
    from modules.layout import stack_name

    region = environments.get(args.env).region  # type: ignore[attr-defined]
    api = stack_name(args.env, "api")
    secretsmanager = _context(args).aws.client("secretsmanager", region)  # type: ignore[attr-defined]
    return gate(args.stacks_dir, api, secretsmanager, lambda targets: plan(
        args.stacks_dir, [api], sys.stdout, apply=True, targets=tuple(targets), name="secrets"))


def _apply_migrations(args: argparse.Namespace) -> int:
    from delivery.pipeline import Context
    from delivery.terraform import apply_migrations

    Context(args.environments_dir, aws=None).load(args.env)  # type: ignore[arg-type]
    apply_migrations(args.stacks_dir, args.env, sys.stdout)
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
    from delivery.terraform import role

    context = _context(args)
    print(role(context.load(), context.aws, args.kind, args.env))  # type: ignore[attr-defined]
    return 0


def _access(args: argparse.Namespace) -> int:
    from delivery.pipeline import Context
    from delivery.terraform import access

    context = Context(args.environments_dir, aws=None)  # type: ignore[arg-type]
    names = (args.env,) if args.kind == "deploy" and args.env else ()
    for key, value in access(context.load(*names), args.kind, args.env).items():
        print(f"{key}={value}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except DeployError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
