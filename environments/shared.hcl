# Settings of the whole organisation, shared by every environment.

project = "webapp"

# Where every stack keeps its Terraform state: created once by the `bootstrap`
# stack, then used by the S3 backend of every other stack.
state {
  account_id = "111111111111"
  region     = "eu-west-1"
  bucket     = "webapp-tfstate-111111111111"
  lock_table = "webapp-tfstate-locks"

  # Old state versions are kept this long for recovery.
  noncurrent_version_retention_days = 90
}
