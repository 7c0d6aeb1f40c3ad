"""The ECS cluster the API's services and the migration task run in."""

from __future__ import annotations

from typing import Any

from constructs import Construct

from modules import aws
from modules.api.config import ApiConfig
from modules.core.naming import NameKind, physical_name


class Cluster(Construct):
    """Creates the ECS cluster with Container Insights and its Fargate capacity providers.

    - `FARGATE` and `FARGATE_SPOT` are both available; the default strategy (which
      every service also states explicitly) weighs them per `fargate_weight` /
      `fargate_spot_weight`, with `fargate_base` tasks always on regular Fargate;
    - ECS Exec sessions, when a service allows them, are encrypted with the tier's
      key and logged to their own log group.

    Attributes: `name`, `arn`, `capacity_provider_strategy` (for services).
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: ApiConfig, name_prefix: str,
                 log_key_arn: str, exec_log_group_name: str) -> None:
        super().__init__(scope, construct_id)
        module = aws.ecs_cluster
        self.cluster = module.EcsCluster(
            self,
            "Cluster",
            name=physical_name(NameKind.ECS, name_prefix, "api"),
            setting=[module.EcsClusterSetting(
                name="containerInsights", value="enabled" if config.container_insights else "disabled"
            )],
            configuration=module.EcsClusterConfiguration(
                execute_command_configuration=module.EcsClusterConfigurationExecuteCommandConfiguration(
                    kms_key_id=log_key_arn,
                    logging="OVERRIDE",
                    log_configuration=module.EcsClusterConfigurationExecuteCommandConfigurationLogConfiguration(
                        cloud_watch_log_group_name=exec_log_group_name,
                        cloud_watch_encryption_enabled=True,
                    ),
                ),
            ),
        )
        self.name = self.cluster.name
        self.arn = self.cluster.arn

        strategy: list[dict[str, Any]] = []
        if config.fargate_weight > 0:
            strategy.append({"capacity_provider": "FARGATE", "weight": config.fargate_weight,
                             "base": config.fargate_base})
        if config.fargate_spot_weight > 0:
            base = 0 if strategy else config.fargate_base
            strategy.append({"capacity_provider": "FARGATE_SPOT", "weight": config.fargate_spot_weight, "base": base})
        self.capacity_provider_strategy = strategy
        providers = aws.ecs_cluster_capacity_providers
        providers.EcsClusterCapacityProviders(
            self,
            "CapacityProviders",
            cluster_name=self.cluster.name,
            capacity_providers=["FARGATE", "FARGATE_SPOT"],
            default_capacity_provider_strategy=[
                providers.EcsClusterCapacityProvidersDefaultCapacityProviderStrategy(**item) for item in strategy
            ],
        )
