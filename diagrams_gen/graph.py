"""An architecture graph read from `cdktf.out/`: the nodes and edges the pictures draw.

Everything comes from the synthesized JSON: which resources exist, the `${type.name.attr}`
references between them (followed across stacks through CDKTF's `terraform_remote_state`
inputs and `cross-stack-output-*` outputs), and their values. Nothing here names a service,
an environment or a zone, so a service added to `environments/*.hcl` appears with no change.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modules import tiers

# `${aws_x.y.attr}` and `${data.terraform_remote_state.<input>.outputs.<output>}`; both can sit
# inside longer strings (`http://${aws_lb.x.dns_name}:8080/`, `${...secret_arn}:password::`).
_REFERENCE = re.compile(r"\$\{(data\.terraform_remote_state\.[\w-]+\.outputs\.[\w-]+|aws_\w+\.[\w-]+\.[\w.\[\]]+)\}")
_REMOTE = re.compile(r"data\.terraform_remote_state\.cross-stack-reference-input-([\w-]+)\.outputs\.([\w-]+)")
_LOCAL = re.compile(r"(aws_\w+)\.([\w-]+)\.([\w.\[\]]+)")


def picture_tiers() -> tuple[str, ...]:
    """A picture per tier: bootstrap, each environment tier in order (modules/tiers.py), cicd."""
    return (tiers.BOOTSTRAP.tier, *(tier.name for tier in tiers.TIERS), tiers.CICD.tier)


@dataclass(frozen=True)
class Node:
    """One box of the picture: `kind` picks the icon, `cluster` the nested frames it sits in."""

    id: str
    kind: str
    label: str
    tier: str
    cluster: tuple[str, ...] = ()


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str = ""


@dataclass
class Graph:
    """The architecture of one environment (plus the shared stacks it depends on)."""

    environment: str
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    # Values that differ between environments, for the picture's title, and the tier of each.
    facts: dict[str, str] = field(default_factory=dict)
    fact_tiers: dict[str, str] = field(default_factory=dict)

    def fact(self, tier: str, key: str, value: str) -> None:
        self.facts[key] = value
        self.fact_tiers[key] = tier

    def add(self, node: Node) -> None:
        self.nodes.setdefault(node.id, node)

    def connect(self, source: str, target: str, label: str = "") -> None:
        edge = Edge(source, target, label)
        if source in self.nodes and target in self.nodes and source != target and edge not in self.edges:
            self.edges.append(edge)

    def of_kind(self, kind: str) -> list[Node]:
        return [node for node in self.nodes.values() if node.kind == kind]

    def has_edge(self, source_kind: str, target_kind: str) -> bool:
        return any(
            self.nodes[e.source].kind == source_kind and self.nodes[e.target].kind == target_kind
            for e in self.edges
        )

    def tier_view(self, tier: str) -> Graph:
        """The tier's nodes, plus the nodes of other tiers its edges reach, so its context shows."""
        own = {node_id for node_id, node in self.nodes.items() if node.tier == tier}
        keep = set(own)
        for edge in self.edges:
            if edge.source in own or edge.target in own:
                keep |= {edge.source, edge.target}
        facts = {key: value for key, value in self.facts.items() if self.fact_tiers.get(key) == tier}
        view = Graph(self.environment, facts=facts, fact_tiers={key: tier for key in facts})
        for node_id in sorted(keep):
            view.add(self.nodes[node_id])
        view.edges = [e for e in self.edges if e.source in keep and e.target in keep]
        return view


@dataclass(frozen=True)
class _Resource:
    stack: str
    type: str
    name: str
    config: dict[str, Any]

    @property
    def address(self) -> str:
        return f"{self.stack}/{self.type}.{self.name}"

    @property
    def path(self) -> str:
        """The construct path (`prod-api/Api/Service1/Service`): a stable, human-chosen name."""
        return str(self.config.get("//", {}).get("metadata", {}).get("path", self.name))


class _Stacks:
    """Every stack's resources, and references resolved to the resource they point at."""

    def __init__(self, synth_dir: Path) -> None:
        self.json: dict[str, dict[str, Any]] = {}
        for file in sorted((synth_dir / "stacks").glob("*/cdk.tf.json")):
            self.json[file.parent.name] = json.loads(file.read_text())
        if not self.json:
            raise FileNotFoundError(f"{synth_dir}/stacks/*/cdk.tf.json: no stacks (run `make synth` first)")

    def resources(self, stack: str, resource_type: str) -> list[_Resource]:
        by_name = self.json.get(stack, {}).get("resource", {}).get(resource_type, {})
        return [_Resource(stack, resource_type, name, config) for name, config in sorted(by_name.items())]

    def resource(self, stack: str, resource_type: str, name: str) -> _Resource | None:
        config = self.json.get(stack, {}).get("resource", {}).get(resource_type, {}).get(name)
        return None if config is None else _Resource(stack, resource_type, name, config)

    def references(self, stack: str, value: Any) -> Iterator[tuple[_Resource, str]]:
        """Every resource `value` points at, with the attribute, following cross-stack outputs."""
        for text in _strings(value):
            for match in _REFERENCE.finditer(text):
                resolved = self._resolve(stack, match.group(1))
                if resolved is not None:
                    yield resolved

    def _resolve(self, stack: str, reference: str) -> tuple[_Resource, str] | None:
        remote = _REMOTE.fullmatch(reference)
        if remote is not None:
            # The producing stack's output holds the plain `${aws_x.y.attr}` it exports.
            producer, output = remote.groups()
            value = self.json.get(producer, {}).get("output", {}).get(output, {}).get("value")
            inner = _REFERENCE.fullmatch(value) if isinstance(value, str) else None
            return self._resolve(producer, inner.group(1)) if inner else None
        local = _LOCAL.fullmatch(reference)
        if local is None:
            return None
        resource_type, name, attribute = local.groups()
        found = self.resource(stack, resource_type, name)
        return None if found is None else (found, attribute)

    def policy_document(self, stack: str, value: Any) -> dict[str, Any]:
        """The `aws_iam_policy_document` data source a policy's `${data....json}` names."""
        match = re.search(r"\$\{data\.aws_iam_policy_document\.([\w-]+)\.json\}", str(value))
        documents = self.json.get(stack, {}).get("data", {}).get("aws_iam_policy_document", {})
        return documents.get(match.group(1), {}) if match else {}

    def referenced(self, stack: str, value: Any, resource_type: str) -> list[_Resource]:
        return [r for r, _ in self.references(stack, value) if r.type == resource_type]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _name(resource: _Resource) -> str:
    config = resource.config
    return str(config.get("name") or config.get("identifier") or config.get("bucket") or resource.path.split("/")[-1])


def environments(synth_dir: Path) -> list[str]:
    """The environments synthesized: every `<env>-network` stack."""
    stacks = _Stacks(synth_dir)
    return sorted(name.removesuffix("-network") for name in stacks.json if name.endswith("-network"))


def build(synth_dir: Path, environment: str) -> Graph:
    """The graph of one environment: its four tier stacks, `bootstrap` and its part of `shared-cicd`."""
    stacks = _Stacks(synth_dir)
    if f"{environment}-network" not in stacks.json:
        known = ", ".join(sorted(n.removesuffix("-network") for n in stacks.json if n.endswith("-network")))
        raise ValueError(f"{synth_dir}: no stacks for environment {environment!r} (synthesized: {known})")
    others = {n.removesuffix("-network") for n in stacks.json if n.endswith("-network")} - {environment}
    graph = Graph(environment)
    builder = _Builder(stacks, graph, environment, others)
    builder.network()
    builder.database()
    builder.api()
    builder.frontend()
    builder.bootstrap()
    builder.cicd()
    return graph


class _Builder:
    def __init__(self, stacks: _Stacks, graph: Graph, environment: str, others: set[str]) -> None:
        self.stacks = stacks
        self.graph = graph
        self.env = environment
        self.others = others
        self.vpc_cluster: tuple[str, ...] = ()
        # Subnet address -> the clusters (VPC, zone, subnet) a resource placed in it sits in.
        self.subnet_cluster: dict[str, tuple[str, ...]] = {}
        self.subnet_zone: dict[str, str] = {}
        self.subnet_tier: dict[str, str] = {}

    def _stack(self, tier: str) -> str:
        return f"{self.env}-{tier}"

    def _node(self, resource: _Resource, kind: str, label: str, tier: str, cluster: tuple[str, ...] = ()) -> str:
        self.graph.add(Node(resource.address, kind, label, tier, cluster))
        return resource.address

    def _spanning_cluster(self, subnets: list[_Resource], what: str) -> tuple[str, ...]:
        """One subnet: its own cluster; several zones: a frame in the VPC naming their tier and zones."""
        addresses = [s.address for s in subnets if s.address in self.subnet_cluster]
        if len(addresses) == 1:
            return self.subnet_cluster[addresses[0]]
        if not addresses:
            return self.vpc_cluster
        tiers = sorted({self.subnet_tier[a] for a in addresses})
        zones = sorted({self.subnet_zone[a] for a in addresses})
        return (*self.vpc_cluster, f"{what} · {'/'.join(tiers)} subnets in {', '.join(zones)}")

    # network ---------------------------------------------------------------------------------
    def network(self) -> None:
        stack = self._stack("network")
        for vpc in self.stacks.resources(stack, "aws_vpc"):
            nats = self.stacks.resources(stack, "aws_nat_gateway")
            subnets = self.stacks.resources(stack, "aws_subnet")
            zones = sorted({s.config.get("availability_zone", "") for s in subnets})
            policy = "none" if not nats else "single" if len(nats) == 1 else "per AZ" if len(nats) == len(zones) else str(len(nats))
            self.graph.fact("network", "NAT gateways", f"{policy} ({len(nats)})")
            self.graph.fact("network", "zones", str(len(zones)))
            vpc_name = vpc.config.get("tags", {}).get("Name", "")
            self.vpc_cluster = (f"VPC {vpc_name} {vpc.config.get('cidr_block', '')} · NAT: {policy}",)
            for gateway in self.stacks.resources(stack, "aws_internet_gateway"):
                self._node(gateway, "internet_gateway", "Internet gateway", "network", self.vpc_cluster)
            for subnet in subnets:
                zone = subnet.config.get("availability_zone", "?")
                tier = subnet.config.get("tags", {}).get("tier", "subnet")
                cluster: tuple[str, ...] = (*self.vpc_cluster, f"AZ {zone}", f"{tier} {subnet.config.get('cidr_block', '')}")
                self.subnet_cluster[subnet.address] = cluster
                self.subnet_zone[subnet.address] = zone
                self.subnet_tier[subnet.address] = tier
                self._node(subnet, f"subnet_{'public' if tier == 'public' else 'private'}",
                           f"{tier} subnet\n{subnet.config.get('cidr_block', '')}", "network", cluster)
            for nat in nats:
                placed = self.stacks.referenced(stack, nat.config.get("subnet_id"), "aws_subnet")
                cluster = self.subnet_cluster.get(placed[0].address, self.vpc_cluster) if placed else self.vpc_cluster
                self._node(nat, "nat_gateway", f"NAT gateway\n{nat.config.get('tags', {}).get('Name', '')}", "network", cluster)
                for gateway in self.stacks.resources(stack, "aws_internet_gateway"):
                    self.graph.connect(nat.address, gateway.address, "egress")
            endpoints = self.stacks.resources(stack, "aws_vpc_endpoint")
            if endpoints:
                # com.amazonaws.<region>.<service>: the service part is what a reader needs.
                services = sorted(str(e.config.get("service_name", "")).split(".", 3)[-1] for e in endpoints)
                # One box for all endpoints: six identical icons would say less than one list.
                spanned = [s for e in endpoints for s in self.stacks.referenced(stack, e.config.get("subnet_ids"), "aws_subnet")]
                self.graph.add(Node(f"{stack}/vpc_endpoints", "vpc_endpoint",
                                    "VPC endpoints\n" + ", ".join(services), "network",
                                    self._spanning_cluster(spanned, "endpoints") if spanned else self.vpc_cluster))

    # database --------------------------------------------------------------------------------
    def database(self) -> None:
        stack = self._stack("database")
        instances = self.stacks.resources(stack, "aws_db_instance")
        replicas = [i for i in instances if i.config.get("replicate_source_db")]
        self.graph.fact("database", "read replicas", str(len(replicas)))
        for instance in instances:
            config = instance.config
            groups = self.stacks.referenced(stack, config.get("db_subnet_group_name"), "aws_db_subnet_group")
            subnets = self.stacks.referenced(stack, groups[0].config.get("subnet_ids"), "aws_subnet") if groups else []
            zones = [self.subnet_zone.get(s.address) for s in subnets]
            engine = f"{config.get('engine', '')} {config.get('engine_version', '')}".strip()
            if config.get("replicate_source_db"):
                zone = config.get("availability_zone")
                placed = next((s for s in subnets if self.subnet_zone.get(s.address) == zone), None)
                cluster = self.subnet_cluster.get(placed.address, self.vpc_cluster) if placed else self.vpc_cluster
                self._node(instance, "rds_replica", f"read replica\n{_name(instance)}\n{config.get('instance_class', '')}",
                           "database", cluster)
                for source in self.stacks.referenced(stack, config.get("replicate_source_db"), "aws_db_instance"):
                    self.graph.connect(source.address, instance.address, "async replication")
                continue
            # RDS picks which of the subnet group's zones holds the primary; the first is drawn.
            cluster = self.subnet_cluster.get(subnets[0].address, self.vpc_cluster) if subnets else self.vpc_cluster
            multi_az = bool(config.get("multi_az"))
            self.graph.fact("database", "database", f"{config.get('instance_class', '')}{' Multi-AZ' if multi_az else ''}")
            self._node(instance, "rds_primary",
                       f"primary {_name(instance)}\n{engine} · {config.get('instance_class', '')}\n"
                       f"{'Multi-AZ' if multi_az else 'single-AZ'} · {len(replicas)} replica(s)",
                       "database", cluster)
            if multi_az and len(subnets) > 1:
                standby = Node(f"{instance.address}#standby", "rds_standby",
                               f"standby (Multi-AZ)\n{zones[1]}", "database",
                               self.subnet_cluster.get(subnets[1].address, self.vpc_cluster))
                self.graph.add(standby)
                self.graph.connect(instance.address, standby.id, "sync replication")
            if config.get("manage_master_user_password"):
                secret = Node(f"{instance.address}#master_secret", "secret",
                              "master password\n(RDS-managed secret)", "database")
                self.graph.add(secret)
                self.graph.connect(instance.address, secret.id, "rotates")

    # api -------------------------------------------------------------------------------------
    def api(self) -> None:
        stack = self._stack("api")
        for api in self.stacks.resources(stack, "aws_api_gateway_rest_api"):
            stages = [s for s in self.stacks.resources(stack, "aws_api_gateway_stage")
                      if api in self.stacks.referenced(stack, s.config.get("rest_api_id"), "aws_api_gateway_rest_api")]
            stage = stages[0].config if stages else {}
            cache = f"cache {stage.get('cache_cluster_size')} GiB" if stage.get("cache_cluster_enabled") else "cache off"
            self.graph.fact("api", "API cache", cache)
            waf = any(api in self.stacks.referenced(stack, a.config.get("resource_arn"), "aws_api_gateway_rest_api")
                      or any(s in self.stacks.referenced(stack, a.config.get("resource_arn"), "aws_api_gateway_stage")
                             for s in stages)
                      for a in self.stacks.resources(stack, "aws_wafv2_web_acl_association"))
            label = f"API Gateway (REST) {_name(api)}\nstage {stage.get('stage_name', '?')} · {cache}{' · WAF' if waf else ''}"
            self._node(api, "api_gateway", label, "api")
        for link in self.stacks.resources(stack, "aws_api_gateway_vpc_link"):
            self._node(link, "vpc_link", f"VPC link\n{_name(link)}", "api")
            for integration in self.stacks.resources(stack, "aws_api_gateway_integration"):
                if link in self.stacks.referenced(stack, integration.config.get("connection_id"), "aws_api_gateway_vpc_link"):
                    for api in self.stacks.referenced(stack, integration.config.get("rest_api_id"), "aws_api_gateway_rest_api"):
                        self.graph.connect(api.address, link.address)
        for lb in self.stacks.resources(stack, "aws_lb"):
            subnets = self.stacks.referenced(stack, lb.config.get("subnets"), "aws_subnet")
            scheme = "internal" if lb.config.get("internal") else "internet-facing"
            self._node(lb, "nlb" if lb.config.get("load_balancer_type") == "network" else "alb",
                       f"{scheme} {lb.config.get('load_balancer_type', '')} LB\n{_name(lb)}", "api",
                       self._spanning_cluster(subnets, "load balancer"))
            for link in self.stacks.resources(stack, "aws_api_gateway_vpc_link"):
                if lb in self.stacks.referenced(stack, link.config.get("target_arns"), "aws_lb"):
                    self.graph.connect(link.address, lb.address)
        scaling = {
            service.address: target.config
            for target in self.stacks.resources(stack, "aws_appautoscaling_target")
            for service in self.stacks.referenced(stack, target.config.get("resource_id"), "aws_ecs_service")
        }
        task_counts = []
        for service in self.stacks.resources(stack, "aws_ecs_service"):
            config = service.config
            network = config.get("network_configuration", {})
            subnets = self.stacks.referenced(stack, network.get("subnets"), "aws_subnet")
            limits = scaling.get(service.address)
            tasks = (f"tasks {limits.get('min_capacity')}–{limits.get('max_capacity')}" if limits
                     else f"tasks {config.get('desired_count', '?')}")
            task_counts.append(f"{_name(service)} {tasks.removeprefix('tasks ')}")
            providers = sorted({p.get("capacity_provider", "") for p in config.get("capacity_provider_strategy", [])})
            self._node(service, "ecs_service", f"ECS service {_name(service)}\n{tasks} · {'+'.join(providers) or 'ECS'}",
                       "api", self._spanning_cluster(subnets, "ECS Fargate"))
            self._service_edges(stack, service)
        if task_counts:
            self.graph.fact("api", "ECS tasks (min–max)", ", ".join(task_counts))
        for secret in self.stacks.resources(stack, "aws_secretsmanager_secret"):
            if not self.graph.nodes.get(secret.address):
                self._node(secret, "secret", f"secret\n{_name(secret)}", "api")

    def _allows(self, stack: str, source_groups: Any, groups: list[_Resource]) -> bool:
        """Whether an ingress rule on one of `groups` admits traffic from `source_groups`."""
        sources = {g.address for g in self.stacks.referenced(stack, source_groups, "aws_security_group")}
        targets = {g.address for g in groups}
        return any(
            {g.address for g in self.stacks.referenced(stack, rule.config.get("referenced_security_group_id"),
                                                       "aws_security_group")} & sources
            and {g.address for g in self.stacks.referenced(stack, rule.config.get("security_group_id"),
                                                           "aws_security_group")} & targets
            for rule in self.stacks.resources(stack, "aws_vpc_security_group_ingress_rule")
        )

    def _service_edges(self, stack: str, service: _Resource) -> None:
        config = service.config
        groups = self.stacks.referenced(stack, config.get("network_configuration", {}).get("security_groups"), "aws_security_group")
        # NLB -> service: the listener forwards to the target group the service registers in.
        for entry in config.get("load_balancer", []):
            for group in self.stacks.referenced(stack, entry.get("target_group_arn"), "aws_lb_target_group"):
                for listener in self.stacks.resources(stack, "aws_lb_listener"):
                    if group in self.stacks.referenced(stack, listener.config.get("default_action"), "aws_lb_target_group"):
                        for lb in self.stacks.referenced(stack, listener.config.get("load_balancer_arn"), "aws_lb"):
                            admitted = " (SG)" if self._allows(stack, lb.config.get("security_groups"), groups) else ""
                            port = f"{listener.config.get('protocol', '')} :{listener.config.get('port', '')}"
                            self.graph.connect(lb.address, service.address, port + admitted)
        # Service -> database: the security-group chain (an ingress rule on the database's group
        # naming the service's group as its source) is what lets the traffic through.
        for rule in self.stacks.resources(stack, "aws_vpc_security_group_ingress_rule"):
            sources = self.stacks.referenced(stack, rule.config.get("referenced_security_group_id"), "aws_security_group")
            if not any(s in groups for s in sources):
                continue
            for database_group in self.stacks.referenced(stack, rule.config.get("security_group_id"), "aws_security_group"):
                for instance in self.stacks.resources(database_group.stack, "aws_db_instance"):
                    if database_group in self.stacks.referenced(database_group.stack, instance.config.get("vpc_security_group_ids"), "aws_security_group"):
                        self.graph.connect(service.address, instance.address, f"SG → :{rule.config.get('from_port', '')}")
        # Secrets and images come from the task definition's container definitions.
        for task in self.stacks.referenced(stack, config.get("task_definition"), "aws_ecs_task_definition"):
            containers = task.config.get("container_definitions", "[]")
            for resource, attribute in self.stacks.references(stack, containers):
                if resource.type == "aws_secretsmanager_secret":
                    self._node(resource, "secret", f"secret\n{_name(resource)}", "api")
                    self.graph.connect(service.address, resource.address, "reads")
                elif resource.type == "aws_db_instance" and attribute.startswith("master_user_secret"):
                    self.graph.connect(service.address, f"{resource.address}#master_secret", "reads")
            images = re.findall(r'"image":\s*"([^"]+)"', containers if isinstance(containers, str) else json.dumps(containers))
            for image in images:
                repository = image.split("/", 1)[-1].rsplit(":", 1)[0]
                for stack_name in self.stacks.json:
                    for repo in self.stacks.resources(stack_name, "aws_ecr_repository"):
                        if repo.config.get("name") == repository:
                            self._node(repo, "ecr", f"ECR {repository}", "cicd", ("shared-cicd",))
                            self.graph.connect(repo.address, service.address, "image")

    # frontend --------------------------------------------------------------------------------
    def frontend(self) -> None:
        stack = self._stack("frontend")
        for distribution in self.stacks.resources(stack, "aws_cloudfront_distribution"):
            config = distribution.config
            waf = " · WAF" if config.get("web_acl_id") else ""
            aliases = ", ".join(config.get("aliases", [])) or "*.cloudfront.net"
            self._node(distribution, "cloudfront", f"CloudFront\n{aliases}\n{config.get('price_class', '')}{waf}", "frontend")
            for origin in config.get("origin", []):
                oac = " (OAC)" if origin.get("origin_access_control_id") else ""
                for bucket in self.stacks.referenced(stack, origin.get("domain_name"), "aws_s3_bucket"):
                    self._node(bucket, "s3", f"S3 site bucket\n{_name(bucket)}", "frontend")
                    self.graph.connect(distribution.address, bucket.address, f"origin{oac}")
        # A and AAAA records of one name are one arrow in the picture.
        for record in self.stacks.resources(stack, "aws_route53_record") + self.stacks.resources(self._stack("api"), "aws_route53_record"):
            alias = record.config.get("alias")
            if not alias:
                continue
            name = str(record.config.get("name"))
            for named, attribute in self.stacks.references(record.stack, name):
                name = str(named.config.get(attribute, name))
            node_id = f"{record.stack}/route53/{name}"
            tier = record.stack.removeprefix(f"{self.env}-")
            self.graph.add(Node(node_id, "route53", f"Route 53\n{name}", tier))
            for target, _ in self.stacks.references(record.stack, alias.get("name")):
                if target.type == "aws_api_gateway_domain_name":
                    for mapping in self.stacks.resources(record.stack, "aws_api_gateway_base_path_mapping"):
                        if target in self.stacks.referenced(record.stack, mapping.config.get("domain_name"), "aws_api_gateway_domain_name"):
                            for api in self.stacks.referenced(record.stack, mapping.config.get("api_id"), "aws_api_gateway_rest_api"):
                                self.graph.connect(node_id, api.address, "alias")
                else:
                    self.graph.connect(node_id, target.address, "alias")

    # shared stacks ---------------------------------------------------------------------------
    def bootstrap(self) -> None:
        for bucket in self.stacks.resources("bootstrap", "aws_s3_bucket"):
            self._node(bucket, "s3", f"Terraform state\n{_name(bucket)}", "bootstrap", ("bootstrap (state backend)",))
        for table in self.stacks.resources("bootstrap", "aws_dynamodb_table"):
            self._node(table, "dynamodb", f"state lock table\n{_name(table)}", "bootstrap", ("bootstrap (state backend)",))
            for bucket in self.stacks.resources("bootstrap", "aws_s3_bucket"):
                self.graph.connect(table.address, bucket.address, "locks")

    def cicd(self) -> None:
        """ECR repositories and the pipeline roles of this environment (not the other environments')."""
        stack = "shared-cicd"
        for repo in self.stacks.resources(stack, "aws_ecr_repository"):
            self._node(repo, "ecr", f"ECR {_name(repo)}", "cicd", ("shared-cicd",))
        roles = [r for r in self.stacks.resources(stack, "aws_iam_role") if r.path.split("/")[1:2] == ["Pipeline"]]
        clusters = {
            str(cluster.config.get("name")): cluster
            for cluster in self.stacks.resources(self._stack("api"), "aws_ecs_cluster")
        }
        for role in roles:
            # A deploy role of another environment has that environment in its construct path.
            if {s.lower() for s in role.path.split("/")} & self.others:
                continue
            self._node(role, "iam_role", f"pipeline role\n{_name(role)}", "cicd", ("shared-cicd",))
            for policy in self.stacks.resources(stack, "aws_iam_role_policy"):
                if role not in self.stacks.referenced(stack, policy.config.get("role"), "aws_iam_role"):
                    continue
                document = self.stacks.policy_document(stack, policy.config.get("policy"))
                for resource, _ in self.stacks.references(stack, document):
                    if resource.type == "aws_ecr_repository":
                        self.graph.connect(role.address, resource.address, "pushes")
                    elif resource.type == "aws_iam_role":
                        self.graph.connect(role.address, resource.address, "assumes")
                # Deploy roles name the environment's ECS cluster in literal ARNs (the shared stack
                # cannot reference an environment's stack), so they are matched by cluster name.
                for name in clusters:
                    if any(f"service/{name}/" in text for text in _strings(document)):
                        for service in self.stacks.resources(self._stack("api"), "aws_ecs_service"):
                            self.graph.connect(role.address, service.address, "deploys")
