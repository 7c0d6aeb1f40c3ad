"""Availability Zones each commercial region offers to a new account.

Used to reject an `az_count` the region cannot give before anything is
synthesized. At apply time the network stack also checks the account's real
zones (`aws_availability_zones`) with a precondition, so an account that sees
fewer zones than this table fails the plan instead of doubling up subnets.
"""

AZ_COUNT_BY_REGION: dict[str, int] = {
    "af-south-1": 3,
    "ap-east-1": 3,
    "ap-northeast-1": 3,
    "ap-northeast-2": 4,
    "ap-northeast-3": 3,
    "ap-south-1": 3,
    "ap-south-2": 3,
    "ap-southeast-1": 3,
    "ap-southeast-2": 3,
    "ap-southeast-3": 3,
    "ap-southeast-4": 3,
    "ap-southeast-5": 3,
    "ap-southeast-7": 3,
    "ca-central-1": 3,
    "ca-west-1": 3,
    "eu-central-1": 3,
    "eu-central-2": 3,
    "eu-north-1": 3,
    "eu-south-1": 3,
    "eu-south-2": 3,
    "eu-west-1": 3,
    "eu-west-2": 3,
    "eu-west-3": 3,
    "il-central-1": 3,
    "me-central-1": 3,
    "me-south-1": 3,
    "mx-central-1": 3,
    "sa-east-1": 3,
    "us-east-1": 6,
    "us-east-2": 3,
    "us-west-1": 2,
    "us-west-2": 4,
}


# Regions CloudFront does not deliver standard logs to: the opt-in regions. The CloudFront
# developer guide ("Choose an Amazon S3 bucket for standard logs") lists Cape Town, Hong Kong,
# Hyderabad, Jakarta, Melbourne, Calgary, Milan, Spain, Zurich, Tel Aviv, Bahrain and UAE;
# Malaysia, Thailand and Mexico are opt-in regions opened since, held to the same rule here.
# CreateDistribution fails ("You don't have permission to access the S3 bucket for CloudFront
# logs") when the frontend's log bucket is in one of them.
CLOUDFRONT_LOGS_UNSUPPORTED_REGIONS = frozenset({
    "af-south-1", "ap-east-1", "ap-south-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5",
    "ap-southeast-7", "ca-west-1", "eu-central-2", "eu-south-1", "eu-south-2", "il-central-1",
    "me-central-1", "me-south-1", "mx-central-1",
})


# Regions Origin Shield can run in: those with a CloudFront regional edge cache (CloudFront
# developer guide, "Choosing the AWS Region for Origin Shield"). CreateDistribution refuses any
# other `OriginShieldRegion`; for an origin elsewhere that guide names the nearest of these
# (us-west-1 -> us-west-2, ca-central-1 -> us-east-1, eu-west-3 and eu-north-1 -> eu-west-2, ...).
ORIGIN_SHIELD_REGIONS = frozenset({
    "us-east-1", "us-east-2", "us-west-2", "ap-south-1", "ap-northeast-1", "ap-northeast-2",
    "ap-southeast-1", "ap-southeast-2", "eu-central-1", "eu-west-1", "eu-west-2", "sa-east-1",
})
