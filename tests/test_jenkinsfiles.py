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
    text = strip_comments(APP.read_text())
    order = stages(text)
    required = ["SonarQube analysis", "Quality gate", "Unit tests", "Docker build", "Trivy scan", "Push to ECR",
                "Release to dev", "Deploy dev", "Approve stage", "Promote to stage", "Deploy stage",
                "Approve prod", "Promote to prod", "Deploy prod"]
    assert [s for s in order if s in required] == required


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
    (prod_approval,) = blocks(text, "stage('Approve prod')")
    assert "submitter 'prod-approvers'" in blocks(prod_approval, "input")[0]


def test_each_deploy_migrates_then_applies_the_release_plan_then_verifies_under_a_lock():
    text = strip_comments(APP.read_text())
    body = function_body(text, "deploy")
    steps = [body.index(s) for s in ("asDeployRole(", "make synth", "make apply-migrations", "make migrate",
                                     "make plan-release", "make apply-release", "make verify")]
    assert steps == sorted(steps)
    assert "apply-env" not in text and "plan-env" not in text, "a release applies <env>-api only (issue 16)"
    for group, environment in (("Dev", "dev"), ("Stage", "stage"), ("Prod", "prod")):
        (stage,) = blocks(text, f"stage('{group}')")
        options = blocks(stage, "options")[0]
        assert f"lock(resource: 'webapp-{environment}')" in options, "the lock is taken before the agent"
        assert "deploy(" in stage


def test_release_targets_plan_and_apply_only_the_api_stack():
    makefile = (PROJECT / "Makefile").read_text()
    plan = makefile.split("\nplan-release:", 1)[1].split("\n\n", 1)[0]
    apply = makefile.split("\napply-release:", 1)[1].split("\n\n", 1)[0]
    assert "-m delivery plan" in plan and "--release" in plan
    assert "-m delivery apply" in apply and "--release" in apply and '--plans "plans/release-$(ENV)"' in apply


MAIN_STAGES = ["Plan dev", "Apply dev", "Plan stage", "Approve stage", "Apply stage", "Plan prod", "Approve prod",
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
    steps = [plan_body.index(s) for s in ("make synth", "asPlanRole(environment,", "make plan-env",
                                          "archiveArtifacts", "stash name:", 'env."PLAN_SUMMARY_${key}"',
                                          'env."PLAN_LINK_${key}"')]
    assert steps == sorted(steps)
    assert "summary.md" in plan_body
    apply_body = function_body(text, "applyEnvironment")
    steps = [apply_body.index(s) for s in ("unstash", "make synth", "asDeployRole(environment,",
                                           "make apply-env ENV=${environment} PLANS=plans/${environment}")]
    assert steps == sorted(steps)
    assert "plan-env" not in apply_body, "nothing re-plans between the approval and the apply"
    for environment in ("dev", "stage", "prod"):
        for kind in ("Plan", "Apply"):
            (stage,) = blocks(text, f"stage('{kind} {environment}')")
            assert f"lock(resource: 'webapp-{environment}')" in blocks(stage, "options")[0]
            assert f"{kind.lower()}Environment('{environment}')" in stage


def test_pull_requests_plan_every_environment_prod_included_and_archive_the_summaries():
    text = strip_comments(INFRA.read_text())
    (plan,) = blocks(text, "stage('Plan')")
    assert "changeRequest()" in plan
    assert "env.ENVIRONMENTS_LIST.tokenize(' ')" in plan and "continue" not in plan
    assert "ENVIRONMENTS_LIST = 'dev stage prod'" in text
    assert "asPlanRole(environment," in plan and "make plan-env ENV=${environment}" in plan
    assert "plans/*/summary.*" in plan
    # Until plan-only roles exist (issue 17) the plan role is the deploy role: one seam to change.
    assert "asDeployRole(environment, session, body)" in function_body(text, "asPlanRole")


def test_drift_runs_daily_on_main_for_every_environment_and_reports_to_the_topic():
    text = strip_comments(INFRA.read_text())
    assert "triggers { cron(env.BRANCH_NAME == 'main' ? 'H 5 * * *' : '') }" in text
    (stage,) = blocks(text, "stage('Drift')")
    assert "triggeredBy 'TimerTrigger'" in stage and "branch 'main'" in stage
    assert "env.ENVIRONMENTS_LIST.tokenize(' ')" in stage and "driftCheck(environment)" in stage
    body = function_body(text, "driftCheck")
    assert 'returnStatus: true, script: "make drift ENV=${environment}"' in body
    three = body.split("if (status == 3)", 1)[1].split("} else if", 1)[0]
    assert "asCiRole(" in three and "make notify" in three and "summary.md" in three and "unstable(" in three
    assert "error(" in body.split("} else if (status != 0)", 1)[1]
    for name in ["Checks"] + MAIN_STAGES:
        (other,) = blocks(text, f"stage('{name}')")
        assert "not { triggeredBy 'TimerTrigger' }" in other, f"{name} does not run on the drift schedule"


@BOTH
def test_no_build_is_aborted_while_it_applies(path):
    """A newer build never aborts one in the middle of an apply (partial apply, stale lock): no
    abortPrevious; builds of main are ordered by a milestone that is the first step under each
    environment's lock, with increasing ordinals, so an older build is stopped before it plans."""
    text = strip_comments(path.read_text())
    assert "abortPrevious" not in text
    groups = ([("dev", "Plan dev"), ("dev", "Apply dev"), ("stage", "Plan stage"), ("stage", "Apply stage"),
               ("prod", "Plan prod"), ("prod", "Apply prod")] if path == INFRA
              else [("dev", "Dev"), ("stage", "Stage"), ("prod", "Prod")])
    ordinals = []
    for environment, name in groups:
        (stage,) = blocks(text, f"stage('{name}')")
        assert f"lock(resource: 'webapp-{environment}')" in blocks(stage, "options")[0]
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


# --- how the pipelines reach AWS: the role chain the trust policies allow --------------------------


@BOTH
def test_every_aws_session_is_one_of_the_two_role_helpers(path):
    """No stage calls withAWS itself: only asCiRole and asDeployRole, which pass what the trusts require."""
    text = strip_comments(path.read_text())
    helpers = function_body(text, "asCiRole") + function_body(text, "asDeployRole")
    assert text.count("withAWS(") == helpers.count("withAWS(") == 3


@BOTH
def test_the_ci_role_is_assumed_with_the_external_id_of_the_environment_files(path):
    body = function_body(strip_comments(path.read_text()), "asCiRole")
    assert "roleAccess('ci')" in body and "settings.externalId = access.external_id" in body
    assert "withAWS(settings)" in body


@BOTH
def test_deploy_roles_are_assumed_from_a_ci_role_session_or_the_approvers_credential(path):
    body = function_body(strip_comments(path.read_text()), "asDeployRole")
    assert "roleAccess('deploy', environment)" in body and "settings.externalId = access.external_id" in body
    via_ci, via_principals = body.split("} else {")
    assert "access.via == 'ci-role'" in via_ci
    assert re.search(r"asCiRole\(.*?\)\s*\{\s*withAWS\(settings\)", via_ci), "chained inside a CI-role session"
    assert 'settings.credentials = "${environment}-approvals"' in via_principals
    assert "asCiRole" not in via_principals


@BOTH
def test_pipelines_keep_no_copy_of_the_external_ids(path, environments):
    ids = [environments.shared.cicd.ci_external_id] + [
        e.cicd.deploy_external_id for e in environments.environments if e.cicd.deploy_external_id]
    assert len(ids) == 2
    text = path.read_text()
    assert [i for i in ids if i in text] == []


def run_delivery(*argv: str) -> str:
    import contextlib
    import io

    from delivery.__main__ import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(argv)) == 0
    return out.getvalue()


def test_role_access_prints_what_the_trust_policies_require():
    assert run_delivery("access", "ci") == "external_id=webapp-jenkins-ci\n"
    assert run_delivery("access", "deploy", "dev") == "via=ci-role\nexternal_id=\nmfa=false\n"
    assert run_delivery("access", "deploy", "prod") == "via=principals\nexternal_id=webapp-prod-deploy\nmfa=false\n"


def test_role_access_follows_the_environment_files(environments_copy):
    path = environments_copy / "prod.hcl"
    path.write_text(path.read_text().replace('"webapp-prod-deploy"', '"rotated-prod-id"'))
    printed = run_delivery("access", "deploy", "prod", "--environments-dir", str(environments_copy))
    assert "external_id=rotated-prod-id\n" in printed


# --- executors, approvals, git -------------------------------------------------------------------


@BOTH
def test_approvals_hold_no_executor_and_time_out(path):
    text = strip_comments(path.read_text())
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


def test_release_files_are_committed_new_or_changed_and_pushed_with_the_deploy_key():
    text = strip_comments(APP.read_text())
    assert "git commit -am" not in text, "-a does not stage a new <env>.release.hcl"
    body = function_body(text, "pushRelease")
    order = [body.index(s) for s in ("git add --all -- environments/", "git diff --cached --quiet", " commit ",
                                     "sshagent(credentials: ['infra-deploy-key'])", "retry(",
                                     "git pull --rebase origin main", "git push origin HEAD:main")]
    assert order == sorted(order)
    assert "return" in body[order[1]:order[2]], "nothing to commit is not an error"
    assert text.count("git push") == 1, "pushRelease is the only push"


def test_only_verified_releases_are_committed_and_only_the_approved_image_is_promoted():
    text = strip_comments(APP.read_text())
    for group, pin in (("Dev", "make release"), ("Stage", "promote('dev', 'stage')"), ("Prod", "promote('stage', 'prod')")):
        (stage,) = blocks(text, f"stage('{group}')")
        order = [stage.index(s) for s in (pin, "deploy(", "pushRelease(")]
        assert order == sorted(order), f"{group}: the release file is pushed only after deploy + verify"
    body = function_body(text, "promote")
    assert re.search(r'make promote FROM=\$\{from\} TO=\$\{to\} SERVICE=\\"\\\$SERVICE\\" TAG=\\"\\\$TAG\\"', body)
    assert "pushRelease" not in body


def test_the_infra_virtualenv_is_synced_before_any_role_lookup_reads_make_output():
    """`make --silent ci-role` on a fresh agent would print pipenv's output before the ARN."""
    text = strip_comments(APP.read_text())
    body = function_body(text, "checkoutInfra")
    assert body.index("git url:") < body.index("sh 'make venv'")
    assert "venv" in make_targets()
    for group in ("Build", "Dev", "Stage", "Prod"):
        (stage,) = blocks(text, f"stage('{group}')")
        first_use = min(stage.index(s) for s in ("asCiRole(", "deploy(", "promote(") if s in stage)
        checkout = stage.find("checkoutInfra()")
        assert (0 <= checkout < first_use) or "promote(" in stage[:first_use + 10], group


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
