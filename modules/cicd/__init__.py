"""The CI/CD tier: the `shared-cicd` stack (modules/cicd/README.md)."""
