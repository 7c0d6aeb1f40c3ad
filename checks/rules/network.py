"""Routing and endpoints of the network tier: each subnet tier leaves the VPC only the way the design says."""

from __future__ import annotations

from collections.abc import Iterator

from checks.rules.stack import Stack, address, as_list, references

# The interface endpoints Fargate tasks in private subnets need when there is no NAT, with the S3
# gateway endpoint (image layers live in S3). From AWS's documentation:
# - ECR: "Amazon ECR interface VPC endpoints (AWS PrivateLink)", Fargate tasks pulling images need
#   com.amazonaws.<region>.ecr.dkr, com.amazonaws.<region>.ecr.api and the S3 gateway endpoint, and
#   com.amazonaws.<region>.logs for the awslogs driver
#   (https://docs.aws.amazon.com/AmazonECR/latest/userguide/vpc-endpoints.html);
# - Secrets Manager: com.amazonaws.<region>.secretsmanager
#   (https://docs.aws.amazon.com/secretsmanager/latest/userguide/vpc-endpoint-overview.html);
# - STS: com.amazonaws.<region>.sts (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_sts_vpce.html);
# - Amazon Managed Service for Prometheus remote write: com.amazonaws.<region>.aps-workspaces
#   (https://docs.aws.amazon.com/prometheus/latest/userguide/AMP-and-interface-VPC.html).
REQUIRED_INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "logs", "secretsmanager", "sts", "aps-workspaces")

WORLD = ("0.0.0.0/0", "::/0")


def _subnet_tier(config: dict) -> str | None:
    tags = config.get("tags") or {}
    return tags.get("tier")


def _tables_by_subnet(stack: Stack) -> dict[str, list[tuple[str, str]]]:
    """`{subnet name: [(association name, route table name)]}`."""
    found: dict[str, list[tuple[str, str]]] = {}
    for name, association in stack.resources("aws_route_table_association").items():
        subnets = [n for kind, n in references(association.get("subnet_id")) if kind == "aws_subnet"]
        tables = [n for kind, n in references(association.get("route_table_id")) if kind == "aws_route_table"]
        for subnet in subnets:
            found.setdefault(subnet, []).extend((name, table) for table in tables)
    return found


def _routes(stack: Stack, table: str) -> Iterator[tuple[str, dict]]:
    """Every route of a route table: `aws_route` resources and inline `route` blocks."""
    for name, route in stack.resources("aws_route").items():
        if ("aws_route_table", table) in references(route.get("route_table_id")):
            yield address("aws_route", name), route
    for index, route in enumerate(as_list(stack.resources("aws_route_table").get(table, {}).get("route"))):
        yield f"{address('aws_route_table', table)}.route[{index}]", route


def _target(route: dict) -> str:
    """What a route points at: `nat`, `igw`, or the argument it uses otherwise."""
    if route.get("nat_gateway_id"):
        return "nat"
    gateway = route.get("gateway_id")
    if gateway:
        kinds = {kind for kind, _ in references(gateway)}
        return "igw" if kinds == {"aws_internet_gateway"} else f"gateway_id {gateway}"
    for key in ("transit_gateway_id", "vpc_peering_connection_id", "network_interface_id", "egress_only_gateway_id",
                "vpc_endpoint_id", "carrier_gateway_id", "local_gateway_id", "core_network_arn"):
        if route.get(key):
            return key
    return "unknown"


def _subnets_of_tier(stack: Stack, tier: str) -> list[str]:
    return [name for name, subnet in stack.resources("aws_subnet").items() if _subnet_tier(subnet) == tier]


def _associations(stack: Stack, tier: str) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    tables = _tables_by_subnet(stack)
    for subnet in _subnets_of_tier(stack, tier):
        yield subnet, tables.get(subnet, [])


def isolated_subnets_have_no_route_out(stack: Stack, _context: object) -> Iterator[tuple[str, str]]:
    for subnet, associations in _associations(stack, "isolated"):
        if not associations:
            yield address("aws_subnet", subnet), "no route table association (the VPC's main table would apply)"
        for association, table in associations:
            for where, route in _routes(stack, table):
                yield where, (f"isolated subnet {subnet} (through {association}) has a route to {_target(route)}")


def private_subnets_leave_only_through_nat(stack: Stack, _context: object) -> Iterator[tuple[str, str]]:
    has_nat = bool(stack.resources("aws_nat_gateway"))
    for subnet, associations in _associations(stack, "private"):
        if not associations:
            yield address("aws_subnet", subnet), "no route table association (the VPC's main table would apply)"
        for association, table in associations:
            default_via_nat = False
            for where, route in _routes(stack, table):
                target = _target(route)
                if target != "nat":
                    yield where, f"private subnet {subnet} (through {association}) routes to {target}, not NAT"
                elif route.get("destination_cidr_block") == "0.0.0.0/0":
                    default_via_nat = True
            if has_nat and not default_via_nat:
                yield address("aws_route_table", table), f"private subnet {subnet} has no default route through NAT"


def public_subnets_leave_only_through_the_internet_gateway(stack: Stack, _context: object) -> Iterator[tuple[str, str]]:
    for subnet, associations in _associations(stack, "public"):
        if not associations:
            yield address("aws_subnet", subnet), "no route table association (the VPC's main table would apply)"
        for association, table in associations:
            default_via_igw = False
            for where, route in _routes(stack, table):
                target = _target(route)
                if target != "igw":
                    yield where, f"public subnet {subnet} (through {association}) routes to {target}"
                elif route.get("destination_cidr_block") in WORLD:
                    default_via_igw = True
            if not default_via_igw:
                yield address("aws_route_table", table), f"public subnet {subnet} has no default route to the internet gateway"


def route_tables_serve_one_subnet_tier(stack: Stack, _context: object) -> Iterator[tuple[str, str]]:
    tiers: dict[str, set[str]] = {}
    subnets = stack.resources("aws_subnet")
    for subnet, associations in _tables_by_subnet(stack).items():
        for _association, table in associations:
            tiers.setdefault(table, set()).add(str(_subnet_tier(subnets.get(subnet, {}))))
    for table, found in sorted(tiers.items()):
        if len(found) > 1:
            yield address("aws_route_table", table), f"serves subnets of tiers {', '.join(sorted(found))}"
    for subnet, associations in _tables_by_subnet(stack).items():
        if len({table for _, table in associations}) > 1:
            yield address("aws_subnet", subnet), "associated with more than one route table"


def endpoints_without_nat(stack: Stack, _context: object) -> Iterator[tuple[str, str]]:
    """Checked in every VPC, with or without NAT today: `nat_gateways` is environment data, and
    switching it to none must not leave the tasks without a way to pull images or write logs."""
    for vpc_name, vpc in stack.resources("aws_vpc").items():
        region = stack.region(vpc)
        endpoints = {e.get("service_name"): (name, e) for name, e in stack.resources("aws_vpc_endpoint").items()
                     if ("aws_vpc", vpc_name) in references(e.get("vpc_id"))}
        private = set(_subnets_of_tier(stack, "private"))
        tables = _tables_by_subnet(stack)
        inside_tables = {t for tier in ("private", "isolated") for s in _subnets_of_tier(stack, tier)
                         for _, t in tables.get(s, [])}
        where = address("aws_vpc", vpc_name)
        s3 = endpoints.get(f"com.amazonaws.{region}.s3")
        if s3 is None or s3[1].get("vpc_endpoint_type") != "Gateway":
            yield where, f"no S3 gateway endpoint com.amazonaws.{region}.s3"
        else:
            served = {n for kind, n in references(s3[1].get("route_table_ids")) if kind == "aws_route_table"}
            for table in sorted(inside_tables - served):
                yield address("aws_vpc_endpoint", s3[0]), f"S3 gateway endpoint is not on route table {table}"
        for service in REQUIRED_INTERFACE_ENDPOINTS:
            found = endpoints.get(f"com.amazonaws.{region}.{service}")
            if found is None:
                yield where, f"no interface endpoint com.amazonaws.{region}.{service}"
                continue
            name, endpoint = found
            if endpoint.get("vpc_endpoint_type") != "Interface" or endpoint.get("private_dns_enabled") is not True:
                yield address("aws_vpc_endpoint", name), "not an interface endpoint with private DNS"
            in_subnets = {n for kind, n in references(endpoint.get("subnet_ids")) if kind == "aws_subnet"}
            if private and not private <= in_subnets:
                yield address("aws_vpc_endpoint", name), "not in every private subnet"
