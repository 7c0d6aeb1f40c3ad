# Production.

account_id = "444444444444"
region     = "eu-west-1"
production = true

# The pipeline assumes this role to apply; a dev plan can never reach this account
# because every provider pins `allowed_account_ids` to account_id.
assume_role_arn = "arn:aws:iam::444444444444:role/webapp-terraform-prod"

network {
  cidr                    = "10.30.0.0/16"
  az_count                = 3
  nat_gateways            = "per_az"
  flow_log_retention_days = 365
}

# The public hosted zone (already in the prod account) the site and API names live in.
dns {
  zone_name = "webapp.example.com"
}
