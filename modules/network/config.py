"""Typed configuration of the network tier (the `network { ... }` block)."""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

from modules.core.errors import ConfigError, shown
from modules.core.schema import check, check_range
from modules.core.values import LOG_RETENTION_DAYS

# Subnets are numbered by a fixed slot per tier and AZ (tier * 4 + az), so adding
# an AZ later never renumbers, and so never replaces, an existing subnet.
MAX_AZS = 4
SUBNET_TIERS = ("public", "private", "isolated")
SLOTS = MAX_AZS * len(SUBNET_TIERS)



class NatGateways(enum.Enum):
    """How private subnets reach the internet (costly by choice)."""

    NONE = "none"  # VPC endpoints only; no egress to the internet
    SINGLE = "single"  # one NAT in the first AZ for every private subnet
    PER_AZ = "per_az"  # one NAT per AZ: survives the loss of an AZ


@dataclass(frozen=True, kw_only=True, slots=True)
class NetworkConfig:
    """The VPC: address space, zones, egress and flow logs."""

    cidr: str
    az_count: int = 2
    availability_zones: tuple[str, ...] | None = None
    nat_gateways: NatGateways = NatGateways.SINGLE
    subnet_prefix_length: int | None = None
    flow_log_retention_days: int = 90
    flow_log_traffic_type: str = "ALL"
    # prevent_destroy on the VPC, its subnets, the NAT addresses (third parties may allow-list
    # them), and the flow-log group and its key (the audit trail). Required with production.
    prevent_destroy: bool = True

    def __post_init__(self) -> None:
        try:
            network = ipaddress.IPv4Network(self.cidr, strict=True)
        except ValueError as error:
            raise ConfigError(
                "cidr", f'must be an IPv4 network address like "10.20.0.0/16", got {shown(self.cidr)} ({error})'
            ) from None
        check(16 <= network.prefixlen <= 24, "cidr", self.cidr, "a /16 to /24 network (AWS VPC limits)")
        check(network.is_private, "cidr", self.cidr, "a private (RFC 1918) range")
        check_range("az_count", self.az_count, 2, MAX_AZS)
        if self.availability_zones is not None:
            check(len(self.availability_zones) == self.az_count, "availability_zones", self.availability_zones,
                  f"a list of az_count ({self.az_count}) zone names")
            check(len(set(self.availability_zones)) == len(self.availability_zones), "availability_zones",
                  self.availability_zones, "distinct zone names")
        prefix = self.subnet_prefix_length
        if prefix is not None:
            low = network.prefixlen + 4
            check(low <= prefix <= 28, "subnet_prefix_length", prefix,
                  f"{low}..28 (room for {SLOTS} subnet slots in {self.cidr}; AWS subnets are at most /28)")
        check(self.flow_log_retention_days in LOG_RETENTION_DAYS, "flow_log_retention_days",
              self.flow_log_retention_days, f"one of CloudWatch's retention periods {LOG_RETENTION_DAYS}")
        check(self.flow_log_traffic_type in ("ALL", "ACCEPT", "REJECT"), "flow_log_traffic_type",
              self.flow_log_traffic_type, "'ALL', 'ACCEPT' or 'REJECT'")

    def zone_names(self, region: str) -> tuple[str, ...]:
        """The zones subnets go in: `availability_zones`, or the region's first `az_count` letters.

        Names are pinned, not read from whatever the account lists at plan time, so a
        zone AWS adds (or one that becomes impaired) never shifts a subnet to another zone.
        """
        if self.availability_zones is not None:
            return self.availability_zones
        return tuple(f"{region}{letter}" for letter in "abcdef"[: self.az_count])

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.cidr)

    def subnet_cidrs(self, tier: str) -> tuple[str, ...]:
        """The CIDR of each AZ's subnet in `tier` (public, private, isolated)."""
        prefix = self.subnet_prefix_length or self.network.prefixlen + 4
        slots = list(self.network.subnets(new_prefix=prefix))
        base = SUBNET_TIERS.index(tier) * MAX_AZS
        return tuple(str(slots[base + az]) for az in range(self.az_count))
