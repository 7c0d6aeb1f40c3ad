"""The emulator's Route 53 fix (tests/harness/moto_server.py), in process: a zone created with a VPC,
as the aws provider creates a private zone (VPC given, no HostedZoneConfig.PrivateZone), is private."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws
from moto.route53.responses import Route53

from tests.harness.moto_server import make_zones_created_with_a_vpc_private


def _zone_created_like_the_provider_does() -> dict:
    ec2 = boto3.client("ec2", region_name="eu-west-1")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    route53 = boto3.client("route53", region_name="eu-west-1")
    zone = route53.create_hosted_zone(Name="database.webapp-dev.internal", CallerReference="x",
                                      VPC={"VPCRegion": "eu-west-1", "VPCId": vpc})["HostedZone"]
    described = route53.get_hosted_zone(Id=zone["Id"])
    return {"private": described["HostedZone"]["Config"]["PrivateZone"],
            "vpcs": [v["VPCId"] for v in described.get("VPCs", [])], "vpc": vpc}


@pytest.fixture
def patched():
    original = Route53.create_hosted_zone
    make_zones_created_with_a_vpc_private()
    yield
    Route53.create_hosted_zone = original


def test_moto_alone_makes_a_zone_created_with_a_vpc_public():
    """Why the fix exists; if this fails, moto has fixed it and the fix can go."""
    with mock_aws():
        zone = _zone_created_like_the_provider_does()
    assert zone["private"] is False and zone["vpcs"] == []


def test_a_zone_created_with_a_vpc_is_private_to_it(patched):
    with mock_aws():
        zone = _zone_created_like_the_provider_does()
    assert zone["private"] is True and zone["vpcs"] == [zone["vpc"]]
