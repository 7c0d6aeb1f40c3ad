"""The network tier: subnets, NAT policy, routes, flow logs, endpoints, default SG."""

from __future__ import annotations

import pytest

# The interface endpoints Fargate tasks need without NAT (AWS docs): ECR api and dkr and Logs
# (https://docs.aws.amazon.com/AmazonECR/latest/userguide/vpc-endpoints.html), Secrets Manager
# (https://docs.aws.amazon.com/secretsmanager/latest/userguide/vpc-endpoint-overview.html), STS
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_sts_vpce.html) and Prometheus remote write
# (https://docs.aws.amazon.com/prometheus/latest/userguide/AMP-and-interface-VPC.html).
INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "logs", "secretsmanager", "sts", "aps-workspaces")


def subnets(stack, tier):
    return sorted(
        (s for s in stack.resources("aws_subnet").values() if s["tags"]["tier"] == tier),
        key=lambda s: s["cidr_block"],
    )


@pytest.mark.parametrize("env, zones", [("dev", 2), ("stage", 3), ("prod", 3)])
def test_one_subnet_per_tier_per_zone_in_pinned_zones(synth, env, zones):
    stack = synth.stack(f"{env}-network")
    for tier in ("public", "private", "isolated"):
        found = subnets(stack, tier)
        assert len(found) == zones
        assert [s["availability_zone"] for s in found] == [f"eu-west-1{c}" for c in "abc"[:zones]]
        assert all(s["map_public_ip_on_launch"] is False for s in found)


def test_vpc_checks_the_pinned_zones_exist_at_plan_time(synth):
    stack = synth.stack("prod-network")
    (zones,) = stack.data("aws_availability_zones").values()
    assert zones["filter"] == [{"name": "zone-name", "values": ["eu-west-1a", "eu-west-1b", "eu-west-1c"]}]
    # Any state: a zone impaired for a while must not fail every plan of the network.
    assert "state" not in zones
    (precondition,) = stack.resource("aws_vpc", "Network/Vpc")["lifecycle"]["precondition"]
    assert "== 3" in precondition["condition"]


@pytest.mark.parametrize("env, nats", [("dev", 1), ("stage", 3), ("prod", 3)])
def test_nat_gateways_follow_the_policy(synth, env, nats):
    stack = synth.stack(f"{env}-network")
    assert len(stack.resources("aws_nat_gateway")) == nats
    assert len(stack.resources("aws_eip")) == nats


def test_every_private_subnet_routes_out_through_a_nat_in_its_own_zone_when_per_az(synth):
    stack = synth.stack("prod-network")
    routes = [r for r in stack.resources("aws_route").values() if "nat_gateway_id" in r]
    assert sorted(r["nat_gateway_id"] for r in routes) == sorted(
        f"${{aws_nat_gateway.{name}.id}}" for name in stack.resources("aws_nat_gateway")
    )


def test_single_nat_serves_every_private_subnet(synth):
    stack = synth.stack("dev-network")
    (nat,) = stack.resources("aws_nat_gateway")
    routes = [r for r in stack.resources("aws_route").values() if "nat_gateway_id" in r]
    assert len(routes) == 2 and {r["nat_gateway_id"] for r in routes} == {f"${{aws_nat_gateway.{nat}.id}}"}


def test_isolated_subnets_have_no_route_out(synth):
    stack = synth.stack("prod-network")
    isolated = stack.resource("aws_route_table", "Network/IsolatedRouteTable")
    assert "route" not in isolated
    table_refs = {r["route_table_id"] for r in stack.resources("aws_route").values()}
    assert not any("IsolatedRouteTable" in ref for ref in table_refs)


def test_default_security_group_has_no_rules(synth):
    for env in ("dev", "stage", "prod"):
        (group,) = synth.stack(f"{env}-network").resources("aws_default_security_group").values()
        assert group["ingress"] == [] and group["egress"] == []


def test_flow_logs_go_to_an_encrypted_log_group_with_the_configured_retention(synth, environments):
    for environment in environments.environments:
        stack = synth.stack(f"{environment.name}-network")
        group = stack.resource("aws_cloudwatch_log_group", "Network/FlowLogGroup")
        assert group["retention_in_days"] == environment.network.flow_log_retention_days
        assert "aws_kms_key.Network_FlowLogKey" in group["kms_key_id"]
        flow_log = stack.resource("aws_flow_log", "Network/FlowLog")
        assert flow_log["traffic_type"] == "ALL"
        assert flow_log["vpc_id"].startswith("${aws_vpc.")


# Amazon VPC User Guide, "IAM role for publishing flow logs to CloudWatch Logs": the role's
# policy "must include at least the following permissions".
FLOW_LOG_ROLE_ACTIONS = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                         "logs:DescribeLogGroups", "logs:DescribeLogStreams"}


@pytest.mark.parametrize("env", ["dev", "stage", "prod"])
def test_flow_log_role_has_the_documented_actions_scoped_to_its_log_group(synth, env):
    stack = synth.stack(f"{env}-network")
    role_policy = stack.resource("aws_iam_role_policy", "Network/FlowLogRolePolicy")
    document = stack.data("aws_iam_policy_document")[role_policy["policy"].split(".")[2]]
    granted = {action: statement["resources"] for statement in document["statement"]
               for action in statement["actions"]}
    assert set(granted) == FLOW_LOG_ROLE_ACTIONS
    assert all(statement.get("effect", "Allow") == "Allow" for statement in document["statement"])
    group = "${aws_cloudwatch_log_group.Network_FlowLogGroup_"
    for action, resources in granted.items():
        if action == "logs:DescribeLogGroups":
            # A list call: the Service Authorization Reference gives it no resource type to scope to.
            assert resources == ["*"]
        else:
            assert len(resources) == 2 and all(r.startswith(group) for r in resources), (action, resources)


def test_endpoints_let_private_subnets_reach_aws_without_nat(synth):
    stack = synth.stack("dev-network")
    endpoints = {e["service_name"]: e for e in stack.resources("aws_vpc_endpoint").values()}
    assert set(endpoints) == {f"com.amazonaws.eu-west-1.{s}" for s in ("s3", *INTERFACE_ENDPOINTS)}
    s3 = endpoints["com.amazonaws.eu-west-1.s3"]
    assert s3["vpc_endpoint_type"] == "Gateway" and len(s3["route_table_ids"]) == 3
    for service in INTERFACE_ENDPOINTS:
        endpoint = endpoints[f"com.amazonaws.eu-west-1.{service}"]
        assert endpoint["private_dns_enabled"] is True
        assert all("PrivateSubnet" in s for s in endpoint["subnet_ids"])


def test_endpoint_security_group_admits_only_https_from_the_vpc(synth):
    stack = synth.stack("dev-network")
    (rule,) = stack.resources("aws_vpc_security_group_ingress_rule").values()
    assert (rule["from_port"], rule["to_port"], rule["ip_protocol"]) == (443, 443, "tcp")
    assert rule["cidr_ipv4"] == "10.10.0.0/16"
    assert not stack.resources("aws_vpc_security_group_egress_rule")


def test_network_outputs_what_later_tiers_consume(synth):
    outputs = synth.stack("dev-network").json["output"]
    names = {o.split("_")[1] for o in outputs}
    assert {"VpcId", "PrivateSubnetIds", "IsolatedSubnetIds", "PublicSubnetIds", "EndpointSecurityGroupId"} <= names


PROTECTED = (("aws_vpc", "Network/Vpc"), ("aws_cloudwatch_log_group", "Network/FlowLogGroup"),
             ("aws_kms_key", "Network/FlowLogKey"))


@pytest.mark.parametrize("env, kept", [("dev", False), ("stage", True), ("prod", True)])
def test_prevent_destroy_keeps_the_vpc_subnets_nat_addresses_and_flow_log_trail(synth, env, kept):
    stack = synth.stack(f"{env}-network")
    resources = [stack.resource(kind, path) for kind, path in PROTECTED]
    resources += list(stack.resources("aws_subnet").values()) + list(stack.resources("aws_eip").values())
    # the VPC, group and key; 3 tiers x zones subnets; one NAT address (dev) or one per zone
    assert len(resources) == {"dev": 3 + 6 + 1, "stage": 3 + 9 + 3, "prod": 3 + 9 + 3}[env]
    for resource in resources:
        assert bool(resource.get("lifecycle", {}).get("prevent_destroy")) is kept, resource["//"]


def test_production_requires_network_prevent_destroy(environments_copy):
    from tests.harness.edits import edit, load_error

    edit(environments_copy, "prod.hcl", "  prevent_destroy         = true\n}", "  prevent_destroy         = false\n}")
    error = load_error(environments_copy)
    assert error.file.endswith("prod.hcl") and error.key == "network.prevent_destroy"
    assert "must be true when production = true, got false" in str(error)
