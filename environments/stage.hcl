# Staging: production's shape at a smaller size, for integration and UAT.

account_id = "333333333333"
region     = "eu-west-1"
production = false

backend {
  # Both locks while teams move from the DynamoDB table to S3 native locking.
  locking = "both"
}

network {
  cidr                    = "10.20.0.0/16"
  az_count                = 3
  nat_gateways            = "per_az"
  flow_log_retention_days = 90
}

dns {
  zone_name = "stage.webapp.example.com"
}
