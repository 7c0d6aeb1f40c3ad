"""The Jenkins pipelines call only commands that exist, in the order the design requires."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require
from tests.harness.project import PROJECT

INFRA = PROJECT / "Jenkinsfile"
APP = PROJECT / "ci" / "app.Jenkinsfile"


def make_targets() -> set[str]:
    text = (PROJECT / "Makefile").read_text()
    return {m.group(1) for m in re.finditer(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, re.MULTILINE)}


def delivery_commands() -> set[str]:
    from delivery.__main__ import parser

    actions = [a for a in parser()._actions if a.dest == "command"]
    return set(actions[0].choices)


def strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", text)


def blocks(text: str, opener: str) -> list[str]:
    """The bodies of every `opener {` block (brace-matched)."""
    found = []
    for match in re.finditer(re.escape(opener) + r"\s*\{", text):
        depth, start = 1, match.end()
        for index in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[index], 0)
            if depth == 0:
                found.append(text[start:index])
                break
    return found


def function_body(text: str, name: str) -> str:
    (body,) = blocks(text, f"def {name}(" + text.split(f"def {name}(", 1)[1].split(")", 1)[0] + ")")
    return body


BOTH = pytest.mark.parametrize("path", [INFRA, APP], ids=["Jenkinsfile", "app.Jenkinsfile"])


def stages(text: str) -> list[str]:
    return re.findall(r"stage\('([^']+)'\)", text)


def make_calls(text: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"make\s+(?:--silent\s+)?(?:-C\s+infra\s+)?([a-z][\w.-]*)", text)]


def delivery_calls(text: str) -> list[str]:
    return re.findall(r"python -m delivery ([a-z][\w-]*)", text)


def infra_text_of_app() -> str:
    """The parts of the app pipeline that run in the infra checkout (`dir(infraDir())`)."""
    text = strip_comments(APP.read_text())
    return "\n".join(blocks(text, "dir(infraDir())"))


@pytest.mark.parametrize("text_of", [lambda: strip_comments(INFRA.read_text()), infra_text_of_app],
                         ids=["Jenkinsfile", "app.Jenkinsfile"])
def test_every_make_target_and_delivery_command_exists(text_of):
    text = text_of()
    targets, commands = make_targets(), delivery_commands()
    calls = make_calls(text)
    assert calls, "no make calls found: the parser is broken"
    assert [c for c in calls if c not in targets] == []
    assert [c for c in delivery_calls(text) if c not in commands] == []


def test_app_pipeline_stages_follow_the_design():
    """Design section 4, the CI side: webhook, quality gate, build, tests, Trivy, ECR, then the GitOps
    release as a proposal; no deploy stage of its own (issue 17)."""
    text = strip_comments(APP.read_text())
    order = stages(text)
    required = ["SonarQube analysis", "Quality gate", "Unit tests", "Docker build", "Trivy scan", "Push to ECR",
                "Propose release"]
    assert [s for s in order if s in required] == required
    assert not [s for s in order if s.startswith(("Deploy", "Approve", "Promote", "Apply", "Migrate"))], order


def test_app_pipeline_gates_and_scans_as_the_design_says():
    text = strip_comments(APP.read_text())
    assert "githubPush()" in text
    assert "waitForQualityGate abortPipeline: true" in text
    assert re.search(r"trivy image --exit-code 1 --severity CRITICAL", text)
    (trivy,) = blocks(text, "stage('Trivy scan')")
    # The REPORT goes to the report topic (its subscribers: cicd.report_email_addresses) through
    # `make notify` (the topic ARN from shared-cicd's outputs), as the CI role: no address kept in Jenkins.
    assert 'make notify SUBJECT="REPORT: critical vulnerabilities in $SERVICE"' in trivy
    assert 'asCiRole("report-' in trivy
    assert "emailext" not in trivy and "pipeline-report-address" not in text
    assert 'docker push "$IMAGE:$TAG"' in text, "images are pushed tagged with the commit SHA"


def test_app_pipeline_holds_no_deploy_or_prod_credentials_and_no_infra_push_key():
    """The app repository's developers edit this file: whatever it names, they hold."""
    text = strip_comments(APP.read_text())
    assert "withAWS" not in text and "-approvals" not in text and "prod-approvers" not in text
    assert not re.search(r"ROLE=(deploy|plan)|roleArn\('(deploy|plan)'|asDeployRole|asPlanRole", text)
    credentials = set(re.findall(r"credentialsId: '([^']+)'", text)) | set(re.findall(r"credentials\('([^']+)'\)", text))
    # The REPORT goes to the report topic as the CI role (make notify): no mail address credential.
    assert credentials == {"jenkins-oidc-token", "ecr-registry"}, credentials
    keys = re.findall(r"sshagent\(credentials: \[([^\]]*)\]\)", text)
    assert keys == ["'infra-release-proposer'"], keys
    assert "infra-main-push-key" not in text and "infra-deploy-key" not in text
    assert "HEAD:main" not in text and not re.search(r"git push[^\n]*\bmain\b", text)
    assert not [c for c in make_calls(text) if c in ("apply-env", "apply-migrations", "migrate", "verify", "promote",
                                                     "plan-env")]
    assert "input" not in text


def test_app_pipeline_proposes_the_release_on_a_branch_only():
    text = strip_comments(APP.read_text())
    (stage,) = blocks(text, "stage('Propose release')")
    order = [stage.index(s) for s in ("checkoutInfra()", "asCiRole(", "make release", "proposeRelease(")]
    assert order == sorted(order)
    body = function_body(text, "proposeRelease")
    order = [body.index(s) for s in ("git add --all -- environments/", "git diff --cached --quiet", " commit ",
                                     "sshagent(credentials: ['infra-release-proposer'])",
                                     'git push "$INFRA_PUSH_URL" "HEAD:refs/heads/$RELEASE_BRANCH"')]
    assert order == sorted(order)
    assert "return" in body[order[1]:order[2]], "nothing to propose is not an error"
    assert 'RELEASE_BRANCH=release/${env.SERVICE}-${env.TAG}' in body
    assert text.count("git push") == 1, "proposeRelease is the only push"
    # Where infra lives is Jenkins configuration (README, "Forking it"), not a literal a fork must edit.
    assert "github.com" not in text and "git url: env.INFRA_REPOSITORY_URL" in function_body(text, "checkoutInfra")


def test_release_targets_plan_and_apply_only_the_api_stack():
    makefile = (PROJECT / "Makefile").read_text()
    plan = makefile.split("\nplan-release:", 1)[1].split("\n\n", 1)[0]
    apply = makefile.split("\napply-release:", 1)[1].split("\n\n", 1)[0]
    assert "-m delivery plan" in plan and "--release" in plan
    assert "-m delivery apply" in apply and "--release" in apply and '--plans "plans/release-$(ENV)"' in apply


MAIN_STAGES = ["Migrate dev", "Plan dev", "Apply dev", "Plan stage", "Approve stage", "Apply stage", "Plan prod", "Approve prod",
               "Apply prod"]


def test_infra_pipeline_plans_then_asks_then_applies_that_saved_plan_per_environment():
    text = strip_comments(INFRA.read_text())
    order = stages(text)
    assert [s for s in order if s in MAIN_STAGES] == MAIN_STAGES
    assert "submitter 'prod-approvers'" in blocks(blocks(text, "stage('Approve prod')")[0], "input")[0]
    for environment in ("stage", "prod"):
        (message,) = blocks(text, f"stage('Approve {environment}')")
        assert f"env.PLAN_SUMMARY_{environment.upper()}" in message and f"env.PLAN_LINK_{environment.upper()}" in message
    plan_body = function_body(text, "planEnvironment")
    # main's saved plans are the deploy role's: the apply refuses plans of another synth, and the
    # plan-only synth (plan roles) is another synth.
    steps = [plan_body.index(s) for s in ("make synth", "asDeployRole(environment,", "make plan-env",
                                          "archiveArtifacts", "stash name:", 'env."PLAN_SUMMARY_${key}"',
                                          'env."PLAN_LINK_${key}"')]
    assert steps == sorted(steps)
    assert "summary.md" in plan_body and "CDKTF_PLAN_ONLY" not in plan_body
    apply_body = function_body(text, "applyEnvironment")
    steps = [apply_body.index(s) for s in ("unstash", "make synth", "asDeployRole(environment,",
                                           "make apply-env ENV=${environment} PLANS=plans/${environment}")]
    assert steps == sorted(steps)
    assert "plan-env" not in apply_body, "nothing re-plans between the approval and the apply"
    for environment in ("dev", "stage", "prod"):
        for kind in ("Plan", "Apply"):
            (stage,) = blocks(text, f"stage('{kind} {environment}')")
            assert f'lock(resource: "${{env.LOCK_{environment.upper()}}}")' in blocks(stage, "options")[0]
            assert f"{kind.lower()}Environment('{environment}')" in stage
        (stage,) = blocks(text, f"stage('Plan {environment}')")
        assert "apply" not in stage.lower() and "promote" not in stage.lower(), "the plan stage changes nothing"


def test_each_release_follows_the_approved_apply_then_migrates_applies_its_saved_plan_and_verifies():
    """Issue 17 with issue 16: per environment, after the approval: the saved infrastructure plan,
    (stage, prod) the promotion, migrations, the release-scoped saved plan and its apply, verify;
    a failed verify reverts the release commit. dev's migrations run before its plan (next test)."""
    text = strip_comments(INFRA.read_text())
    body = function_body(text, "releaseEnvironment")
    assert body.index("migrateRelease(environment)") < body.index("rollRelease(environment)")
    migrate = function_body(text, "migrateRelease")
    steps = [migrate.index(s) for s in ('fileExists("environments/${environment}.release.hcl")', "return",
                                        "make synth", "asDeployRole(", "make apply-migrations", "make migrate")]
    assert steps == sorted(steps)
    roll = function_body(text, "rollRelease")
    steps = [roll.index(s) for s in ("make synth", "asDeployRole(", "make plan-release", "make apply-release",
                                     "make verify", "revertRelease(environment)", "error(")]
    assert steps == sorted(steps)
    for part in (migrate, roll):
        assert "plan-env" not in part and "apply-env" not in part, "a release applies <env>-api only (issue 16)"
    for source, environment in ((None, "dev"), ("dev", "stage"), ("stage", "prod")):
        (stage,) = blocks(text, f"stage('Apply {environment}')")
        order = [stage.index(f"applyEnvironment('{environment}')")]
        if source:
            order.append(stage.index(f"promoteRelease('{source}', '{environment}')"))
        order.append(stage.index(f"{'rollRelease' if environment == 'dev' else 'releaseEnvironment'}('{environment}')"))
        assert order == sorted(order), environment
    assert [s for s in stages(text) if s.startswith(("Approve", "Apply"))] == [
        "Apply dev", "Approve stage", "Apply stage", "Approve prod", "Apply prod"]


def release_events(text: str) -> list[tuple[str, str]]:
    """What a build of main does to each environment's services, in stage order: ("release", env) when
    env's release file changes (dev's: already on main when the build starts, from an accepted
    release/* branch; the others': promoteRelease), ("migrate", env) when a step runs its migrations,
    ("roll", env) when a step applies a plan that may roll its services."""
    rolls = {"applyEnvironment": "make apply-env", "rollRelease": "make apply-release"}
    assert "make migrate" in function_body(text, "migrateRelease")
    for function, call in rolls.items():
        assert call in function_body(text, function), function
    release = function_body(text, "releaseEnvironment")
    assert release.index("migrateRelease(environment)") < release.index("rollRelease(environment)")
    events = [("release", "dev")]
    for name in stages(text):
        if name not in MAIN_STAGES:
            continue
        (stage,) = blocks(text, f"stage('{name}')")
        for call in re.finditer(r"(\w+)\('(?:([a-z]+)', )?'?([a-z]+)'\)", blocks(stage, "steps")[0]):
            function, environment = call.group(1), call.group(3)
            if function == "promoteRelease":
                events.append(("release", environment))
            elif function == "migrateRelease":
                events.append(("migrate", environment))
            elif function in rolls:
                events.append(("roll", environment))
            elif function == "releaseEnvironment":
                events += [("migrate", environment), ("roll", environment)]
    return events


def migrated_before_rolled(events: list[tuple[str, str]], environment: str) -> bool:
    """The environment's release changes once, and its migrations run after that and before the next
    step that may roll its services."""
    mine = [kind for kind, env in events if env == environment]
    if mine.count("release") != 1 or "roll" not in mine[mine.index("release"):]:
        return False
    after = mine[mine.index("release"):]
    return "migrate" in after and after.index("migrate") < after.index("roll")


def test_migrations_run_before_services_roll_in_every_environment():
    """After an environment's release file changes, its migrations run before any apply that may roll
    its services: dev's before its infrastructure plan (which carries the accepted release), stage's
    and prod's after their promotion (which follows their infrastructure apply)."""
    events = release_events(strip_comments(INFRA.read_text()))
    for environment in ("dev", "stage", "prod"):
        assert migrated_before_rolled(events, environment), (environment, events)


def test_rejects_a_pipeline_that_rolls_dev_before_its_migrations():
    """The order before the 'Migrate dev' stage: dev's saved infrastructure plan (carrying the accepted
    release) applied, and only then the release with its migrations."""
    text = strip_comments(INFRA.read_text())
    (migrate_stage,) = re.findall(r"\n\s*stage\('Migrate dev'\) \{.*?\n    \}\n", text, re.DOTALL)
    old = text.replace(migrate_stage, "\n").replace("rollRelease('dev')", "releaseEnvironment('dev')")
    events = release_events(old)
    assert [kind for kind, env in events if env == "dev"] == ["release", "roll", "migrate", "roll"]
    assert not migrated_before_rolled(events, "dev")
    assert migrated_before_rolled(events, "stage") and migrated_before_rolled(events, "prod")


def test_pull_requests_plan_every_environment_prod_included_with_the_plan_roles():
    text = strip_comments(INFRA.read_text())
    (plan,) = blocks(text, "stage('Plan')")
    assert "changeRequest()" in plan
    assert "env.ENVIRONMENTS_LIST.tokenize(' ')" in plan and "continue" not in plan
    assert "ENVIRONMENTS_LIST = 'dev stage prod'" in text
    assert plan.index("CDKTF_PLAN_ONLY=true make synth") < plan.index("asPlanRole("), "providers assume no role"
    assert "asPlanRole(environment," in plan and "make plan-env ENV=${environment}" in plan
    assert "asDeployRole" not in plan
    assert "plans/*/summary.*" in plan
    assert "withRole(roleArn('plan', environment), session, body)" in function_body(text, "asPlanRole")


def test_drift_runs_daily_on_main_for_every_environment_and_reports_to_the_topic():
    text = strip_comments(INFRA.read_text())
    assert "triggers { cron(env.BRANCH_NAME == 'main' ? 'H 5 * * *' : '') }" in text
    (stage,) = blocks(text, "stage('Drift')")
    assert "triggeredBy 'TimerTrigger'" in stage and "branch 'main'" in stage
    assert "env.ENVIRONMENTS_LIST.tokenize(' ')" in stage and "driftCheck(environment)" in stage
    body = function_body(text, "driftCheck")
    assert body.index("CDKTF_PLAN_ONLY=true make synth") < body.index("asPlanRole(environment,"), \
        "drift changes nothing: the plan role, from a plan-only synth"
    assert "asDeployRole" not in body
    assert 'returnStatus: true, script: "make drift ENV=${environment}"' in body
    three = body.split("if (status == 3)", 1)[1].split("} else if", 1)[0]
    assert "asCiRole(" in three and "make notify" in three and "summary.md" in three and "unstable(" in three
    assert "error(" in body.split("} else if (status != 0)", 1)[1]
    for name in ["Checks"] + MAIN_STAGES:
        (other,) = blocks(text, f"stage('{name}')")
        assert "not { triggeredBy 'TimerTrigger' }" in other, f"{name} does not run on the drift schedule"


def test_the_prod_stage_is_the_only_user_of_the_prod_deploy_role():
    """The deploy roles are reached only through asDeployRole, only from the plan, apply and release steps,
    which the stages call with their own environment; prod's come after prod's approval."""
    text = strip_comments(INFRA.read_text())
    assert text.count("roleArn('deploy'") == 1 and "roleArn('deploy', environment)" in function_body(text, "asDeployRole")
    users = ("planEnvironment", "applyEnvironment", "migrateRelease", "rollRelease")
    callers = [name for name in (*users, "releaseEnvironment", "promoteRelease", "revertRelease", "acceptRelease",
                                 "pushMain", "asPlanRole", "asCiRole", "driftCheck", "canaryRelease", "judgeCanary")
               if "asDeployRole(" in function_body(text, name)]
    # judgeCanary reads the environment's metrics as its deploy role; only canaryRelease calls it, which
    # the Apply stages call after their approval (below).
    assert callers == [*users, "judgeCanary"]
    assert text.count("judgeCanary(") == 2 and "judgeCanary(to, service)" in function_body(text, "canaryRelease")
    # releaseEnvironment reaches the role only through the release's two steps, with its own environment.
    assert re.findall(r"(\w+)\((\w+)\)", function_body(text, "releaseEnvironment")) == [
        ("migrateRelease", "environment"), ("rollRelease", "environment")]
    outside_functions = text.split("\ndef ", 1)[0]
    assert outside_functions.count("asDeployRole(") == 0
    for user in ("planEnvironment", "applyEnvironment"):
        uses = re.findall(user + r"\('(\w+)'\)", outside_functions)
        assert uses == ["dev", "stage", "prod"], user
    releases = re.findall(r"(migrateRelease|rollRelease|releaseEnvironment)\('(\w+)'\)", outside_functions)
    assert releases == [("migrateRelease", "dev"), ("rollRelease", "dev"), ("releaseEnvironment", "stage"),
                        ("releaseEnvironment", "prod")]
    for name in stages(text):
        (stage,) = blocks(text, f"stage('{name}')")
        if any(f"{user}('prod')" in stage for user in (*users, "releaseEnvironment")) \
                or "canaryRelease('stage', 'prod')" in stage:
            assert name in ("Plan prod", "Apply prod"), name
    (prod,) = blocks(text, "stage('Apply prod')")
    assert "applyEnvironment('prod')" in prod and "releaseEnvironment('prod')" in prod
    assert stages(text).index("Approve prod") == stages(text).index("Apply prod") - 1
    assert "prod" not in strip_comments(APP.read_text()).lower().replace("product", "")


def test_a_failed_verify_reverts_the_release_commit_on_main():
    text = strip_comments(INFRA.read_text())
    body = function_body(text, "revertRelease")
    order = [body.index(s) for s in ("git log -1 --format=%H -- environments/${environment}.release.hcl",
                                     'revert --no-edit "$RELEASE_COMMIT"', "pushMain(")]
    assert order == sorted(order)
    push = function_body(text, "pushMain")
    assert "sshagent(credentials: ['infra-main-push-key'])" in push and "git push origin HEAD:main" in push


def test_release_branches_are_accepted_only_when_they_change_release_files_alone():
    text = strip_comments(INFRA.read_text())
    (stage,) = blocks(text, "stage('Accept release')")
    assert "branch 'release/*'" in stage and "acceptRelease()" in stage
    body = function_body(text, "acceptRelease")
    order = [body.index(s) for s in ("git diff --name-only origin/main...HEAD", "error(",
                                     "sshagent(credentials: ['infra-main-push-key'])", "git push origin HEAD:main")]
    assert order == sorted(order)
    # Only the first environment's (what `make release` writes): the others change by promotion only.
    assert 'def first = env.ENVIRONMENTS_LIST.split()[0]' in body
    assert 'it != "environments/${first}.release.hcl"' in body
    assert re.search(r"ENVIRONMENTS_LIST = 'dev ", text)


@BOTH
def test_no_build_is_aborted_while_it_applies(path):
    """A newer build never aborts one in the middle of an apply (partial apply, stale lock): no
    abortPrevious; builds of main are ordered by a milestone that is the first step under each
    environment's lock, with increasing ordinals, so an older build is stopped before it plans."""
    text = strip_comments(path.read_text())
    assert "abortPrevious" not in text
    if path == APP:
        assert "lock(" not in text and "milestone(" not in text, "the app pipeline applies nothing"
        return
    groups = [("dev", "Plan dev"), ("dev", "Apply dev"), ("stage", "Plan stage"), ("stage", "Apply stage"),
              ("prod", "Plan prod"), ("prod", "Apply prod")]
    ordinals = []
    for environment, name in groups:
        (stage,) = blocks(text, f"stage('{name}')")
        assert f'lock(resource: "${{env.LOCK_{environment.upper()}}}")' in blocks(stage, "options")[0]
        first_steps = blocks(stage, "steps")[0]
        first_call = re.search(r"^\s*(\w+)\(", first_steps, re.MULTILINE)
        assert first_call and first_call.group(1) == "milestone", f"{name}: the milestone comes first"
        ordinals.append(int(re.search(r"milestone\(ordinal: (\d+)", first_steps).group(1)))
    assert ordinals == sorted(set(ordinals)), "milestones pass in environment order"


def test_a_pull_request_push_supersedes_only_its_checks():
    text = strip_comments(INFRA.read_text())
    order = stages(text)
    assert order[0] == "Supersede"
    (stage,) = blocks(text, "stage('Supersede')")
    assert "changeRequest()" in stage and "milestone(build - 1)" in stage and "make" not in stage


def test_rejects_a_pipeline_calling_a_missing_command():
    """The check above can fail: a made-up target and command are caught."""
    text = "sh 'make no-such-target'\nsh 'python -m delivery teleport dev'"
    assert "no-such-target" not in make_targets() and make_calls(text) == ["no-such-target"]
    assert delivery_calls(text) == ["teleport"] and "teleport" not in delivery_commands()


# --- how the pipelines reach AWS: id tokens of the Jenkins OIDC plugin, never keys ------------------


@BOTH
def test_every_aws_session_is_a_web_identity_of_the_oidc_credential(path):
    """No static keys (withAWS, AWS credentials): one binding of the plugin's token file, inside the
    one helper that sets AWS_ROLE_ARN."""
    text = strip_comments(path.read_text())
    assert "withAWS" not in text and "AWS_ACCESS_KEY_ID" not in text and "aws(" not in text
    binding = "withCredentials([file(credentialsId: 'jenkins-oidc-token', variable: 'AWS_WEB_IDENTITY_TOKEN_FILE')])"
    assert text.count(binding) == 1
    helper = function_body(text, "withRole" if path == INFRA else "asCiRole")
    assert binding in helper and 'withEnv(["AWS_ROLE_ARN=${arn}"' in helper


def test_role_arns_are_derived_from_the_environment_files():
    """environments/*.hcl: accounts; shared-cicd names the roles <project>-ci, <prefix>-plan and
    <prefix>-deploy (modules/cicd/README.md)."""
    assert run_delivery("role", "ci") == "arn:aws:iam::111111111111:role/webapp-ci\n"
    assert run_delivery("role", "plan", "prod") == "arn:aws:iam::444444444444:role/webapp-prod-plan\n"
    assert run_delivery("role", "deploy", "dev") == "arn:aws:iam::222222222222:role/webapp-dev-deploy\n"


def run_delivery(*argv: str) -> str:
    import contextlib
    import io

    from delivery.__main__ import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(argv)) == 0
    return out.getvalue()


# --- executors, approvals, git -------------------------------------------------------------------


def test_each_environments_lock_is_named_by_the_environment_files_before_its_stages():
    """The locks are `<project>-<env>` (README, "Forking it"): read by `make --silent lock` on an agent
    (its virtualenv synced first) in a stage before every stage that takes them, never written in."""
    text = strip_comments(INFRA.read_text())
    assert "'webapp-" not in text and '"webapp-' not in text
    order = stages(text)
    assert order.index("Locks") < min(order.index(name) for name in MAIN_STAGES)
    (stage,) = blocks(text, "stage('Locks')")
    assert stage.index("sh 'make venv'") < stage.index("lockOf(")
    for environment in ("dev", "stage", "prod"):
        assert f"env.LOCK_{environment.upper()} = lockOf('{environment}')" in stage
    assert 'make --silent lock ENV=${environment}' in function_body(text, "lockOf")
    # environments/shared.hcl: project = "webapp"
    assert run_delivery("lock", "prod") == "webapp-prod\n"


def test_approvals_hold_no_executor_and_time_out():
    text = strip_comments(INFRA.read_text())
    assert re.search(r"^pipeline \{\s*agent none", text, re.MULTILINE), "the pipeline holds no agent of its own"
    assert "input message:" not in text, "no input step inside a stage that holds an agent"
    approvals = [name for name in stages(text) if name.startswith("Approve")]
    assert approvals == ["Approve stage", "Approve prod"]
    for name in approvals:
        (stage,) = blocks(text, f"stage('{name}')")
        assert "agent" not in stage and blocks(stage, "input"), name
        assert "timeout(" in blocks(stage, "options")[0], name
        assert "beforeInput true" in stage, f"{name}: other branches are not asked"
    for name in [n for n in stages(text) if n not in approvals]:
        (stage,) = blocks(text, f"stage('{name}')")
        assert "input" not in stage, name


@BOTH
def test_delivery_commands_run_in_the_project_virtualenv(path):
    """Through make targets (`.venv/bin/python`), never the agent's system python."""
    text = strip_comments(path.read_text())
    assert not re.search(r"\bpython3?\s+-m\b", text)


def test_the_infra_virtualenv_is_synced_before_any_role_lookup_reads_make_output():
    """`make --silent role` on a fresh agent would print pipenv's output before the ARN."""
    text = strip_comments(APP.read_text())
    body = function_body(text, "checkoutInfra")
    assert body.index("git url:") < body.index("sh 'make venv'")
    assert "venv" in make_targets()
    for group in ("Build", "Propose release"):
        (stage,) = blocks(text, f"stage('{group}')")
        assert 0 <= stage.find("checkoutInfra()") < stage.index("asCiRole("), group


# A real Groovy parser (Debian's `groovy`, installed by the Makefile's `$(VENV)/.groovy`).
GROOVY_PARSE = PROJECT / "tests" / "harness" / "groovy_parse.groovy"


def groovy_env() -> dict[str, str]:
    """Debian's launcher looks for Java in JAVA_HOME, else /usr/lib/jvm/default-java, which only the
    default-jre package makes: where neither exists, the `java` on PATH says where Java is."""
    env = dict(os.environ)
    java = shutil.which("java")
    if not env.get("JAVA_HOME") and not Path("/usr/lib/jvm/default-java").exists() and java:
        env["JAVA_HOME"] = str(Path(java).resolve().parent.parent)
    return env


def groovy_parse(paths: list[Path]) -> dict[str, tuple[bool, str]]:
    """`{path: (parsed, compiler message)}` from one `groovy` run over `paths`."""
    require(shutil.which("groovy") is not None, "`groovy` is not on PATH (apt-get install groovy)")
    result = subprocess.run(["groovy", str(GROOVY_PARSE), *map(str, paths)], capture_output=True, text=True,
                            timeout=300, env=groovy_env())
    outcome: dict[str, tuple[bool, str]] = {}
    current = None
    for line in result.stdout.splitlines():
        verdict, _, path = line.partition(": ")
        if verdict in ("parsed", "failed") and path in map(str, paths):
            current = path
            outcome[path] = (verdict == "parsed", "")
        elif current is not None:
            outcome[current] = (outcome[current][0], outcome[current][1] + line + "\n")
    assert set(outcome) == set(map(str, paths)), f"groovy gave no verdict:\n{result.stdout}\n{result.stderr}"
    return outcome


@pytest.fixture(scope="module")
def parsed(tmp_path_factory) -> dict[str, tuple[bool, str]]:
    """Both Jenkinsfiles, and copies of each with one brace removed, parsed in one JVM."""
    broken_dir = tmp_path_factory.mktemp("broken-jenkinsfiles")
    paths = [INFRA, APP]
    for path in (INFRA, APP):
        text = path.read_text()
        first_open = text.index("{")
        last_close = text.rindex("}")
        for name, broken in (("open", text[:first_open] + text[first_open + 1:]),
                             ("close", text[:last_close] + text[last_close + 1:])):
            copy = broken_dir / f"{path.name}-without-{name}-brace"
            copy.write_text(broken)
            paths.append(copy)
    return groovy_parse(paths)


@BOTH
def test_the_jenkinsfile_is_valid_groovy(path, parsed):
    ok, message = parsed[str(path)]
    assert ok, message


@pytest.mark.parametrize("name", [INFRA.name, APP.name])
@pytest.mark.parametrize("brace", ["open", "close"])
def test_rejects_a_jenkinsfile_with_a_missing_brace(parsed, name, brace):
    """Proof that the parse check can fail: a brace removed makes the file invalid Groovy."""
    (ok, message), = [v for k, v in parsed.items() if k.endswith(f"/{name}-without-{brace}-brace")]
    assert not ok
    assert "startup failed" in message


def test_the_pipelines_apply_without_the_terminal_question():
    """`delivery apply` asks on a terminal (issue 24); a pipeline's approval is its input step, so
    every apply the pipelines run passes YES=1, which the Makefile turns into --yes."""
    for path in (INFRA, APP):
        text = strip_comments(path.read_text())
        for call in re.findall(r'sh "make (apply-env|apply-release)\b([^"]*)"', text):
            assert "YES=1" in call[1], (path.name, call)
    require(shutil.which("make") is not None, "make is not installed")
    for target in ("apply-env", "apply-release"):
        shown = subprocess.run(["make", "-n", target, "ENV=dev", "YES=1"], cwd=PROJECT, capture_output=True,
                               text=True, check=True).stdout
        assert re.search(r'-m delivery apply "dev" .*--yes$', shown, re.MULTILINE), shown
        unasked = subprocess.run(["make", "-n", target, "ENV=dev"], cwd=PROJECT, capture_output=True, text=True,
                                 check=True).stdout
        assert "--yes" not in unasked


def test_prod_releases_go_out_as_canaries_judged_then_promoted_or_aborted():
    """Issue 18: in CANARY_ENVIRONMENTS (prod; stage may be listed), after the approved apply: migrations
    first, then per changed service start, apply and verify, bake, judge (as the deploy role), then promote
    or abort, each a commit to main that releaseEnvironment applies; an abort stops the build before the
    remaining promotion. Dev keeps rolling deploys."""
    text = strip_comments(INFRA.read_text())
    assert "CANARY_ENVIRONMENTS = 'prod'" in text and re.search(r"CANARY_BAKE_MINUTES = '\d+'", text)
    body = function_body(text, "canaryRelease")
    steps = [body.index(s) for s in (
        "env.CANARY_ENVIRONMENTS.tokenize(' ')", "promoteRelease(from, to, 'migrations')", "releaseEnvironment(to)",
        "make --silent canary-pending ENV=${to}", "for (service in services)", "make canary-start ENV=${to}",
        'pushMain("canary start', "releaseEnvironment(to)\n    sleep(", "judgeCanary(to, service)",
        "make canary-promote ENV=${to}", "make canary-abort ENV=${to}", 'pushMain("canary ${verdict == 0',
        "if (verdict != 0)", "error(")]
    assert steps == sorted(steps)
    assert body.count("releaseEnvironment(to)") == 3, "migrations, the start, and the promote or abort"
    assert 'asCiRole("canary-' in body and "asDeployRole" not in body, "start reads and tags ECR as the CI role"
    judge = function_body(text, "judgeCanary")
    assert "asDeployRole(environment," in judge and "make canary-judge ENV=${environment}" in judge
    assert "BAKE=${env.CANARY_BAKE_MINUTES}" in judge and "[0, 1, 3]" in judge
    for environment, source in (("stage", "dev"), ("prod", "stage")):
        (stage,) = blocks(text, f"stage('Apply {environment}')")
        order = [stage.index(s) for s in (f"applyEnvironment('{environment}')", f"canaryRelease('{source}', "
                                          f"'{environment}')", f"promoteRelease('{source}', '{environment}')",
                                          f"releaseEnvironment('{environment}')")]
        assert order == sorted(order), environment
    (dev,) = blocks(text, "stage('Apply dev')")
    assert "canary" not in dev.lower(), "dev keeps rolling deploys"
    (approve,) = blocks(text, "stage('Approve prod')")
    assert "as a canary" in approve and "env.CANARY_BAKE_MINUTES" in approve, "the approver is told"
    assert "canary" not in strip_comments(APP.read_text()).lower(), "the app pipeline holds no prod credential"
