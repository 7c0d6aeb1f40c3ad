"""`shared-cicd`: the organisation's CI/CD and monitoring stack, one for every environment."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from cdktf import TerraformStack
from constructs import Construct

from modules import aws, contract, state_access
from modules.cicd.monitoring import Monitoring, report_topic_alert_accounts
from modules.cicd.pipeline import Pipeline, ReportTopic
from modules.cicd.reach import EnvironmentReach
from modules.cicd.registry import Puller, Registry
from modules.core.naming import pascal
from modules.core.settings import BackendConfig
from modules.core.stack import MANAGED_BY, aws_provider, configure_backend
from modules.core.target import Target
from modules.environment import EnvironmentConfig, SharedConfig, prefix_of


def pullers_by_repository(shared: SharedConfig, environments: Sequence[EnvironmentConfig]) -> dict[str, list[Puller]]:
    """Every repository an environment runs an image from (deduplicated), with the execution
    roles that pull it: the services', the Flyway task's, the collector sidecar's; plus
    `cicd.extra_repositories`, which no task pulls."""
    pullers: dict[str, list[Puller]] = defaultdict(list)
    for environment in environments:
        prefix = prefix_of(shared, environment)
        api = environment.api
        tasks = [(s.image_repository, s.name) for s in api.service]
        tasks.append((api.migrations.image_repository, contract.MIGRATIONS))
        for repository, task in tasks:
            pullers[repository].append(Puller(environment.account_id, contract.execution_role_name(prefix, task)))
        # Every service task runs the collector sidecar (modules/api/collector.py).
        for service in api.service:
            pullers[shared.cicd.collector_image_repository].append(
                Puller(environment.account_id, contract.execution_role_name(prefix, service.name)))
    for repository in shared.cicd.extra_repositories:
        pullers.setdefault(repository, [])
    return dict(pullers)


def construct_id(environment_name: str) -> str:
    return pascal(environment_name)


class CicdStack(TerraformStack):
    """`shared-cicd`: ECR repositories, the report topic, the pipeline's roles, monitoring.

    Its default provider works in the registry account (`registry { ... }`); each
    environment has a provider alias pinned to its own account and region that
    assumes the environment's Terraform role, for what must live there (its deploy
    role, its Prometheus workspace and the topic that workspace alerts through). State: `s3://<state bucket>/shared/cicd.tfstate`
    with the lock table. It names other tiers' resources but never references them,
    so every environment stack may read it.
    """

    def __init__(self, scope: Construct, name: str, *, shared: SharedConfig,
                 environments: Sequence[EnvironmentConfig], target: Target) -> None:
        super().__init__(scope, name)
        config, registry = shared.cicd, shared.registry
        self.target = target
        self.tags = {"project": shared.project, "environment": "shared", "tier": "cicd", "managed-by": MANAGED_BY}
        self.provider = aws_provider(
            self, "Aws", region=registry.region, account_id=registry.account_id,
            role_arn=config.terraform_role_arn, tags=self.tags, target=target,
        )
        configure_backend(self, state=shared.state, backend=BackendConfig(), name=name,
                          key="shared/cicd.tfstate", role_arn=shared.state.assume_role_arn, target=target)
        reaches = [self._reach(shared, environment) for environment in environments]
        partition = aws.data_aws_partition.DataAwsPartition(self, "Partition").partition

        self.registry = Registry(self, "Registry", config=config, project=shared.project,
                                 pullers=pullers_by_repository(shared, environments), partition=partition)
        alert_accounts = report_topic_alert_accounts(config, registry.account_id, [e.account_id for e in reaches])
        self.report_topic = ReportTopic(self, "ReportTopic", config=config, project=shared.project,
                                        region=registry.region, partition=partition, alert_accounts=alert_accounts)
        self.pipeline = Pipeline(self, "Pipeline", config=config, project=shared.project, partition=partition,
                                 registry_account_id=registry.account_id,
                                 repository_arns=self.registry.repository_arns, topic=self.report_topic,
                                 environments=reaches, account_of=target.account_id)
        self.monitoring = Monitoring(self, "Monitoring", config=config, project=shared.project, partition=partition,
                                     registry_account_id=registry.account_id, registry_region=registry.region,
                                     topic=self.report_topic, environments=reaches, target=target)

    def _reach(self, shared: SharedConfig, environment: EnvironmentConfig) -> EnvironmentReach:
        role = environment.cicd.terraform_role_arn or environment.assume_role_arn
        assert role is not None, "EnvironmentConfig requires a Terraform role (cicd.terraform_role_arn)"
        provider = aws_provider(
            self, f"Aws{construct_id(environment.name)}", region=environment.region,
            account_id=environment.account_id, role_arn=role,
            tags={**self.tags, "environment": environment.name}, target=self.target, alias=environment.name,
        )
        in_bucket = state_access.uses_state_bucket(environment)
        return EnvironmentReach(
            config=environment, prefix=prefix_of(shared, environment), provider=provider,
            terraform_role_arn=role, construct_id=construct_id(environment.name),
            state_role_arn=state_access.state_role_arn(shared, environment) if in_bucket else None,
            plan_state_role_arn=state_access.plan_state_role_arn(shared, environment) if in_bucket else None,
        )
