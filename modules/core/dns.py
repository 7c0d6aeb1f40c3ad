"""The environment's public hosted zone, as the frontend and API tiers look it up."""

from __future__ import annotations

from cdktf import Postcondition, TerraformResourceLifecycle
from constructs import Construct

from modules import aws
from modules.core.settings import DnsConfig


def public_zone(scope: Construct, construct_id: str, dns: DnsConfig) -> aws.data_aws_route53_zone.DataAwsRoute53Zone:
    """`aws_route53_zone` for `dns`: by id when `zone_id` is set, else the public zone by name.

    Looked up by id, the zone is checked after it is read: it must be `zone_name` and public.
    A mistyped or stale id would otherwise put the site's certificate validation and alias
    records, and the API's, into some other zone of the account (the plan shows only ids), or
    into a private zone where ACM's validation never resolves and the apply waits for it.
    """
    if dns.zone_id is None:
        return aws.data_aws_route53_zone.DataAwsRoute53Zone(
            scope, construct_id, name=dns.zone_name, private_zone=False)
    zone = 'trimsuffix(lower(self.name), ".")'
    return aws.data_aws_route53_zone.DataAwsRoute53Zone(
        scope, construct_id, zone_id=dns.zone_id,
        lifecycle=TerraformResourceLifecycle(postcondition=[Postcondition(
            condition=f'${{{zone} == "{dns.zone_name}" && !self.private_zone}}',
            error_message=f"dns.zone_id {dns.zone_id} must be the public hosted zone {dns.zone_name} "
                          "(environment file's dns block).",
        )]),
    )
