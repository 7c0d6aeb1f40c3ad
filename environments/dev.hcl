# Development: one account of its own, smallest footprint.

account_id = "222222222222"
region     = "eu-west-1"
production = false

network {
  cidr                    = "10.10.0.0/16"
  az_count                = 2
  nat_gateways            = "single"
  flow_log_retention_days = 30
}
