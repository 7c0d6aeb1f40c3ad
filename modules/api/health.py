"""A service's health: what probes it and the one metric everything reads it from.

The design: a service is healthy when its health path answers 200 within a grace period.
The probe is the service's NLB target group health check: an HTTP GET of `health_check_path`
from the NLB's nodes in the VPC's private subnets, healthy on `health_check_codes` within
`health_check_timeout_seconds`, whatever the body. The ADOT collector image the tasks run
(aws-otel-collector v0.40.0) has no HTTP check receiver: its receivers are awsecscontainermetrics,
awscontainerinsight, awsxray, statsd, prometheus, kafka, jaeger, zipkin, otlp and filelog
(aws-observability/aws-otel-collector, pkg/defaultcomponents/defaults.go); scraping the health
path with the prometheus receiver marks a healthy JSON body as a failed scrape.

The result is published by Elastic Load Balancing as `AWS/NetworkELB` `UnHealthyHostCount`
per target group (dimensions `LoadBalancer` and `TargetGroup`, each the ARN suffix; Network
Load Balancer user guide, "CloudWatch metrics for your Network Load Balancer"). The service's
alarm, `delivery verify` and a canary judge all read it through `HEALTH_METRIC`:
the service is healthy while its Maximum over a minute is 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class HealthMetric:
    """Where a service's probe result is published, and how it is read."""

    namespace: str
    name: str
    statistic: str
    period_seconds: int
    healthy_at_most: float

    def dimensions(self, load_balancer_arn_suffix: str, target_group_arn_suffix: str) -> dict[str, str]:
        return {"LoadBalancer": load_balancer_arn_suffix, "TargetGroup": target_group_arn_suffix}

    def reference(self, load_balancer_arn_suffix: str, target_group_arn_suffix: str) -> dict[str, Any]:
        """The metric of one service, as the api stack's `HealthMetrics` output states it."""
        return {"namespace": self.namespace, "metric_name": self.name, "statistic": self.statistic,
                "period": self.period_seconds, "healthy_at_most": self.healthy_at_most,
                "dimensions": self.dimensions(load_balancer_arn_suffix, target_group_arn_suffix)}

    def healthy(self, value: float) -> bool:
        return value <= self.healthy_at_most


HEALTH_METRIC = HealthMetric(namespace="AWS/NetworkELB", name="UnHealthyHostCount", statistic="Maximum",
                             period_seconds=60, healthy_at_most=0)

# The probe's cadence (NLB HTTP health checks: interval 5..300 s, timeout 2..120 s and below
# the interval, thresholds 2..10).
PROBE_INTERVAL_SECONDS = 10
PROBE_HEALTHY_THRESHOLD = 3
PROBE_UNHEALTHY_THRESHOLD = 3
