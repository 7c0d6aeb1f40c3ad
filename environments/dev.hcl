# Development: one account of its own, smallest footprint.

account_id = "222222222222"
region     = "eu-west-1"
production = false

# Terraform runs as this role here (every provider assumes it; the deploy role may, and
# shared-cicd reaches dev through it). The infrastructure job's main branch deploys dev
# (cicd.jenkins_oidc in shared.hcl); the monitoring workspace may be destroyed.
assume_role_arn = "arn:aws:iam::222222222222:role/webapp-terraform-dev"

network {
  cidr                    = "10.10.0.0/16"
  az_count                = 2
  nat_gateways            = "single"
  flow_log_retention_days = 30
  # Dev may be destroyed and rebuilt: nothing of it is kept from `terraform destroy`.
  prevent_destroy         = false
}

# PostgreSQL: one small instance in one zone and no replicas. Dev's database may be
# destroyed and rebuilt (no deletion protection, no final snapshot); changes apply at once.
database {
  instance_class            = "db.t4g.medium"
  multi_az                  = false
  replica_count             = 0
  allocated_storage_gib     = 20
  max_allocated_storage_gib = 50
  backup_retention_days     = 7
  prevent_destroy           = false
  skip_final_snapshot       = true
  apply_immediately         = true
  log_retention_days        = 30
  alarm_topic_name          = "database-alarms"
}

# The static site: no dns block, so CloudFront's own *.cloudfront.net name and certificate.
frontend {
  price_class                        = "PriceClass_100"
  noncurrent_version_expiration_days = 7
  log_retention_days                 = 30
  waf_enabled                        = false
  # Dev's buckets may go with `terraform destroy` (they still refuse while they hold objects).
  prevent_destroy = false
}

# The API: two services behind API Gateway. Dev runs mostly on Fargate Spot, keeps logs
# a month, has no cache and may be destroyed (no deletion protection).
api {
  fargate_weight                = 1
  fargate_base                  = 0
  fargate_spot_weight           = 3
  log_retention_days            = 30
  prevent_destroy               = false
  throttling_burst_limit        = 50
  throttling_rate_limit         = 20
  logging_level                 = "INFO"
  waf_rate_limit_per_5_minutes  = 1000

  # Secrets Manager secrets this stack creates; their values are set out of band.
  secrets = ["payments-api-key"]

  service "service1" {
    path_prefix      = "service1"
    container_port   = 8080
    image_repository = "webapp/service1"
    image_tag        = "1.0.0"
    # Its own PostgreSQL login (IAM authentication): reads and writes the application's tables.
    database_access  = "read_write"
    desired_count    = 1
    min_count        = 1
    max_count        = 2
    # Public routes: the service checks the caller's token itself.
    authorization = "NONE"
    environment   = { LOG_LEVEL = "debug" }
    # Scale out past 300 requests per task per minute (beside CPU and memory: the largest count wins).
    requests_per_task_target = 300
    # Nights and weekends: at most one task.
    schedule "working-hours" {
      cron      = "cron(0 7 ? * MON-FRI *)"
      timezone  = "Europe/Berlin"
      min_count = 1
      max_count = 2
    }
    schedule "nights" {
      cron      = "cron(0 19 ? * MON-FRI *)"
      timezone  = "Europe/Berlin"
      min_count = 1
      max_count = 1
    }
  }

  service "service2" {
    path_prefix      = "service2"
    container_port   = 8081
    image_repository = "webapp/service2"
    image_tag        = "1.0.0"
    # Its own PostgreSQL login (IAM authentication): reads and writes the application's tables.
    database_access  = "read_write"
    cpu_architecture = "ARM64"
    desired_count    = 1
    min_count        = 1
    max_count        = 2
    required_headers = ["X-Request-Id"]
    environment      = { LOG_LEVEL = "debug" }
    secrets          = { PAYMENTS_API_KEY = "payments-api-key" }
    # It calls the payments provider's API with that key: HTTPS to the internet, through
    # the NAT gateways (network.nat_gateways must not be "none").
    internet_egress_https = true
  }

  # Flyway: an image built FROM flyway/flyway with the SQL scripts, in the registry.
  migrations {
    image_repository = "webapp/migrations"
    image_tag        = "10.20.1"
  }
}

# The pipeline's reach into dev: its monitoring workspace may be destroyed with it.
cicd {
  prevent_destroy = false
}
