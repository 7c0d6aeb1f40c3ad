"""What the CI/CD stack knows of each environment: its account, region, prefix and provider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modules.environment import EnvironmentConfig


@dataclass(frozen=True)
class EnvironmentReach:
    """One environment as `shared-cicd` reaches it: through `provider`, a provider alias
    pinned to the environment's account and region that assumes its Terraform role."""

    config: EnvironmentConfig
    prefix: str
    provider: Any
    terraform_role_arn: str
    construct_id: str  # `Dev`, from the environment's name
    # Its state-access role in the state account (bootstrap); None when its state is in Terraform Cloud.
    state_role_arn: str | None = None
    # Its plan-state role there (read the state, take the lock); None with Terraform Cloud.
    plan_state_role_arn: str | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def account_id(self) -> str:
        return self.config.account_id

    @property
    def region(self) -> str:
        return self.config.region
