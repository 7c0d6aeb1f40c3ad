"""Architecture pictures: the graph `python -m diagrams_gen` draws, checked against the JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from diagrams_gen.__main__ import main
from diagrams_gen.graph import Graph, build
from tests.conftest import require
from tests.harness.synth import Synthesized

ENVIRONMENTS = ("dev", "stage", "prod")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def graphs(synth: Synthesized) -> dict[str, Graph]:
    return {env: build(synth.outdir, env) for env in ENVIRONMENTS}


def _labels(graph: Graph, kind: str) -> str:
    return "\n".join(node.label for node in graph.of_kind(kind))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_ecs_service_appears_with_its_task_counts(synth: Synthesized, graphs: dict[str, Graph], env: str) -> None:
    stack = synth.stack(f"{env}-api")
    services = stack.resources("aws_ecs_service")
    assert services
    assert len(graphs[env].of_kind("ecs_service")) == len(services)
    labels = _labels(graphs[env], "ecs_service")
    for target in stack.resources("aws_appautoscaling_target").values():
        assert f"tasks {target['min_capacity']}–{target['max_capacity']}" in labels
    for service in services.values():
        assert service["name"] in labels


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_rds_instance_appears_in_its_zone(synth: Synthesized, graphs: dict[str, Graph], env: str) -> None:
    instances = synth.stack(f"{env}-database").resources("aws_db_instance").values()
    graph = graphs[env]
    drawn = graph.of_kind("rds_primary") + graph.of_kind("rds_replica")
    assert sorted(i["identifier"] for i in instances) == sorted(
        next(word for word in n.label.split() if word.startswith("webapp-")) for n in drawn
    )
    for instance in instances:
        if "availability_zone" in instance:
            replica = next(n for n in drawn if instance["identifier"] in n.label)
            assert f"AZ {instance['availability_zone']}" in replica.cluster


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_cloudfront_reads_the_site_bucket_through_oac(graphs: dict[str, Graph], env: str) -> None:
    graph = graphs[env]
    edges = [e for e in graph.edges
             if graph.nodes[e.source].kind == "cloudfront" and graph.nodes[e.target].kind == "s3"]
    assert [e.label for e in edges] == ["origin (OAC)"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_requests_flow_from_the_gateway_to_the_database(graphs: dict[str, Graph], env: str) -> None:
    graph = graphs[env]
    for source, target in [("api_gateway", "vpc_link"), ("vpc_link", "nlb"), ("nlb", "ecs_service"),
                           ("ecs_service", "rds_primary"), ("ecs_service", "secret"), ("ecr", "ecs_service"),
                           ("iam_role", "ecr"), ("dynamodb", "s3")]:
        assert graph.has_edge(source, target), f"{env}: no {source} -> {target} edge"
    # Each service is reached from the NLB on its own listener port.
    for service in graph.of_kind("ecs_service"):
        # ...and only because an ingress rule on the service's group admits the NLB's group.
        assert any(e.target == service.id and e.label.startswith("TCP :") and e.label.endswith("(SG)")
                   for e in graph.edges)


def test_a_new_service_appears_without_a_code_change(synth: Synthesized, tmp_path: Path) -> None:
    """A service is found from the JSON alone: a copied `aws_ecs_service` is drawn with its own counts."""
    shutil.copytree(synth.outdir, tmp_path / "cdktf.out")
    path = tmp_path / "cdktf.out" / "stacks" / "dev-api" / "cdk.tf.json"
    stack = json.loads(path.read_text())
    services = stack["resource"]["aws_ecs_service"]
    service = next(iter(services.values()))
    services["Api_Reports_Service"] = {**service, "name": "webapp-dev-reports"}
    stack["resource"]["aws_appautoscaling_target"]["Api_Reports_ScalingTarget"] = {
        "min_capacity": 4, "max_capacity": 9,
        "resource_id": "service/${aws_ecs_cluster.x.name}/${aws_ecs_service.Api_Reports_Service.name}",
    }
    path.write_text(json.dumps(stack))
    graph = build(tmp_path / "cdktf.out", "dev")
    assert len(graph.of_kind("ecs_service")) == len(services)
    reports = next(n for n in graph.of_kind("ecs_service") if "webapp-dev-reports" in n.label)
    assert "tasks 4–9" in reports.label
    assert any(e.target == reports.id and graph.nodes[e.source].kind == "nlb" for e in graph.edges)


def test_dev_and_prod_differ_where_their_data_differ(synth: Synthesized, graphs: dict[str, Graph]) -> None:
    dev, prod = graphs["dev"], graphs["prod"]
    for env, graph in graphs.items():
        replicas = [i for i in synth.stack(f"{env}-database").resources("aws_db_instance").values()
                    if "replicate_source_db" in i]
        assert len(graph.of_kind("rds_replica")) == len(replicas)
        assert graph.facts["read replicas"] == str(len(replicas))
        nats = synth.stack(f"{env}-network").resources("aws_nat_gateway")
        assert len(graph.of_kind("nat_gateway")) == len(nats)
    assert len(dev.of_kind("rds_replica")) < len(prod.of_kind("rds_replica"))
    assert len(dev.of_kind("nat_gateway")) < len(prod.of_kind("nat_gateway"))
    assert dev.facts["NAT gateways"] != prod.facts["NAT gateways"]
    assert dev.facts["database"] != prod.facts["database"]
    # Multi-AZ is prod's: only it gets a standby in a second zone.
    assert prod.of_kind("rds_standby") and not dev.of_kind("rds_standby")


def test_an_environment_sees_only_its_own_deploy_role(graphs: dict[str, Graph]) -> None:
    for env, graph in graphs.items():
        roles = _labels(graph, "iam_role")
        assert f"webapp-{env}-deploy" in roles
        assert not any(f"webapp-{other}-deploy" in roles for other in ENVIRONMENTS if other != env)


def test_tier_view_keeps_the_neighbours_its_edges_reach(graphs: dict[str, Graph]) -> None:
    view = graphs["prod"].tier_view("database")
    tiers = {node.tier for node in view.nodes.values()}
    assert tiers == {"database", "api"}, "the database picture shows the services that reach it"
    assert view.of_kind("rds_primary") and view.of_kind("ecs_service")


def test_writes_a_png_and_svg_per_environment_and_tier(synth: Synthesized, tmp_path: Path) -> None:
    require(shutil.which("dot") is not None, "Graphviz `dot` is not on PATH (apt-get install graphviz)")
    assert main(["--out", str(tmp_path), "--synth-dir", str(synth.outdir), "--env", "dev"]) == 0
    expected = ["dev", *(f"dev-{tier}" for tier in ("bootstrap", "network", "database", "api", "frontend", "cicd"))]
    for name in expected:
        png = (tmp_path / f"{name}.png").read_bytes()
        assert png.startswith(PNG_SIGNATURE) and len(png) > 1000, name
        assert "<svg" in (tmp_path / f"{name}.svg").read_text(), name


def test_pictures_are_self_contained_and_reproducible(synth: Synthesized, tmp_path: Path) -> None:
    """Committed pictures: icons embedded (no venv paths), and the same input draws the same bytes."""
    require(shutil.which("dot") is not None, "Graphviz `dot` is not on PATH (apt-get install graphviz)")
    for run in ("first", "second"):
        assert main(["--out", str(tmp_path / run), "--synth-dir", str(synth.outdir), "--env", "dev"]) == 0
    svg = (tmp_path / "first" / "dev-frontend.svg").read_text()
    assert 'xlink:href="data:image/png;base64,' in svg and 'xlink:href="/' not in svg
    for path in sorted((tmp_path / "first").iterdir()):
        assert path.read_bytes() == (tmp_path / "second" / path.name).read_bytes(), path.name


def test_rejects_running_without_graphviz(synth: Synthesized, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["--out", str(tmp_path / "out"), "--synth-dir", str(synth.outdir)]) == 2
    error = capsys.readouterr().err
    assert "apt-get install graphviz" in error and "brew install graphviz" in error
    assert not (tmp_path / "out").exists()


def test_rejects_an_unknown_environment(synth: Synthesized, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require(shutil.which("dot") is not None, "Graphviz `dot` is not on PATH (apt-get install graphviz)")
    assert main(["--out", str(tmp_path), "--synth-dir", str(synth.outdir), "--env", "qa"]) == 2
    assert "no stacks for environment 'qa'" in capsys.readouterr().err
