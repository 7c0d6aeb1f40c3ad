"""The network tier: one VPC with public, private (app) and isolated (database) subnets."""

from __future__ import annotations

from cdktf import Precondition, TerraformOutput, TerraformResourceLifecycle
from constructs import Construct

from modules import aws
from modules.core import kms, policy
from modules.core.naming import NameKind, physical_name
from modules.network.config import NatGateways, NetworkConfig

# Fargate tasks in private subnets pull images, write logs, read secrets, assume
# roles and remote-write metrics (the ADOT sidecar, to Amazon Managed Prometheus)
# through these without any route to the internet.
INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "logs", "secretsmanager", "sts", "aps-workspaces")


class Network(Construct):
    """Creates the VPC every other tier of an environment runs in.

    - VPC (DNS on) over `az_count` pinned zones, checked against the account's zones at plan time;
    - per zone a public, a private and an isolated subnet, CIDRs computed from `cidr`;
    - an internet gateway; NAT gateways per `nat_gateways`; one route table per
      private subnet so changing the NAT policy never replaces a subnet;
    - the default security group stripped of every rule;
    - VPC flow logs to a KMS-encrypted CloudWatch log group;
    - an S3 gateway endpoint and interface endpoints (ECR api/dkr, Logs, Secrets
      Manager, STS) with private DNS, reachable on 443 from inside the VPC.

    Attributes: `vpc_id`, `availability_zones`, `public_subnet_ids`,
    `private_subnet_ids`, `isolated_subnet_ids`, `endpoint_security_group_id`.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: NetworkConfig, name_prefix: str,
                 region: str) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.prefix = name_prefix
        zone_names = config.zone_names(region)
        # prevent_destroy cannot be an expression in Terraform, so it is decided here, from data.
        self.keep = TerraformResourceLifecycle(prevent_destroy=True) if config.prevent_destroy else None
        # Reads back exactly the pinned zones, so the plan fails (precondition below) when
        # one of them is not offered to this account. Whatever their state: a zone that is
        # impaired for a while must not block a plan of the network (an emergency change).
        zones = aws.data_aws_availability_zones.DataAwsAvailabilityZones(
            self,
            "Zones",
            filter=[aws.data_aws_availability_zones.DataAwsAvailabilityZonesFilter(
                name="zone-name", values=list(zone_names)
            )],
        )
        self.vpc = aws.vpc.Vpc(
            self,
            "Vpc",
            cidr_block=config.cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags={"Name": name_prefix},
            lifecycle=TerraformResourceLifecycle(
                prevent_destroy=True if config.prevent_destroy else None,
                precondition=[Precondition(
                    condition=f"${{length({zones.fqn}.names) == {len(zone_names)}}}",
                    error_message=(
                        f"network zones {', '.join(zone_names)} are not all offered to this account; "
                        "set network.availability_zones to zones it has."
                    ),
                )],
            ),
        )
        self.vpc_id = self.vpc.id
        self.availability_zones = list(zone_names)

        aws.default_security_group.DefaultSecurityGroup(
            self, "DefaultSecurityGroup", vpc_id=self.vpc_id, ingress=[], egress=[],
            tags={"Name": f"{name_prefix}-default-deny"},
        )
        gateway = aws.internet_gateway.InternetGateway(
            self, "InternetGateway", vpc_id=self.vpc_id, tags={"Name": name_prefix}
        )

        public = self._subnets("public")
        private = self._subnets("private")
        isolated = self._subnets("isolated")
        self.public_subnet_ids = [s.id for s in public]
        self.private_subnet_ids = [s.id for s in private]
        self.isolated_subnet_ids = [s.id for s in isolated]

        public_routes = aws.route_table.RouteTable(
            self, "PublicRouteTable", vpc_id=self.vpc_id, tags={"Name": f"{name_prefix}-public"}
        )
        aws.route.Route(
            self, "PublicDefaultRoute", route_table_id=public_routes.id,
            destination_cidr_block="0.0.0.0/0", gateway_id=gateway.id,
        )
        for az, subnet in enumerate(public):
            aws.route_table_association.RouteTableAssociation(
                self, f"PublicRouteTableAssociation{az}", subnet_id=subnet.id, route_table_id=public_routes.id
            )

        nat_ids = self._nat_gateways(public, gateway)
        private_route_table_ids = []
        for az, subnet in enumerate(private):
            table = aws.route_table.RouteTable(
                self, f"PrivateRouteTable{az}", vpc_id=self.vpc_id, tags={"Name": f"{name_prefix}-private-{az}"}
            )
            private_route_table_ids.append(table.id)
            aws.route_table_association.RouteTableAssociation(
                self, f"PrivateRouteTableAssociation{az}", subnet_id=subnet.id, route_table_id=table.id
            )
            if nat_ids:
                aws.route.Route(
                    self, f"PrivateDefaultRoute{az}", route_table_id=table.id,
                    destination_cidr_block="0.0.0.0/0", nat_gateway_id=nat_ids[az % len(nat_ids)],
                )

        isolated_routes = aws.route_table.RouteTable(
            self, "IsolatedRouteTable", vpc_id=self.vpc_id, tags={"Name": f"{name_prefix}-isolated"}
        )
        for az, subnet in enumerate(isolated):
            aws.route_table_association.RouteTableAssociation(
                self, f"IsolatedRouteTableAssociation{az}", subnet_id=subnet.id, route_table_id=isolated_routes.id
            )

        self._flow_logs(region)
        self._endpoints(region, private_route_table_ids + [isolated_routes.id])
        self._outputs()

    def _subnets(self, tier: str) -> list:
        title = tier.title()
        return [
            aws.subnet.Subnet(
                self,
                f"{title}Subnet{az}",
                vpc_id=self.vpc_id,
                cidr_block=cidr,
                availability_zone=self.availability_zones[az],
                map_public_ip_on_launch=False,
                tags={"Name": f"{self.prefix}-{tier}-{az}", "tier": tier},
                lifecycle=self.keep,
            )
            for az, cidr in enumerate(self.config.subnet_cidrs(tier))
        ]

    def _nat_gateways(self, public: list, gateway) -> list[str]:
        count = {NatGateways.NONE: 0, NatGateways.SINGLE: 1, NatGateways.PER_AZ: len(public)}[
            self.config.nat_gateways
        ]
        ids = []
        for az in range(count):
            address = aws.eip.Eip(self, f"NatAddress{az}", domain="vpc", tags={"Name": f"{self.prefix}-nat-{az}"},
                                  depends_on=[gateway], lifecycle=self.keep)
            nat = aws.nat_gateway.NatGateway(
                self, f"NatGateway{az}", allocation_id=address.id, subnet_id=public[az].id,
                tags={"Name": f"{self.prefix}-nat-{az}"}, depends_on=[gateway],
            )
            ids.append(nat.id)
        return ids

    def _flow_logs(self, region: str) -> None:
        identity = aws.data_aws_caller_identity.DataAwsCallerIdentity(self, "Identity")
        partition = aws.data_aws_partition.DataAwsPartition(self, "Partition")
        account, part = identity.account_id, partition.partition
        log_group_name = f"/vpc/{self.prefix}/flow-logs"
        log_group_arn = f"arn:{part}:logs:{region}:{account}:log-group:{log_group_name}"
        key_policy = policy.document(
            self,
            "FlowLogKeyPolicy",
            policy.account_root_admin(account, part),
            policy.cloudwatch_logs_encrypt(region, log_group_arn),
        )
        key = kms.key(self, "FlowLogKey", description=f"Encrypts {self.prefix} VPC flow logs",
                      policy_json=key_policy.json, alias_prefix=self.prefix, alias="flow-logs", lifecycle=self.keep)
        log_group = aws.cloudwatch_log_group.CloudwatchLogGroup(
            self, "FlowLogGroup", name=physical_name(NameKind.LOG_GROUP, log_group_name),
            retention_in_days=self.config.flow_log_retention_days, kms_key_id=key.arn, lifecycle=self.keep,
        )
        # Flow logs send aws:SourceArn, the flow log's ARN, arn:aws:ec2:region:account_id:vpc-flow-log/flow-log-id
        # (Amazon VPC User Guide, "IAM role for publishing flow logs to CloudWatch Logs",
        # https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html): only this account's
        # flow logs in this region (the id is not known before the role exists).
        trust = policy.service_trust(self, "FlowLogTrust", sid="VpcFlowLogsAssumes",
                                     service="vpc-flow-logs.amazonaws.com", account_id=account, conditions=[
                                         {"test": "ArnLike", "variable": "aws:SourceArn",
                                          "values": [f"arn:{part}:ec2:{region}:{account}:vpc-flow-log/*"]}])
        role = aws.iam_role.IamRole(
            self, "FlowLogRole", name=physical_name(NameKind.IAM_ROLE, self.prefix, "vpc-flow-logs-delivery"),
            assume_role_policy=trust.json,
        )
        # The actions the VPC Flow Logs user guide lists for this role ("IAM role for publishing
        # flow logs to CloudWatch Logs"): all on this one log group, except DescribeLogGroups, a
        # list call that names no log group and so has no resource to scope to.
        permissions = policy.document(
            self,
            "FlowLogPermissions",
            policy.statement(
                sid="WriteFlowLogs",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                         "logs:DescribeLogStreams"],
                resources=[log_group.arn, f"{log_group.arn}:*"],
            ),
            policy.statement(sid="FindLogGroup", actions=["logs:DescribeLogGroups"], resources=["*"]),
        )
        aws.iam_role_policy.IamRolePolicy(
            self, "FlowLogRolePolicy", name="write-flow-logs", role=role.id, policy=permissions.json
        )
        aws.flow_log.FlowLog(
            self, "FlowLog", vpc_id=self.vpc_id, traffic_type=self.config.flow_log_traffic_type,
            log_destination_type="cloud-watch-logs", log_destination=log_group.arn, iam_role_arn=role.arn,
            max_aggregation_interval=60, tags={"Name": f"{self.prefix}-flow-logs"},
        )

    def _endpoints(self, region: str, gateway_route_table_ids: list[str]) -> None:
        self.endpoint_security_group = aws.security_group.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            name=physical_name(NameKind.SECURITY_GROUP, self.prefix, "vpc-endpoints"),
            description="HTTPS from inside the VPC to the interface endpoints",
            vpc_id=self.vpc_id,
            tags={"Name": f"{self.prefix}-vpc-endpoints"},
        )
        self.endpoint_security_group_id = self.endpoint_security_group.id
        aws.vpc_security_group_ingress_rule.VpcSecurityGroupIngressRule(
            self, "EndpointHttpsFromVpc", security_group_id=self.endpoint_security_group_id,
            description="HTTPS from the VPC", ip_protocol="tcp", from_port=443, to_port=443,
            cidr_ipv4=self.config.cidr,
        )
        aws.vpc_endpoint.VpcEndpoint(
            self, "S3Endpoint", vpc_id=self.vpc_id, service_name=f"com.amazonaws.{region}.s3",
            vpc_endpoint_type="Gateway", route_table_ids=gateway_route_table_ids,
            tags={"Name": f"{self.prefix}-s3"},
        )
        for service in INTERFACE_ENDPOINTS:
            construct_name = "".join(part.title() for part in service.split(".")) + "Endpoint"
            aws.vpc_endpoint.VpcEndpoint(
                self, construct_name, vpc_id=self.vpc_id, service_name=f"com.amazonaws.{region}.{service}",
                vpc_endpoint_type="Interface", private_dns_enabled=True, subnet_ids=self.private_subnet_ids,
                security_group_ids=[self.endpoint_security_group_id],
                tags={"Name": f"{self.prefix}-{service}"},
            )

    def _outputs(self) -> None:
        TerraformOutput(self, "VpcId", value=self.vpc_id, description="VPC id")
        TerraformOutput(self, "PublicSubnetIds", value=self.public_subnet_ids, description="Public subnets")
        TerraformOutput(self, "PrivateSubnetIds", value=self.private_subnet_ids,
                        description="Private (app) subnets, one per AZ")
        TerraformOutput(self, "IsolatedSubnetIds", value=self.isolated_subnet_ids,
                        description="Isolated (database) subnets, one per AZ")
        TerraformOutput(self, "EndpointSecurityGroupId", value=self.endpoint_security_group_id,
                        description="Security group of the interface endpoints")
