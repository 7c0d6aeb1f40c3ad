"""`python -m checks.cost`: the monthly estimate from the synthesized stacks (README: "What it costs").

Expected amounts are hand counts: resource counts from the environment files and the design, prices
as literals with the source each was read from (checks/cost/prices.toml records the same sources).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.cost import FIXED, FREE, USAGE, CostError, estimate, load_prices, total, unclassified
from checks.cost.__main__ import main
from checks.rules.stack import Stack
from tests.harness.synth import Synthesized

HOURS = 730  # hours a month, the convention of AWS's pricing calculator


def _stacks(synth: Synthesized) -> list[Stack]:
    return [Stack(name, stack) for name, stack in synth.stacks.items()]


def test_every_resource_type_in_the_stacks_has_one_place(synth: Synthesized) -> None:
    types = {kind for stack in _stacks(synth) for kind, _, _ in stack.all_resources()}
    assert unclassified(types) == [], "add these to FIXED, USAGE or FREE in checks/cost/__init__.py"
    assert not (set(FIXED) & set(USAGE)) and not (set(FIXED) & set(FREE)) and not (set(USAGE) & set(FREE))


def test_rejects_a_resource_type_with_no_place() -> None:
    stack = Stack("dev-extra", {"resource": {"aws_elasticache_cluster": {"Cache": {"node_type": "cache.t4g.micro"}}}})
    with pytest.raises(CostError, match="aws_elasticache_cluster"):
        estimate([stack])


# Prices the table does not have, reviewed: each is listed in prices.toml with why (`missing`), and the
# estimate shows its line with '?'. A new fixed-cost item without a price fails the test below until it
# is priced or added here on purpose.
KNOWN_MISSING = {
    ("rds_postgres_instance_hour:db.t4g.medium", "eu-west-1"),
    ("rds_postgres_instance_hour:db.t4g.large", "eu-west-1"),
    ("rds_postgres_instance_hour:db.r6g.large", "eu-west-1"),
    ("apigw_cache_hour:0.5", "eu-west-1"),
    ("cloudfront_additional_metrics_month", "global"),
}


def test_every_fixed_cost_resource_has_a_price_entry(synth: Synthesized) -> None:
    result = estimate(_stacks(synth))
    fixed = [line for line in result.lines if not line.usage]
    assert fixed
    without_entry = sorted({(line.item, line.region, line.address) for line in fixed if line.price is None})
    assert without_entry == [], "add these (item, region) to checks/cost/prices.toml"
    unpriced = {(line.price.item, line.price.region) for line in fixed if line.price and line.price.usd is None}
    assert unpriced == KNOWN_MISSING


def test_dev_fixed_total_matches_a_hand_count(synth: Synthesized) -> None:
    dev = [line for line in estimate(_stacks(synth)).fixed("dev")]
    count = {}
    for line in dev:
        count[line.address.split(".")[0]] = count.get(line.address.split(".")[0], 0) + 1
    # environments/dev.hcl: nat_gateways = "single", az_count = 2; the design's six interface endpoints
    # (ECR API and Docker, Logs, Secrets Manager, STS, Prometheus) in each AZ; one NLB; one WAF web ACL with
    # three rules (two managed groups and a rate limit); 9 KMS keys (network 1, database 2, frontend 1,
    # api 3, and dev's two monitoring keys in shared-cicd); 2 secrets; 10 alarm metrics (two 5xx alarms of
    # two metrics each, two unhealthy-host alarms, four database alarms); the database's private zone; the
    # API's dashboard.
    assert count["aws_nat_gateway"] == 1 and count["aws_eip"] == 1 and count["aws_vpc_endpoint"] == 6
    hand_count = (
        1 * HOURS * 0.048          # NAT gateway-hour, EU-NatGateway-Hours, AmazonEC2 eu-west-1 offer file
        + 1 * HOURS * 0.005        # public IPv4 address-hour (VPC pricing)
        + 6 * 2 * HOURS * 0.01     # interface endpoint per AZ-hour (PrivateLink pricing; eu-west-1 bills)
        + 1 * HOURS * 0.0252       # NLB-hour (inferred from eu-west-1's ALB hour)
        + 20 * 0.127               # gp3 GiB-month, EU-RDS:GP3-Storage; allocated_storage_gib = 20
        + 5.0 + 3 * 1.0            # WAF web ACL and rules (AWS WAF pricing, same in every region)
        + 9 * 1.0                  # KMS key-month (AWS KMS pricing)
        + 2 * 0.40                 # Secrets Manager secret-month
        + 10 * 0.10                # standard-resolution alarm metric-month (CloudWatch pricing)
        + 1 * 0.50                 # Route 53 hosted zone-month
        + 1 * 3.0                  # CloudWatch dashboard-month (the API's dashboard)
    )
    amount, unpriced = total(dev)
    assert amount == pytest.approx(hand_count) == pytest.approx(169.526)
    # The db.t4g.medium instance has no price in the table: shown, not summed.
    assert unpriced == 1


def test_multi_az_and_replicas_double_what_they_copy(synth: Synthesized) -> None:
    prod = {(line.address, line.item): line for line in estimate(_stacks(synth)).fixed("prod")}
    primary = prod[("aws_db_instance.Database_Primary_1B138CD9", "rds_postgres_instance_hour:db.r6g.large")]
    replica = prod[("aws_db_instance.Database_Replica0_47152A02", "rds_postgres_instance_hour:db.r6g.large")]
    # environments/prod.hcl: multi_az = true (primary and standby billed), replica_count = 1 (Single-AZ).
    assert primary.quantity == 2 * HOURS and replica.quantity == 1 * HOURS
    storage = prod[("aws_db_instance.Database_Primary_1B138CD9", "rds_storage_gib_month:gp3")]
    replica_storage = prod[("aws_db_instance.Database_Replica0_47152A02", "rds_storage_gib_month:gp3")]
    # allocated_storage_gib = 100, on the primary and its standby; the replica has its own copy.
    assert storage.monthly == pytest.approx(2 * 100 * 0.127)
    assert replica_storage.monthly == pytest.approx(100 * 0.127)
    nat = [line for line in prod.values() if line.item == "nat_gateway_hour"]
    assert len(nat) == 3  # nat_gateways = "per_az", az_count = 3


def test_fargate_is_counted_at_the_configured_tasks(synth: Synthesized) -> None:
    usage = estimate(_stacks(synth)).usage("prod")
    service1 = [line for line in usage if "Service1" in line.address and line.item.startswith("fargate_")]
    # environments/prod.hcl service1: desired_count = 3, cpu_units = 1024, memory_mib = 2048, x86;
    # EU-Fargate-vCPU-Hours:perCPU $0.04048 and EU-Fargate-GB-Hours $0.004445 (AWS pricing API).
    assert sum(line.monthly or 0 for line in service1) == pytest.approx(3 * HOURS * (1 * 0.04048 + 2 * 0.004445))


def test_cli_prints_each_environment_and_says_it_is_an_estimate(synth: Synthesized,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(synth.outdir), "--assume", "api_requests_million=2", "--sources"]) == 0
    out = capsys.readouterr().out
    assert "ESTIMATE, not a quote" in out and "2026-12-06" in out
    for environment in ("dev", "stage", "prod", "shared"):
        assert f"\n{environment}: fixed $" in out
    assert "2 million requests (assumed) x $3.5" in out
    assert "network.nat_gateways" in out and "database.multi_az" in out
    assert "Prices used (basis, source):" in out


@pytest.mark.parametrize("args, message", [
    (["--assume", "requests=5"], "unknown volume 'requests'"),
    (["--assume", "nat_gb=lots"], "'lots' is not a number"),
    (["--environment", "qa"], "--environment qa: not in the stacks"),
])
def test_rejects_bad_arguments(synth: Synthesized, capsys: pytest.CaptureFixture[str], args: list[str],
                               message: str) -> None:
    assert main([str(synth.outdir), *args]) == 2
    assert message in capsys.readouterr().err


def test_rejects_a_missing_synth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path)]) == 2
    assert "run `make synth` first" in capsys.readouterr().err


@pytest.mark.parametrize("entry, message", [
    ('item = "x"\nregion = "r"\nunit = "u"\nsource = "s"\n', "give either usd"),
    ('item = "x"\nregion = "r"\nunit = "u"\nsource = "s"\nusd = 1.0\n', "needs its basis"),
    ('item = "x"\nregion = "r"\nunit = "u"\nsource = "s"\nmissing = "m"\ncolour = "red"\n', "colour"),
])
def test_price_table_rejects_an_entry_without_a_price_or_reason(tmp_path: Path, entry: str, message: str) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(f'date = "2026-12-06"\nhours_per_month = 730\n[[price]]\n{entry}')
    with pytest.raises(ValueError, match=message):
        load_prices(path)


def test_price_table_rejects_a_duplicate(tmp_path: Path) -> None:
    entry = '[[price]]\nitem = "x"\nregion = "r"\nunit = "u"\nsource = "s"\nmissing = "m"\n'
    path = tmp_path / "prices.toml"
    path.write_text(f'date = "2026-12-06"\nhours_per_month = 730\n{entry}{entry}')
    with pytest.raises(ValueError, match="listed twice"):
        load_prices(path)


def test_shipped_price_table_is_dated_and_sourced() -> None:
    table = load_prices()
    assert table.date == "2026-12-06" and table.hours_per_month == HOURS
    assert all(price.source.startswith("https://") for price in table.prices.values())
