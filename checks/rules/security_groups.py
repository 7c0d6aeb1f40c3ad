"""Security groups: nothing open to the world; traffic goes API Gateway -> NLB -> service -> database."""

from __future__ import annotations

from collections.abc import Iterator

from checks.rules.stack import Stack, address, as_list, references

WORLD = ("0.0.0.0/0", "::/0")


def _group(value: object) -> str | None:
    """The name of this stack's security group a value refers to, if any."""
    found = [name for kind, name in references(value) if kind == "aws_security_group"]
    return found[0] if found else None


def no_ingress_from_the_world(stack: Stack, _context: object) -> Iterator[tuple[str, str]]:
    for name, rule in stack.resources("aws_vpc_security_group_ingress_rule").items():
        if rule.get("cidr_ipv4") in WORLD or rule.get("cidr_ipv6") in WORLD:
            yield address("aws_vpc_security_group_ingress_rule", name), "ingress from the whole internet"
    for name, rule in stack.resources("aws_security_group_rule").items():
        blocks = as_list(rule.get("cidr_blocks")) + as_list(rule.get("ipv6_cidr_blocks"))
        if rule.get("type") == "ingress" and any(b in WORLD for b in blocks):
            yield address("aws_security_group_rule", name), "ingress from the whole internet"
    for kind in ("aws_security_group", "aws_default_security_group"):
        for name, group in stack.resources(kind).items():
            for index, ingress in enumerate(as_list(group.get("ingress"))):
                blocks = as_list(ingress.get("cidr_blocks")) + as_list(ingress.get("ipv6_cidr_blocks"))
                if any(b in WORLD for b in blocks):
                    yield f"{address(kind, name)}.ingress[{index}]", "ingress from the whole internet"


def traffic_follows_api_nlb_service_database(stack: Stack, _context: object) -> Iterator[tuple[str, str]]:
    """In a stack with a network load balancer: its group takes no ingress rule (API Gateway's VPC
    link reaches it over PrivateLink), every ingress rule on a task's group comes from the NLB's
    group, and every rule this stack adds to another stack's group (the database's) comes from
    a task's group, on one port."""
    balancers = {name: lb for name, lb in stack.resources("aws_lb").items() if lb.get("load_balancer_type") == "network"}
    if not balancers:
        return
    nlb_groups = {g for lb in balancers.values() for kind, g in references(lb.get("security_groups"))
                  if kind == "aws_security_group"}
    for name, lb in balancers.items():
        if not nlb_groups:
            yield address("aws_lb", name), "the NLB has no security group of this stack"
        if lb.get("internal") is not True:
            yield address("aws_lb", name), "the NLB is not internal"
    task_groups = set(stack.resources("aws_security_group")) - nlb_groups
    ingress_rules = stack.resources("aws_vpc_security_group_ingress_rule")
    for name, rule in ingress_rules.items():
        where = address("aws_vpc_security_group_ingress_rule", name)
        target, source = _group(rule.get("security_group_id")), _group(rule.get("referenced_security_group_id"))
        if target in nlb_groups:
            yield where, "ingress on the NLB's group: only API Gateway's VPC link may reach the NLB"
        elif target in task_groups:
            if source not in nlb_groups:
                yield where, f"ingress on task group {target} from {source or 'an address range'}, not the NLB"
        elif target is None:
            if source not in task_groups:
                yield where, f"ingress on another stack's group from {source or 'an address range'}, not a task group"
            elif rule.get("from_port") != rule.get("to_port"):
                yield where, "ingress on another stack's group over a port range"
    for name, rule in stack.resources("aws_security_group_rule").items():
        if rule.get("type") == "ingress":
            yield address("aws_security_group_rule", name), "inline-style rule: the chain is checked on vpc rules only"
    for kind in ("aws_security_group",):
        for name, group in stack.resources(kind).items():
            if as_list(group.get("ingress")):
                yield address(kind, name), "inline ingress blocks: the chain is checked on vpc rules only"
