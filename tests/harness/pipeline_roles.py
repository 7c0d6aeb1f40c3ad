"""The synthesized pipeline roles and what the evaluator (checks/iam.py) lets them do: shared by the
trust-boundary tests and the emulator test that checks a plan's AWS calls against the plan role.

The example accounts and names are the environment files' (environments/*.hcl), written as
literals so that a changed file shows up here."""

from __future__ import annotations

from typing import Any

from checks.iam import Decision
from tests.harness.policies import Policies

REGION = "eu-west-1"
REGISTRY = "111111111111"  # environments/shared.hcl: registry and state account
ACCOUNTS = {"dev": "222222222222", "stage": "333333333333", "prod": "444444444444"}  # environments/*.hcl
STATE_BUCKET = "webapp-tfstate-111111111111"
LOCK_TABLE = "webapp-tfstate-locks"
ISSUER = "jenkins.webapp.example.com/oidc"  # shared.hcl: cicd.jenkins_oidc.issuer_url without https://
AUDIENCE = "sts.amazonaws.com"
JOBS = "https://jenkins.webapp.example.com/job"
INFRA_MAIN = f"{JOBS}/webapp-infra/job/main/"
INFRA_PULL_REQUEST = f"{JOBS}/webapp-infra/job/PR-42/"
APP_MAIN = f"{JOBS}/webapp-service1/job/main/"
APP_BRANCH = f"{JOBS}/webapp-service1/job/feature-x/"


class World:
    """The synthesized pipeline roles and what they may do, as the evaluator decides it."""

    def __init__(self, stacks: dict[str, Any]) -> None:
        self.Decision = Decision
        self.policies = Policies(stacks)

    # -------------------------------------------------------------- roles

    def role(self, stack: str, path: str) -> str:
        return str(self.policies.named(stack, "aws_iam_role", path))

    def cicd_role(self, kind: str, env: str | None = None) -> str:
        """kind: `ci`, `plan` or `deploy`."""
        if kind == "ci":
            return self.role("shared-cicd", "Pipeline/CiRole")
        assert env is not None
        return self.role("shared-cicd", f"Pipeline/{env.title()}Plan/PlanRole" if kind == "plan"
                         else f"Pipeline/{env.title()}/DeployRole")

    def arn(self, stack: str, role: str) -> str:
        return str(self.policies.value(stack, f"aws_iam_role.{role}.arn"))

    # -------------------------------------------------------------- decisions

    def decide(self, identity: list[dict[str, Any]], resource_policy: dict[str, Any] | None, principal: Any,
               action: str, resource: str, context: dict[str, Any] | None = None,
               resource_account: str | None = None) -> Any:
        from checks.iam import Request, evaluate

        request = Request(action=action, resource=resource, principal=principal, context=context or {})
        return evaluate(identity, resource_policy, request, resource_account=resource_account)

    def token_assumes(self, kind: str, env: str | None, subject: str, audience: str = AUDIENCE) -> Any:
        """A Jenkins build with an id token of `subject` calls AssumeRoleWithWebIdentity on the role."""
        from checks.iam import Principal

        role = self.cicd_role(kind, env)
        account = REGISTRY if env is None else ACCOUNTS[env]
        provider = f"arn:aws:iam::{account}:oidc-provider/{ISSUER}"
        return self.decide([], self.policies.trust_policy("shared-cicd", role), Principal.federated(provider),
                           "sts:AssumeRoleWithWebIdentity", self.arn("shared-cicd", role),
                           {f"{ISSUER}:aud": audience, f"{ISSUER}:sub": subject}, account)

    def session(self, kind: str, env: str | None = None) -> Any:
        from checks.iam import Principal

        account = REGISTRY if env is None else ACCOUNTS[env]
        name = "webapp-ci" if kind == "ci" else f"webapp-{env}-{kind}"
        return Principal.aws(f"arn:aws:sts::{account}:assumed-role/{name}/jenkins")

    def as_role(self, kind: str, env: str | None, action: str, resource: str, context: dict[str, Any] | None = None,
                *, resource_policy: dict[str, Any] | None = None, resource_account: str | None = None) -> Any:
        """A session of the pipeline role calls `action` on `resource` (its inline policies decide,
        with the resource's policy when given)."""
        identity = self.policies.role_policies("shared-cicd", self.cicd_role(kind, env))
        return self.decide(identity, resource_policy, self.session(kind, env), action, resource, context,
                           resource_account)

    def assumes_role(self, kind: str, env: str | None, target_arn: str, trust: dict[str, Any] | None,
                     target_account: str) -> Any:
        return self.as_role(kind, env, "sts:AssumeRole", target_arn, resource_policy=trust,
                            resource_account=target_account)

    def deploy_trust(self, env: str) -> dict[str, Any]:
        return dict(self.policies.trust_policy("shared-cicd", self.cicd_role("deploy", env)))

    def state_role(self, env: str, kind: str) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
        """bootstrap's `Access` (read-write) or `PlanAccess` role of env: ARN, permissions, trust."""
        role = self.role("bootstrap", f"StateBackend/{env.title()}{kind}/Role")
        return (self.arn("bootstrap", role), self.policies.role_policies("bootstrap", role),
                self.policies.trust_policy("bootstrap", role))
