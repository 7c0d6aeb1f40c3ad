"""One API service: a Fargate task behind the NLB, autoscaled, with deployment alarms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cdktf import TerraformResourceLifecycle
from constructs import Construct

from modules import aws
from modules.api import collector
from modules.api.cluster import Cluster
from modules.api.config import CANDIDATE_SUFFIX, ServiceConfig, pascal
from modules.api.health import HEALTH_METRIC
from modules.api.load_balancer import LoadBalancer
from modules.api.task import (
    HTTPS,
    TMP_VOLUME,
    TaskEnvironment,
    container_definitions,
    execution_role,
    log_group,
    task_definition,
    task_role,
    task_security_group,
)
from modules.core import policy
from modules.core.naming import NameKind, physical_name
from modules.database.access import DatabaseAccess, login_name

ALARM_PERIOD_SECONDS = 60


def route_resources(service: ServiceConfig) -> tuple[str, str]:
    """The API Gateway resource paths of a service: `/<prefix>` and `/<prefix>/{proxy+}`."""
    return f"/{service.path_prefix}", f"/{service.path_prefix}/{{proxy+}}"


def route_methods(service: ServiceConfig, cached_methods: bool) -> list[tuple[str, str]]:
    """The (Resource, Method) pairs API Gateway reports the service's requests under: `ANY` on both
    resources, and `GET` where GET has its own cached method. Per-method metrics need the stage's
    `metrics_enabled` (Gateway's method settings set it on `*/*`)."""
    methods = ("ANY", "GET") if cached_methods else ("ANY",)
    return [(resource, method) for resource in route_resources(service) for method in methods]


def alarm_name(name_prefix: str, service: str, what: str) -> str:
    """`<prefix>-api-<service>-<what>`: every API alarm starts `<prefix>-api-` (the alarm key's condition)."""
    return f"{name_prefix}-api-{service}-{what}"


class Service(Construct):
    """Creates one service of `api.service` and everything it runs with.

    - a log group (tier key, retention from config);
    - an execution role that pulls only its ECR repository, writes only its log group
      and reads exactly the secrets its container names (its `secrets`; never the
      database's master secret), and a task role that, with `database_access`, may
      `rds-db:connect` as the service's own login (`svc_<name>`) and nothing else (plus
      ECS Exec's channel when on);
    - a task definition: Fargate, awsvpc, the configured CPU architecture, one hardened
      container (non-root, read-only root filesystem with a writable /tmp, not
      privileged) with a health check on the health path; with `database_access`, where
      and as whom to connect as environment variables (`DB_HOST`, `DB_READER_HOST`,
      `DB_PORT`, `DB_NAME`, `DB_USERNAME`, `DB_IAM_AUTH`), no password; with monitoring
      (`environment.collector`), an ADOT collector sidecar, hardened the same way, that
      scrapes the metrics and health paths and remote-writes to the environment's
      Prometheus workspace, which the task role may write to (and nothing else);
    - its security group (see `task_security_group`), plus ingress from the NLB only, and
      HTTPS to the internet through NAT only with `internet_egress_https` (or ECS Exec);
    - the NLB listener and target group (`LoadBalancer.add_service`);
    - the ECS service in the private subnets without public IPs: circuit breaker with
      rollback, deployment alarms (unhealthy targets, API Gateway 5xx on its routes)
      that roll a bad deploy back, health check grace period;
    - Application Auto Scaling between `min_count` and `max_count`, target tracking on
      CPU and memory, scaling in more slowly than out.

    Attributes: `name` (the ECS service name), `security_group_id`, `task_definition_arn`.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: ServiceConfig, environment: TaskEnvironment,
                 cluster: Cluster, load_balancer: LoadBalancer, enable_execute_command: bool,
                 alarm_topic_arn: str, api_name: str, stage_name: str, cached_methods: bool) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.environment = environment
        self.enable_execute_command = enable_execute_command
        prefix = self.prefix = environment.prefix
        self.name = physical_name(NameKind.ECS, prefix, config.name)

        logs = log_group(self, "LogGroup", environment, f"service/{config.name}")
        named_secrets = {
            variable: (environment.secret_arns[secret] if key is None
                       else f"{environment.secret_arns[secret]}:{key}::")
            for variable, (secret, key) in config.secret_references().items()
        }
        secret_arns = sorted({environment.secret_arns[s] for s, _ in config.secret_references().values()})
        kms_key_arns = [environment.secret_key_arn] if secret_arns and environment.secret_key_arn else []
        secrets = dict(named_secrets)
        variables = dict(config.environment)
        database_access = config.database_access is not DatabaseAccess.NONE
        login = login_name(config.name)
        if database_access:
            variables.update(environment.database_variables(login))

        target = environment.collector
        execution = execution_role(
            self, environment=environment, name=config.name, repository=config.image_repository,
            log_group_arn=logs.arn, secret_arns=secret_arns, kms_key_arns=kms_key_arns,
            sidecar_repositories=[target.repository] if target else [],
        )
        role = task_role(self, environment=environment, name=config.name)
        if database_access:
            document = policy.document(self, "DatabaseLoginPermissions", policy.statement(
                sid="ConnectAsOwnLogin", actions=["rds-db:connect"], resources=environment.database_user_arns(login),
            ))
            aws.iam_role_policy.IamRolePolicy(self, "DatabaseLoginPolicy", name="database-login", role=role.id,
                                              policy=document.json)
        if enable_execute_command:
            self._allow_execute_command(role, environment)

        port = config.container_port
        sidecars = []
        if target is not None and config.metrics_path is not None and port is not None:
            sidecars.append(collector.collector_container(
                target, image=environment.image(target.repository, target.tag, None), service=config.name,
                port=port, metrics_path=config.metrics_path, region=environment.region, log_group_name=logs.name, tmp_volume=TMP_VOLUME,
            ))
            document = policy.document(self, "CollectorPermissions", *collector.task_role_statements(target))
            aws.iam_role_policy.IamRolePolicy(self, "CollectorPolicy", name="write-metrics", role=role.id,
                                              policy=document.json)
        # A worker listens on no port: ECS replaces a task whose essential container exits, and the
        # deployment circuit breaker rolls back a release whose tasks keep stopping.
        health = f"curl -fsS http://localhost:{port}{config.health_check_path} || exit 1" if port is not None else None

        def definition_of(scope: Construct, family: str, tag: str, digest: str | None) -> Any:
            """A task definition of this service running image `tag`/`digest` (the stable or the candidate)."""
            containers = container_definitions(
                name=config.name,
                image=environment.image(config.image_repository, tag, digest),
                user=config.user,
                log_group_name=logs.name,
                region=environment.region,
                environment=variables,
                secrets=secrets,
                port=port,
                health_check_command=health,
                health_check_start_seconds=config.health_check_grace_period_seconds,
                sidecars=sidecars,
            )
            return task_definition(
                scope, "TaskDefinition", family=family,
                cpu_units=config.cpu_units, memory_mib=config.memory_mib, cpu_architecture=config.cpu_architecture,
                execution_role_arn=execution.arn, task_role_arn=role.arn, containers=containers,
            )

        definition = definition_of(self, physical_name(NameKind.ECS, prefix, config.name), config.image_tag,
                                   config.image_digest)
        self.task_definition_arn = definition.arn

        group = task_security_group(
            self, environment=environment, name=f"{config.name}-tasks",
            description=f"Tasks of the {config.name} API service", database_access=database_access,
        )
        self.security_group_id = group.id
        egress = aws.vpc_security_group_egress_rule.VpcSecurityGroupEgressRule
        if config.internet_egress_https:
            # Third-party APIs (a payments provider, say): their addresses are not ours to pin, so
            # any HTTPS destination, through the NAT gateways. ECS Exec's channel uses it too: AWS
            # rejects a second rule with the same destination and port on one group.
            egress(
                self, "EgressHttpsToInternet", security_group_id=group.id,
                description="HTTPS to the internet through NAT (third-party APIs: internet_egress_https)",
                ip_protocol="tcp", from_port=HTTPS, to_port=HTTPS, cidr_ipv4="0.0.0.0/0",
            )
        elif enable_execute_command:
            # ECS Exec's channel (ssmmessages) has no VPC endpoint in the network tier.
            egress(
                self, "EgressForExecuteCommand", security_group_id=group.id,
                description="HTTPS to Systems Manager (ECS Exec, only while enable_execute_command is on)",
                ip_protocol="tcp", from_port=HTTPS, to_port=HTTPS, cidr_ipv4="0.0.0.0/0",
            )
        # A service with a route: its NLB listener and probe, and the alarms that roll a deployment back.
        self.health_metric: dict[str, Any] | None = None
        self.target_group_arn_suffix: str | None = None
        self.routes: list[tuple[str, str]] = []
        target_group: Any = None
        listener: Any = None
        alarms: list[Any] = []
        if not config.worker:
            target_group, listener = load_balancer.add_service(self, config, group.id)
            alarms = self._alarms(load_balancer, target_group, alarm_topic_arn, api_name, stage_name, cached_methods)
            self.target_group_arn_suffix = target_group.arn_suffix
            self.routes = route_methods(config, cached_methods)
        self.alarm_arns = [a.arn for a in alarms]
        self.service = self._ecs_service(self, self.name, cluster, definition.arn, group.id, target_group, listener,
                                         alarms)
        self._autoscaling(self, self.service, self.name, cluster, api_name, stage_name, cached_methods)
        self.candidate = self._candidate(config, cluster, load_balancer, group.id, definition_of) \
            if config.canary is not None else None

    def _candidate(self, config: ServiceConfig, cluster: Cluster, load_balancer: LoadBalancer,
                   security_group_id: str, definition_of: Callable[[Construct, str, str, str | None], Any]) -> Any:
        """The canary's candidate (construct `Canary`): its task definition (the release file's candidate
        image, everything else as the stable one's: roles, secrets, log group, size), its own target group
        and NLB listener on `candidate_port`, and an ECS service in the same subnets and security group
        with the same scaling bounds and CPU/memory tracking. No request-count policy and no alarms of its
        own: `delivery canary judge` compares it with the stable version, and its circuit breaker rolls a
        crash-looping candidate back."""
        canary = config.canary
        assert canary is not None
        scope = Construct(self, "Canary")
        name = physical_name(NameKind.ECS, self.prefix, config.name, CANDIDATE_SUFFIX)
        definition = definition_of(scope, name, canary.image_tag, canary.image_digest)
        target_group, listener = load_balancer.add_candidate(scope, config)
        # The apply waits until the candidate's tasks are running and healthy behind its listener: the
        # stage's canary, which depends on it, sends it requests only then.
        service = self._ecs_service(scope, name, cluster, definition.arn, security_group_id, target_group, listener,
                                    [], wait_for_steady_state=True)
        self.candidate_listener = listener
        self._autoscaling(scope, service, name, cluster, "", "", False, requests=False)
        self.candidate_task_definition_arn = definition.arn
        self.candidate_name = name
        return service

    def _ecs_service(self, scope: Construct, name: str, cluster: Cluster, definition_arn: str,
                     security_group_id: str, target_group: Any, listener: Any, alarms: list[Any],
                     wait_for_steady_state: bool | None = None) -> Any:
        """The ECS service; a worker's (no `target_group`) has no load balancer, grace period or alarms."""
        config = self.config
        port = config.container_port
        module = aws.ecs_service
        routed: dict[str, Any] = {}
        if target_group is not None:
            assert port is not None, "a service with a target group listens on container_port"
            routed = {
                "load_balancer": [module.EcsServiceLoadBalancer(
                    target_group_arn=target_group.arn, container_name=config.name, container_port=port,
                )],
                "health_check_grace_period_seconds": config.health_check_grace_period_seconds,
                "depends_on": [listener],
            }
        return module.EcsService(
            scope,
            "Service",
            name=name,
            cluster=cluster.arn,
            task_definition=definition_arn,
            desired_count=config.desired_count,
            platform_version="LATEST",
            capacity_provider_strategy=[
                module.EcsServiceCapacityProviderStrategy(**item) for item in cluster.capacity_provider_strategy
            ],
            network_configuration=module.EcsServiceNetworkConfiguration(
                subnets=self.environment.network.private_subnet_ids, security_groups=[security_group_id],
                assign_public_ip=False,
            ),
            # Tasks are spread over the zones again after a zone recovers.
            availability_zone_rebalancing="ENABLED",
            deployment_minimum_healthy_percent=100,
            deployment_maximum_percent=200,
            deployment_circuit_breaker=module.EcsServiceDeploymentCircuitBreaker(enable=True, rollback=True),
            alarms=module.EcsServiceAlarms(alarm_names=[a.alarm_name for a in alarms], enable=True, rollback=True)
            if alarms else None,
            enable_execute_command=self.enable_execute_command,
            # On provider 5.x a changed capacity_provider_strategy replaces the service (an outage)
            # unless the change may go out as a new deployment.
            force_new_deployment=True,
            propagate_tags="SERVICE",
            enable_ecs_managed_tags=True,
            # Autoscaling owns the running count after the first deploy.
            lifecycle=TerraformResourceLifecycle(ignore_changes=["desired_count"]),
            wait_for_steady_state=wait_for_steady_state,
            **routed,
        )

    def _allow_execute_command(self, role: Any, environment: TaskEnvironment) -> None:
        document = policy.document(
            self,
            "ExecuteCommandPermissions",
            # The Session Manager channel's actions have no resource-level permissions.
            policy.statement(
                sid="SessionManagerChannel",
                actions=["ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
                         "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"],
                resources=["*"],
            ),
            policy.statement(sid="EncryptSession", actions=["kms:Decrypt"], resources=[environment.log_key_arn]),
            policy.statement(
                sid="LogSession",
                actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[f"arn:{environment.partition}:logs:{environment.region}:{environment.account_id}:"
                           f"log-group:{environment.log_group_name('execute-command')}:*"],
            ),
            policy.statement(sid="DescribeLogGroups", actions=["logs:DescribeLogGroups"], resources=["*"]),
        )
        aws.iam_role_policy.IamRolePolicy(
            self, "ExecuteCommandPolicy", name="execute-command", role=role.id, policy=document.json
        )

    def _alarms(self, load_balancer: LoadBalancer, target_group: Any, topic_arn: str, api_name: str,
                stage_name: str, cached_methods: bool) -> list[Any]:
        config = self.config
        alarm = aws.cloudwatch_metric_alarm
        # The health alert: the probe's metric, read as HEALTH_METRIC says (modules/api/health.py).
        self.health_metric = HEALTH_METRIC.reference(load_balancer.arn_suffix, target_group.arn_suffix)
        unhealthy = alarm.CloudwatchMetricAlarm(
            self,
            "UnhealthyHostsAlarm",
            alarm_name=alarm_name(self.prefix, config.name, "unhealthy-hosts"),
            alarm_description=f"{config.name}: tasks failing their health probe ({config.health_check_path} "
                              f"answering {config.health_check_codes} within {config.health_check_timeout_seconds} s; "
                              "rolls a deployment back)",
            namespace=HEALTH_METRIC.namespace,
            metric_name=HEALTH_METRIC.name,
            dimensions=HEALTH_METRIC.dimensions(load_balancer.arn_suffix, target_group.arn_suffix),
            statistic=HEALTH_METRIC.statistic,
            period=HEALTH_METRIC.period_seconds,
            evaluation_periods=2,
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=config.unhealthy_hosts_alarm_threshold,
            treat_missing_data="notBreaching",
            alarm_actions=[topic_arn],
            ok_actions=[topic_arn],
        )
        queries = []
        for index, (resource, method) in enumerate(route_methods(config, cached_methods)):
            queries.append(alarm.CloudwatchMetricAlarmMetricQuery(
                id=f"m{index}",
                return_data=False,
                metric=alarm.CloudwatchMetricAlarmMetricQueryMetric(
                    namespace="AWS/ApiGateway",
                    metric_name="5XXError",
                    dimensions={"ApiName": api_name, "Stage": stage_name, "Resource": resource, "Method": method},
                    stat="Sum",
                    period=ALARM_PERIOD_SECONDS,
                ),
            ))
        total = " + ".join(f"FILL(m{i}, 0)" for i in range(len(queries)))
        queries.append(alarm.CloudwatchMetricAlarmMetricQuery(
            id="errors", expression=total, label=f"5xx responses of /{config.path_prefix}", return_data=True,
        ))
        server_errors = alarm.CloudwatchMetricAlarm(
            self,
            "ServerErrorsAlarm",
            alarm_name=alarm_name(self.prefix, config.name, "5xx"),
            alarm_description=f"{config.name}: API Gateway 5xx responses on /{config.path_prefix} "
                              "(rolls a deployment back)",
            metric_query=queries,
            evaluation_periods=2,
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=config.server_errors_alarm_threshold,
            treat_missing_data="notBreaching",
            alarm_actions=[topic_arn],
            ok_actions=[topic_arn],
        )
        return [unhealthy, server_errors]

    def _autoscaling(self, scope: Construct, service: Any, service_name: str, cluster: Cluster, api_name: str,
                     stage_name: str, cached_methods: bool, *, requests: bool = True) -> None:
        config = self.config
        target = aws.appautoscaling_target.AppautoscalingTarget(
            scope,
            "ScalingTarget",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=f"service/{cluster.name}/{service.name}",
            min_capacity=config.min_count,
            max_capacity=config.max_count,
            # With schedules, they set the bounds from their times on: an apply resetting them to
            # min_count/max_count would undo the last schedule until the next one runs.
            lifecycle=TerraformResourceLifecycle(ignore_changes=["min_capacity", "max_capacity"])
            if config.schedule else None,
        )
        scaling = aws.appautoscaling_policy
        for construct_id, suffix, metric, value in (
            ("CpuScaling", "cpu", "ECSServiceAverageCPUUtilization", config.cpu_target_percent),
            ("MemoryScaling", "memory", "ECSServiceAverageMemoryUtilization", config.memory_target_percent),
        ):
            scaling.AppautoscalingPolicy(
                scope,
                construct_id,
                name=f"{service_name}-{suffix}",
                policy_type="TargetTrackingScaling",
                service_namespace=target.service_namespace,
                scalable_dimension=target.scalable_dimension,
                resource_id=target.resource_id,
                target_tracking_scaling_policy_configuration=scaling.AppautoscalingPolicyTargetTrackingScalingPolicyConfiguration(
                    target_value=value,
                    predefined_metric_specification=scaling.AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecification(
                        predefined_metric_type=metric
                    ),
                    scale_out_cooldown=config.scale_out_cooldown_seconds,
                    scale_in_cooldown=config.scale_in_cooldown_seconds,
                ),
            )
        if requests and config.requests_per_task_target is not None:
            self._request_scaling(target, config.requests_per_task_target, cluster, api_name, stage_name,
                                  cached_methods)
        for item in config.schedule:
            aws.appautoscaling_scheduled_action.AppautoscalingScheduledAction(
                scope, f"Schedule{pascal(item.name)}", name=f"{service_name}-{item.name}",
                service_namespace=target.service_namespace, scalable_dimension=target.scalable_dimension,
                resource_id=target.resource_id, schedule=item.cron, timezone=item.timezone,
                scalable_target_action=aws.appautoscaling_scheduled_action.AppautoscalingScheduledActionScalableTargetAction(
                    min_capacity=str(item.min_count), max_capacity=str(item.max_count),
                ),
            )

    def _request_scaling(self, target: Any, requests_per_task: int, cluster: Cluster, api_name: str,
                         stage_name: str, cached_methods: bool) -> None:
        """Target tracking on requests per task per minute: API Gateway's `Count` (Sum) on the service's
        routes divided by Container Insights' `RunningTaskCount` (Application Auto Scaling user guide,
        "Create a target tracking scaling policy ... using metric math": its SQS backlog-per-task
        example divides by the same metric)."""
        config = self.config
        scaling = aws.appautoscaling_policy
        prefix = "AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecification"
        spec = getattr(scaling, prefix)
        Metrics = getattr(scaling, f"{prefix}Metrics")  # noqa: N806 (the provider's class names are long)
        MetricStat = getattr(scaling, f"{prefix}MetricsMetricStat")  # noqa: N806
        Metric = getattr(scaling, f"{prefix}MetricsMetricStatMetric")  # noqa: N806
        Dimensions = getattr(scaling, f"{prefix}MetricsMetricStatMetricDimensions")  # noqa: N806

        def stat(namespace: str, name: str, dimensions: dict[str, str], statistic: str) -> Any:
            return MetricStat(stat=statistic, metric=Metric(
                namespace=namespace, metric_name=name,
                dimensions=[Dimensions(name=k, value=v) for k, v in dimensions.items()],
            ))

        routes = route_methods(config, cached_methods)
        metrics = [
            Metrics(id=f"requests{index}", return_data=False, metric_stat=stat(
                "AWS/ApiGateway", "Count",
                {"ApiName": api_name, "Stage": stage_name, "Resource": resource, "Method": method}, "Sum",
            ))
            for index, (resource, method) in enumerate(routes)
        ]
        metrics.append(Metrics(id="tasks", return_data=False, metric_stat=stat(
            "ECS/ContainerInsights", "RunningTaskCount", {"ClusterName": cluster.name, "ServiceName": self.name},
            "Average",
        )))
        total = " + ".join(f"FILL(requests{index}, 0)" for index in range(len(routes)))
        metrics.append(Metrics(id="per_task", expression=f"({total}) / tasks", return_data=True,
                               label=f"requests per task per minute on /{config.path_prefix}"))
        scaling.AppautoscalingPolicy(
            self, "RequestScaling", name=f"{self.name}-requests", policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace, scalable_dimension=target.scalable_dimension,
            resource_id=target.resource_id,
            target_tracking_scaling_policy_configuration=scaling.AppautoscalingPolicyTargetTrackingScalingPolicyConfiguration(
                target_value=requests_per_task,
                customized_metric_specification=spec(metrics=metrics),
                scale_out_cooldown=config.scale_out_cooldown_seconds,
                scale_in_cooldown=config.scale_in_cooldown_seconds,
            ),
        )
