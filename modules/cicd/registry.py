"""The ECR registry: one immutable, scanned, KMS-encrypted repository per image the environments run."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cdktf import TerraformOutput, TerraformResourceLifecycle
from constructs import Construct

from modules import aws, contract
from modules.cicd.config import CicdConfig
from modules.core import kms, policy
from modules.core.naming import pascal

# Images, and the key they are encrypted with, must never go with a stray `terraform destroy`.
KEEP = TerraformResourceLifecycle(prevent_destroy=True)

# What pulling an image takes (GetAuthorizationToken is granted by the puller's own policy).
PULL_ACTIONS = ("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")


@dataclass(frozen=True)
class Puller:
    """A task execution role in an environment's account, named, not referenced: it is
    created later, by that environment's API stack, and may live in another account."""

    account_id: str
    role_name: str


def repository_id(name: str) -> str:
    """`webapp/service-1` -> `WebappService1`: a repository's construct id, from its name."""
    return pascal(name)


class Registry(Construct):
    """Creates the organisation's ECR repositories (in the registry account).

    - a KMS key (rotation on, `prevent_destroy`) that encrypts every repository;
    - per repository: tags IMMUTABLE (a tag is one image, forever: what dev tested
      is what prod runs), scan on push, KMS encryption, `prevent_destroy`;
    - a lifecycle policy: images `promote` tagged `release-<env>-<tag>` are counted apart
      (the newest `promoted_images_kept` kept), untagged images expire after
      `untagged_image_expiry_days`, only the newest `release_images_kept` other tagged images
      are kept;
    - a repository policy that lets exactly the task execution roles that run the
      image pull it, from any account: the environment account is the principal and
      the role ARN a condition, so the policy is valid before those roles exist;
    - with `enhanced_scanning`, the registry's continuous (Inspector) scanning of the
      project's repositories.

    Attributes: `repositories` (name -> resource), `repository_arns`, `key_arn`.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: CicdConfig, project: str,
                 pullers: Mapping[str, Sequence[Puller]], partition: str) -> None:
        super().__init__(scope, construct_id)
        ids: dict[str, str] = {}
        for name in pullers:
            other = ids.setdefault(repository_id(name), name)
            if other != name:
                raise ValueError(f"repositories {other!r} and {name!r} map to one construct id; rename one")
        identity = aws.data_aws_caller_identity.DataAwsCallerIdentity(self, "Identity")
        key_policy = policy.document(self, "KeyPolicy", policy.account_root_admin(identity.account_id, partition))
        self.key = kms.key(self, "Key", description=f"Encrypts {project} container images",
                           policy_json=key_policy.json, alias_prefix=project, alias="ecr", lifecycle=KEEP)
        self.key_arn = self.key.arn

        # An image matched by a rule is never expired by a rule of lower priority: promoted images
        # (`delivery promote` tags them release-<env>-<tag>) are counted apart, so a burst of
        # builds cannot expire the digest prod runs.
        lifecycle_policy = json.dumps({"rules": [
            {
                "rulePriority": 1,
                "description": f"Keep the newest {config.promoted_images_kept} promoted images "
                               f"({contract.PROMOTED_TAG_PREFIX}<env>-<tag>)",
                "selection": {"tagStatus": "tagged", "tagPatternList": [f"{contract.PROMOTED_TAG_PREFIX}*"],
                              "countType": "imageCountMoreThan", "countNumber": config.promoted_images_kept},
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": f"Expire untagged images after {config.untagged_image_expiry_days} days",
                "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
                              "countNumber": config.untagged_image_expiry_days},
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 3,
                "description": f"Keep the newest {config.release_images_kept} tagged images",
                "selection": {"tagStatus": "tagged", "tagPatternList": ["*"], "countType": "imageCountMoreThan",
                              "countNumber": config.release_images_kept},
                "action": {"type": "expire"},
            },
        ]}, sort_keys=True)

        self.repositories: dict[str, Any] = {}
        for name in sorted(pullers):
            self.repositories[name] = self._repository(name, ids, pullers[name], lifecycle_policy, partition)
        self.repository_arns = [r.arn for r in self.repositories.values()]

        if config.enhanced_scanning:
            module = aws.ecr_registry_scanning_configuration
            module.EcrRegistryScanningConfiguration(
                self, "EnhancedScanning", scan_type="ENHANCED",
                rule=[module.EcrRegistryScanningConfigurationRule(
                    scan_frequency="CONTINUOUS_SCAN",
                    repository_filter=[
                        module.EcrRegistryScanningConfigurationRuleRepositoryFilter(filter=name, filter_type="WILDCARD")
                        for name in sorted(pullers)
                    ],
                )],
            )

    def _repository(self, name: str, ids: Mapping[str, str], pullers: Sequence[Puller], lifecycle_policy: str,
                    partition: str) -> aws.ecr_repository.EcrRepository:
        construct_id = repository_id(name)
        module = aws.ecr_repository
        repository = module.EcrRepository(
            self, construct_id, name=name, image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=module.EcrRepositoryImageScanningConfiguration(scan_on_push=True),
            encryption_configuration=[module.EcrRepositoryEncryptionConfiguration(
                encryption_type="KMS", kms_key=self.key.arn
            )],
            force_delete=False, lifecycle=KEEP,
        )
        aws.ecr_lifecycle_policy.EcrLifecyclePolicy(
            self, f"{construct_id}Lifecycle", repository=repository.name, policy=lifecycle_policy
        )
        if pullers:
            accounts = sorted({p.account_id for p in pullers})
            roles = sorted({f"arn:{partition}:iam::{p.account_id}:role/{p.role_name}" for p in pullers})
            document = policy.document(
                self, f"{construct_id}PolicyDocument",
                policy.statement(
                    sid="ExecutionRolesPull",
                    actions=PULL_ACTIONS,
                    principals=[{"type": "AWS", "identifiers": [f"arn:{partition}:iam::{a}:root" for a in accounts]}],
                    conditions=[{"test": "ArnEquals", "variable": "aws:PrincipalArn", "values": roles}],
                ),
            )
            aws.ecr_repository_policy.EcrRepositoryPolicy(
                self, f"{construct_id}Policy", repository=repository.name, policy=document.json
            )
        TerraformOutput(self, f"{construct_id}Url", value=repository.repository_url,
                        description=f"ECR repository {name}")
        return repository
