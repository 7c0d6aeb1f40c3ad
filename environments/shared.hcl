# Settings of the whole organisation, shared by every environment.

project = "webapp"

# Production is declared here, once: an environment in one of these accounts must say
# `production = true` and meet the production rules (deletion protection, Multi-AZ, ...).
# Turning production off for such an environment means removing its account here, in the
# same reviewed change. Any other account holds one environment only (shared_accounts
# lists those meant to hold several).
production_accounts = ["444444444444"]

# Where every stack keeps its Terraform state: created once by the `bootstrap`
# stack, then used by the S3 backend of every other stack.
state {
  account_id = "111111111111"
  region     = "eu-west-1"
  # The state bucket is webapp-tfstate-<account_id> unless `bucket` names it (S3 names are
  # global: the account id keeps anyone else from holding the name first).
  lock_table = "webapp-tfstate-locks"

  # Old state versions are kept this long for recovery.
  noncurrent_version_retention_days = 90
}

# The account and region of the ECR registry every environment pulls its images from
# (the CI/CD tier pushes there). Execution roles may pull only their own repositories.
registry {
  account_id = "111111111111"
  region     = "eu-west-1"
}

# CI/CD and monitoring (the shared-cicd stack, in the registry account; see
# modules/cicd/README.md). Image repositories come from the environments' services.
cicd {
  # Jenkins holds no AWS keys: its "OpenID Connect Provider" plugin gives each build an id
  # token whose `sub` is the job's URL (the plugin's default claim template), and each role
  # trusts the subjects below (modules/cicd/README.md: Who may do what).
  jenkins_oidc {
    issuer_url = "https://jenkins.webapp.example.com/oidc"
    audience   = "sts.amazonaws.com"
    # The infrastructure job's main branch, and only it, deploys (every environment).
    deploy_subjects = ["https://jenkins.webapp.example.com/job/webapp-infra/job/main/"]
    # Its pull requests and main plan every environment, read-only.
    plan_subjects = [
      "https://jenkins.webapp.example.com/job/webapp-infra/job/PR-*",
      "https://jenkins.webapp.example.com/job/webapp-infra/job/main/",
    ]
    # The application jobs push images; infrastructure main tags what it promotes.
    push_subjects = [
      "https://jenkins.webapp.example.com/job/webapp-service1/job/main/",
      "https://jenkins.webapp.example.com/job/webapp-infra/job/main/",
    ]
  }

  untagged_image_expiry_days = 7
  release_images_kept        = 100
  # Continuous scanning (Amazon Inspector, billed per image): off; Trivy in the pipeline
  # and ECR's scan on push stay on.
  enhanced_scanning = false

  # The "REPORT" e-mail (a critical Trivy finding) goes to the report topic, every monitoring
  # alert to the alert topic in its workspace's account; these addresses subscribe to all of
  # them, and each topic mails its own confirmation link.
  report_topic_name      = "pipeline-reports"
  report_email_addresses = ["platform-team@webapp.example.com"]

  # One Prometheus workspace per environment, in that environment's account.
  prometheus_workspaces            = "per_environment"
  # The workspaces' own logs (rule evaluation and alert delivery errors): small, kept a year.
  monitoring_log_retention_days    = 365
  server_error_alert_percent       = 5
  server_error_alert_after_seconds = 300

  grafana {
    authentication_providers = ["AWS_SSO"]
  }
}
