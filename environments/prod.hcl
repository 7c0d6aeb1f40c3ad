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
  # The VPC, subnets, NAT addresses and the flow-log trail survive `terraform destroy`.
  prevent_destroy         = true
}

# PostgreSQL: Multi-AZ (primary and standby in the first two zones), one read replica in
# the third, deletion protection and prevent_destroy; changes wait for the maintenance window.
database {
  instance_class            = "db.r6g.large"
  multi_az                  = true
  replica_count             = 1
  allocated_storage_gib     = 100
  max_allocated_storage_gib = 500
  backup_retention_days     = 7
  prevent_destroy           = true
  apply_immediately         = false
  log_retention_days        = 365
  connections_alarm_count   = 1400
  alarm_topic_name          = "database-alarms"
  alarm_email_addresses     = ["database-oncall@webapp.example.com"]
  # Automated backups are also copied to Frankfurt (kept backup_retention_days): restore there
  # if eu-west-1 is lost (modules/database/README.md, "Restoring in the second region").
  backup_replication_region = "eu-central-1"
}

# The public hosted zone (already in the prod account) the site and API names live in.
dns {
  zone_name = "webapp.example.com"
}

# The site at webapp.example.com (the dns zone's apex), served from every edge location.
frontend {
  price_class                        = "PriceClass_All"
  origin_shield_region               = "eu-west-1"
  noncurrent_version_expiration_days = 90
  log_retention_days                 = 365
  waf_enabled                        = true
  waf_rate_limit_per_5_minutes       = 2000
  # Cache hit rate on the dashboard (billed per distribution).
  additional_metrics                 = true
  prevent_destroy                    = true
}

# The API at api.webapp.example.com: regular Fargate only, more tasks, a 0.5 GiB cache
# for GET responses, logs kept a year, deletion protection.
api {
  log_retention_days            = 365
  prevent_destroy               = true
  throttling_burst_limit        = 1000
  throttling_rate_limit         = 500
  cache_cluster_size_gib        = 0.5
  cache_ttl_seconds             = 300
  waf_rate_limit_per_5_minutes  = 5000
  alarm_email_addresses         = ["api-oncall@webapp.example.com"]

  secrets = ["payments-api-key"]

  service "service1" {
    path_prefix      = "service1"
    container_port   = 8080
    image_repository = "webapp/service1"
    image_tag        = "1.0.0"
    # Its own PostgreSQL login (IAM authentication): reads and writes the application's tables.
    database_access  = "read_write"
    cpu_units        = 1024
    memory_mib       = 2048
    desired_count    = 3
    min_count        = 3
    max_count        = 12
    authorization    = "NONE"
    # GET /service1/items?page=2 is cached apart from ?page=1.
    cache_key_query_parameters = ["page"]
    # 10 requests per second per task; beside CPU and memory, the largest wanted count wins.
    requests_per_task_target = 600
    # Working hours start with six tasks; nights fall back to the usual minimum.
    schedule "working-hours" {
      cron      = "cron(0 7 ? * MON-FRI *)"
      timezone  = "Europe/Berlin"
      min_count = 6
      max_count = 12
    }
    schedule "nights" {
      cron      = "cron(0 20 ? * * *)"
      timezone  = "Europe/Berlin"
      min_count = 3
      max_count = 12
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
    cpu_units        = 512
    memory_mib       = 1024
    desired_count    = 2
    min_count        = 2
    max_count        = 8
    required_headers = ["X-Request-Id"]
    secrets          = { PAYMENTS_API_KEY = "payments-api-key" }
    # It calls the payments provider's API with that key: HTTPS to the internet, through
    # the NAT gateways (network.nat_gateways must not be "none").
    internet_egress_https = true
    # Its responses depend on query parameters nobody listed: never cached.
    caching = false
  }

  migrations {
    image_repository = "webapp/migrations"
    image_tag        = "10.20.1"
  }
}

# How the pipeline reaches prod (shared-cicd): only the infrastructure job's main branch
# (cicd.jenkins_oidc.deploy_subjects in shared.hcl) assumes prod's deploy role, after the prod
# approval of the infrastructure pipeline; pull requests plan prod with its plan role.
# Terraform runs as assume_role_arn above. The monitoring workspace is kept from `terraform destroy`.
cicd {
  prevent_destroy = true
}
