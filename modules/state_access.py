"""Who reaches which part of the Terraform state: one state-access role per environment.

The state bucket, lock table and state key live in the state account
(`state { account_id }`); an environment's stacks run with that environment's
account credentials, which the state account does not trust by themselves. So
`bootstrap` creates, in the state account, a role `<prefix>-tfstate` for every
environment whose stacks use the S3 backend, and those stacks' backend assumes it.
The role may touch only the environment's own state (`<env>/` in the bucket, the
lock items of those keys, and the state key only through S3 and DynamoDB for
them), and trusts only the principals that run the environment's Terraform.

Environments in the state account itself get a role too: it keeps one code path
for every environment, and keeps each environment to its own prefix there as well
(without it, their principals would need bucket-wide grants of their own).

The shared stacks (`shared-cicd`, at `shared/`) run in the registry account and
reach state as before, directly or through `state.assume_role_arn`.

Every name here is derived from the configuration, so `bootstrap`, the backends,
the deploy roles and the delivery commands agree without reading each other's outputs.
"""

from __future__ import annotations

from modules import contract
from modules.core.naming import NameKind, physical_name
from modules.core.settings import BackendType
from modules.environment import EnvironmentConfig, SharedConfig, prefix_of

STATE_ROLE = "tfstate"
# The read-and-lock role of an environment's plan role (pull requests plan with it).
PLAN_STATE_ROLE = "tfstate-plan"


def uses_state_bucket(environment: EnvironmentConfig) -> bool:
    """False for environments whose state lives in Terraform Cloud (they get no role)."""
    return environment.backend.type is BackendType.S3


def state_prefix(environment: EnvironmentConfig) -> str:
    """The environment's folder in the state bucket: its stacks' keys are `<env>/<tier>.tfstate`."""
    return environment.name


def state_role_name(shared: SharedConfig, environment: EnvironmentConfig) -> str:
    return physical_name(NameKind.IAM_ROLE, prefix_of(shared, environment), STATE_ROLE)


def partition_of(environment: EnvironmentConfig) -> str:
    # Every environment names a Terraform role (EnvironmentConfig checks it): its partition is the one.
    role = environment.cicd.terraform_role_arn or environment.assume_role_arn
    assert role is not None, "EnvironmentConfig requires a Terraform role (cicd.terraform_role_arn)"
    return role.split(":")[1]


def state_role_arn(shared: SharedConfig, environment: EnvironmentConfig) -> str:
    """`arn:aws:iam::<state account>:role/<prefix>-tfstate`."""
    return (f"arn:{partition_of(environment)}:iam::{shared.state.account_id}:role/"
            f"{state_role_name(shared, environment)}")


def plan_state_role_name(shared: SharedConfig, environment: EnvironmentConfig) -> str:
    return physical_name(NameKind.IAM_ROLE, prefix_of(shared, environment), PLAN_STATE_ROLE)


def plan_state_role_arn(shared: SharedConfig, environment: EnvironmentConfig) -> str:
    """`arn:aws:iam::<state account>:role/<prefix>-tfstate-plan`: reads the environment's state and
    takes its lock, never writes it."""
    return (f"arn:{partition_of(environment)}:iam::{shared.state.account_id}:role/"
            f"{plan_state_role_name(shared, environment)}")


def plan_role_arn(shared: SharedConfig, environment: EnvironmentConfig) -> str:
    """The plan role shared-cicd creates in the environment's account (`<prefix>-plan`)."""
    return (f"arn:{partition_of(environment)}:iam::{environment.account_id}:role/"
            f"{contract.plan_role_name(prefix_of(shared, environment))}")


def deploy_role_arn(shared: SharedConfig, environment: EnvironmentConfig) -> str:
    """The deploy role shared-cicd creates in the environment's account (`<prefix>-deploy`)."""
    return (f"arn:{partition_of(environment)}:iam::{environment.account_id}:role/"
            f"{contract.deploy_role_name(prefix_of(shared, environment))}")


def trusted_principal_arns(shared: SharedConfig, environment: EnvironmentConfig) -> tuple[str, ...]:
    """The environment's principals that run its Terraform or read its state: the role
    Terraform runs as (`assume_role_arn`, `cicd.terraform_role_arn`), the pipeline's deploy
    role (it runs `terraform init/plan/apply` and the delivery commands read stack outputs
    with it), and `backend.state_principal_arns`."""
    found = [environment.assume_role_arn, environment.cicd.terraform_role_arn, deploy_role_arn(shared, environment),
             *environment.backend.state_principal_arns]
    return tuple(sorted({arn for arn in found if arn is not None}))
