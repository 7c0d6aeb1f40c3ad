"""Draw a `Graph` with the `diagrams` library (AWS icons) over Graphviz's `dot`."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from diagrams import Cluster, Diagram, Edge
from diagrams import Node as DiagramNode
from diagrams.aws.compute import ECR, ElasticContainerServiceService
from diagrams.aws.database import Dynamodb, RDSPostgresqlInstance
from diagrams.aws.network import (
    NLB,
    APIGateway,
    CloudFront,
    Endpoint,
    InternetGateway,
    NATGateway,
    PrivateSubnet,
    PublicSubnet,
    Route53,
    VPCRouter,
)
from diagrams.aws.security import IAMRole, SecretsManager
from diagrams.aws.storage import S3

from diagrams_gen.graph import Graph, Node

INSTALL_HINT = (
    "Graphviz's `dot` is not on PATH; the pictures are drawn with it. Install it with "
    "`apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS) or your "
    "distribution's `graphviz` package."
)

_ICONS: dict[str, type[DiagramNode]] = {
    "internet_gateway": InternetGateway,
    "subnet_public": PublicSubnet,
    "subnet_private": PrivateSubnet,
    "nat_gateway": NATGateway,
    "vpc_endpoint": Endpoint,
    "rds_primary": RDSPostgresqlInstance,
    "rds_standby": RDSPostgresqlInstance,
    "rds_replica": RDSPostgresqlInstance,
    "secret": SecretsManager,
    "api_gateway": APIGateway,
    "vpc_link": VPCRouter,
    "nlb": NLB,
    "alb": NLB,
    "ecs_service": ElasticContainerServiceService,
    "ecr": ECR,
    "cloudfront": CloudFront,
    "s3": S3,
    "route53": Route53,
    "dynamodb": Dynamodb,
    "iam_role": IAMRole,
}

# Arrows that carry requests are drawn solid and dark; the rest (replication, images, roles) dashed.
_REQUEST_LABELS = ("alias", "origin", "TCP", "SG", "")


def dot_available() -> bool:
    return shutil.which("dot") is not None


def render(graph: Graph, title: str, output: Path, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    """Write `output.<format>` for each format; returns the files written."""
    if not dot_available():
        raise RuntimeError(INSTALL_HINT)
    output.parent.mkdir(parents=True, exist_ok=True)
    visible = _visible(graph)
    facts = " · ".join(f"{key}: {value}" for key, value in graph.facts.items())
    drawn: dict[str, DiagramNode] = {}
    with Diagram(
        f"{title}\n{facts}" if facts else title,
        filename=str(output),
        outformat=list(formats),
        show=False,
        direction="LR",
        # Orthogonal and "curved" edges place their labels far from the arrow on graphs this
        # size; Graphviz's own splines keep each label beside its edge.
        graph_attr={"splines": "spline", "fontsize": "20", "pad": "0.4", "nodesep": "0.5", "ranksep": "1.0", "labelloc": "t"},
        node_attr={"fontsize": "12"},
        edge_attr={"fontsize": "10"},
    ):
        _draw_clusters(visible, (), drawn)
        for edge in graph.edges:
            if edge.source in drawn and edge.target in drawn:
                request = edge.label.startswith(_REQUEST_LABELS[:-1]) or not edge.label
                style = {"color": "#1f4e79"} if request else {"color": "#7f7f7f", "style": "dashed"}
                drawn[edge.source] >> Edge(label=edge.label, **style) >> drawn[edge.target]
    written = [output.with_suffix(f".{fmt}") for fmt in formats]
    for path in written:
        if path.suffix == ".svg":
            _inline_icons(path)
    return written


def _inline_icons(svg: Path) -> None:
    """Graphviz links each icon by its absolute path in the virtualenv; embed them instead,
    so the SVG shows its icons on any machine (and in a browser on a code host)."""
    text = svg.read_text(encoding="utf-8")
    cache: dict[str, str] = {}

    def embed(match: re.Match[str]) -> str:
        path = match.group(1)
        if path not in cache:
            cache[path] = "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")
        return f'xlink:href="{cache[path]}"'

    svg.write_text(re.sub(r'xlink:href="(/[^"]+\.png)"', embed, text), encoding="utf-8")


def _visible(graph: Graph) -> list[Node]:
    """Every node but subnet placeholders whose frame already holds something else."""
    occupied = {node.cluster for node in graph.nodes.values() if not node.kind.startswith("subnet_")}
    return [n for n in graph.nodes.values() if not (n.kind.startswith("subnet_") and n.cluster in occupied)]


def _draw_clusters(nodes: list[Node], prefix: tuple[str, ...], drawn: dict[str, DiagramNode]) -> None:
    depth = len(prefix)
    for node in nodes:
        if node.cluster == prefix:
            # A stable Graphviz id (not diagrams' random one): regenerating an unchanged
            # environment rewrites byte-identical files, so the committed pictures diff cleanly.
            stable_id = hashlib.sha256(node.id.encode()).hexdigest()[:32]
            drawn[node.id] = _ICONS.get(node.kind, DiagramNode)(node.label, nodeid=stable_id)
    children = sorted({n.cluster[depth] for n in nodes if len(n.cluster) > depth and n.cluster[:depth] == prefix})
    for child in children:
        inner = [n for n in nodes if n.cluster[: depth + 1] == (*prefix, child)]
        with Cluster(child):
            _draw_clusters(inner, (*prefix, child), drawn)
