# Staging: production's shape at a smaller size, for integration and UAT.

account_id = "333333333333"
region     = "eu-west-1"
production = false

# Terraform runs as this role here: every provider assumes it (the deploy role may, and
# shared-cicd reaches stage through it).
assume_role_arn = "arn:aws:iam::333333333333:role/webapp-terraform-stage"

backend {
  # Both locks while teams move from the DynamoDB table to S3 native locking.
  locking = "both"
}

network {
  cidr                    = "10.20.0.0/16"
  az_count                = 3
  nat_gateways            = "per_az"
  flow_log_retention_days = 90
  # The VPC, subnets, NAT addresses and the flow-log trail survive `terraform destroy`.
  prevent_destroy         = true
}

# PostgreSQL in production's shape at a smaller size: Multi-AZ, one read replica in the
# third zone, protected from deletion; changes wait for the maintenance window.
database {
  instance_class            = "db.t4g.large"
  multi_az                  = true
  replica_count             = 1
  allocated_storage_gib     = 50
  max_allocated_storage_gib = 200
  backup_retention_days     = 7
  prevent_destroy           = true
  apply_immediately         = false
  log_retention_days        = 90
  connections_alarm_count   = 700
  alarm_topic_name          = "database-alarms"
  alarm_email_addresses     = ["database-oncall@webapp.example.com"]
}

dns {
  zone_name = "stage.webapp.example.com"
}

# The site at stage.webapp.example.com (the dns zone's apex); WAF on, as in prod, so
# rule false positives show up in UAT before they reach users.
frontend {
  price_class                        = "PriceClass_100"
  noncurrent_version_expiration_days = 30
  log_retention_days                 = 90
  waf_enabled                        = true
  waf_rate_limit_per_5_minutes       = 2000
  prevent_destroy                    = true
}

# The API in production's shape at a smaller size: regular Fargate only, deletion
# protection, no cache (prod measures the cache; stage keeps the cost down).
api {
  log_retention_days            = 90
  prevent_destroy               = true
  throttling_burst_limit        = 200
  throttling_rate_limit         = 100
  waf_rate_limit_per_5_minutes  = 2000
  alarm_email_addresses         = ["api-oncall@webapp.example.com"]

  secrets = ["payments-api-key"]

  service "service1" {
    path_prefix      = "service1"
    container_port   = 8080
    image_repository = "webapp/service1"
    image_tag        = "1.0.0"
    # Its own PostgreSQL login (IAM authentication): reads and writes the application's tables.
    database_access  = "read_write"
    cpu_units        = 512
    memory_mib       = 1024
    desired_count    = 2
    min_count        = 2
    max_count        = 4
    authorization    = "NONE"
  }

  service "service2" {
    path_prefix      = "service2"
    container_port   = 8081
    image_repository = "webapp/service2"
    image_tag        = "1.0.0"
    # Its own PostgreSQL login (IAM authentication): reads and writes the application's tables.
    database_access  = "read_write"
    cpu_architecture = "ARM64"
    desired_count    = 2
    min_count        = 2
    max_count        = 4
    required_headers = ["X-Request-Id"]
    secrets          = { PAYMENTS_API_KEY = "payments-api-key" }
    # It calls the payments provider's API with that key: HTTPS to the internet, through
    # the NAT gateways (network.nat_gateways must not be "none").
    internet_egress_https = true
  }

  migrations {
    image_repository = "webapp/migrations"
    image_tag        = "10.20.1"
  }
}

# How the pipeline reaches stage (shared-cicd): the infrastructure job's main branch deploys
# after its stage approval; Terraform runs as assume_role_arn above; the monitoring workspace
# is kept from `terraform destroy`.
cicd {
  prevent_destroy = true
}
