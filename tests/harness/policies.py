"""Synthesized policies as IAM JSON with concrete values, for the evaluator (checks/iam.py).

A stack's policies are `aws_iam_policy_document` data sources whose strings hold Terraform
references (`${aws_s3_bucket.Site.arn}`, `${data.aws_caller_identity.Identity.account_id}`, a
cross-stack `${data.terraform_remote_state...outputs...}`). `Policies` resolves each reference to the
example value AWS would give it: account and region from the provider the resource uses, names from
the resource's own configuration, ARNs in each service's documented format, ids that Terraform only
learns at apply time as stable made-up examples (`EXAMPLE<logical id>`). Then a document reads as
IAM stores it: `Statement` with `Sid`, `Effect`, `Action`, `Resource`, `Principal`, `Condition`.

    policies = Policies(synth.stacks)
    bucket_policy = policies.bucket_policy("dev-frontend", "Frontend_SiteBucket_3AEEE2AC")
    site_arn = policies.value("dev-frontend", "aws_s3_bucket.Frontend_SiteBucket_3AEEE2AC.arn")
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REFERENCE = re.compile(r"\$\{([^{}]+)\}")
CROSS_STACK = re.compile(r"^data\.terraform_remote_state\.cross-stack-reference-input-(?P<stack>[a-z0-9-]+)"
                         r"\.outputs\.cross-stack-output-(?P<type>aws_[a-z0-9_]+?)(?P<name>[A-Z][A-Za-z0-9_]+_[0-9A-F]{8})"
                         r"(?P<attribute>[a-z_]+)$")


class UnresolvedReference(LookupError):
    pass


class Policies:
    """Every stack's policy documents and the resources they name, with references resolved."""

    def __init__(self, stacks: Mapping[str, Mapping[str, Any]]) -> None:
        self.stacks = stacks

    # ------------------------------------------------------------ values

    def _provider(self, stack: str, config: Mapping[str, Any]) -> Mapping[str, Any]:
        providers = self.stacks[stack]["provider"]["aws"]
        alias = str(config.get("provider", "aws")).removeprefix("aws").removeprefix(".") or None
        (found,) = [p for p in providers if p.get("alias") == alias]
        return found

    def account(self, stack: str, config: Mapping[str, Any] | None = None) -> str:
        return str(self._provider(stack, config or {})["allowed_account_ids"][0])

    def region(self, stack: str, config: Mapping[str, Any] | None = None) -> str:
        return str(self._provider(stack, config or {})["region"])

    def _config(self, stack: str, kind: str, resource_type: str, name: str) -> Mapping[str, Any]:
        try:
            return self.stacks[stack][kind][resource_type][name]
        except KeyError as missing:
            raise UnresolvedReference(f"{stack}: no {kind} {resource_type}.{name}") from missing

    def value(self, stack: str, reference: str) -> str:
        """`aws_s3_bucket.Site.arn` (no `${}`) in `stack` -> its example value."""
        match = CROSS_STACK.match(reference)
        if match:
            return self.value(match["stack"], f"{match['type']}.{match['name']}.{match['attribute']}")
        parts = reference.split(".")
        if parts[0] == "data":
            _, data_type, name, *attribute = parts
            config = self._config(stack, "data", data_type, name)
            return self._data_value(stack, data_type, name, config, ".".join(attribute))
        resource_type, name, attribute = parts[0], parts[1], ".".join(parts[2:])
        config = self._config(stack, "resource", resource_type, name)
        return self._resource_value(stack, resource_type, name, config, attribute)

    def _data_value(self, stack: str, data_type: str, name: str, config: Mapping[str, Any], attribute: str) -> str:
        if data_type == "aws_caller_identity" and attribute == "account_id":
            return self.account(stack, config)
        if data_type == "aws_partition" and attribute == "partition":
            return "aws"
        if data_type == "aws_region" and attribute in ("name", "region"):
            return self.region(stack, config)
        if data_type == "aws_ssm_parameter" and attribute == "value":
            return f"EXAMPLE-value-of-{self.resolve(stack, str(config['name']))}"
        raise UnresolvedReference(f"{stack}: no example value for data.{data_type}.{name}.{attribute}")

    def _resource_value(self, stack: str, resource_type: str, name: str, config: Mapping[str, Any],
                        attribute: str) -> str:
        account, region = self.account(stack, config), self.region(stack, config)

        def field(key: str) -> str:
            return self.resolve(stack, str(config[key]))

        example_id = f"EXAMPLE{name.rsplit('_', 1)[-1]}"
        arns = {
            "aws_s3_bucket": lambda: f"arn:aws:s3:::{field('bucket')}",
            "aws_kms_key": lambda: f"arn:aws:kms:{region}:{account}:key/{example_id}",
            "aws_cloudfront_distribution": lambda: f"arn:aws:cloudfront::{account}:distribution/{example_id}",
            "aws_cloudwatch_log_group": lambda: f"arn:aws:logs:{region}:{account}:log-group:{field('name')}",
            "aws_dynamodb_table": lambda: f"arn:aws:dynamodb:{region}:{account}:table/{field('name')}",
            "aws_ecr_repository": lambda: f"arn:aws:ecr:{region}:{account}:repository/{field('name')}",
            # IAM identifiers: arn:aws:iam::<account>:oidc-provider/<url without https://>.
            "aws_iam_openid_connect_provider": lambda: f"arn:aws:iam::{account}:oidc-provider/"
                                                       f"{field('url').removeprefix('https://')}",
            "aws_iam_role": lambda: f"arn:aws:iam::{account}:role/{config.get('path', '/').lstrip('/')}{field('name')}",
            "aws_prometheus_workspace": lambda: f"arn:aws:aps:{region}:{account}:workspace/ws-{example_id}",
            "aws_secretsmanager_secret": lambda: f"arn:aws:secretsmanager:{region}:{account}:secret:{field('name')}-AbCdEf",
            "aws_sns_topic": lambda: f"arn:aws:sns:{region}:{account}:{field('name')}",
        }
        if attribute == "arn" and resource_type in arns:
            return arns[resource_type]()
        if resource_type == "aws_s3_bucket" and attribute in ("id", "bucket"):
            return field("bucket")
        if resource_type == "aws_db_instance" and attribute == "resource_id":
            return f"db-{example_id}"  # a DbiResourceId: db- and 26 upper-case letters and digits
        if attribute == "name" and "name" in config:
            return field("name")
        if attribute in ("id", "key_id") and resource_type in ("aws_kms_key", "aws_cloudfront_distribution"):
            return example_id
        raise UnresolvedReference(f"{stack}: no example value for {resource_type}.{name}.{attribute}")

    def resolve(self, stack: str, text: str) -> str:
        return REFERENCE.sub(lambda m: self.value(stack, m.group(1)), text)

    # ------------------------------------------------------------ documents

    def document(self, stack: str, data_name: str) -> dict[str, Any]:
        """The `aws_iam_policy_document` `data_name` as IAM JSON, references resolved."""
        config = self._config(stack, "data", "aws_iam_policy_document", data_name)
        return {"Version": "2012-10-17",
                "Statement": [self._statement(stack, s) for s in config.get("statement", [])]}

    def _statement(self, stack: str, block: Mapping[str, Any]) -> dict[str, Any]:
        def strings(values: Any) -> list[str]:
            return [self.resolve(stack, str(v)) for v in values]

        statement: dict[str, Any] = {"Sid": block.get("sid", ""), "Effect": block.get("effect", "Allow")}
        for key, element in (("actions", "Action"), ("not_actions", "NotAction"), ("resources", "Resource"),
                             ("not_resources", "NotResource")):
            if block.get(key):
                statement[element] = strings(block[key])
        for key, element in (("principals", "Principal"), ("not_principals", "NotPrincipal")):
            if block.get(key):
                principals: dict[str, list[str]] = {}
                for principal in block[key]:
                    principals.setdefault(principal["type"], []).extend(strings(principal["identifiers"]))
                # The provider renders type "*" with identifiers ["*"] as `"Principal": "*"`.
                statement[element] = "*" if principals == {"*": ["*"]} else principals
        if block.get("condition"):
            condition: dict[str, dict[str, list[str]]] = {}
            for c in block["condition"]:
                condition.setdefault(c["test"], {}).setdefault(c["variable"], []).extend(strings(c["values"]))
            statement["Condition"] = condition
        return statement

    def referenced_document(self, stack: str, reference: str) -> dict[str, Any]:
        """`${data.aws_iam_policy_document.X.json}` (a resource's `policy`) -> that document."""
        match = re.fullmatch(r"\$\{data\.aws_iam_policy_document\.([^.]+)\.json\}", reference)
        if not match:
            raise UnresolvedReference(f"{stack}: {reference!r} is not a policy document's json")
        return self.document(stack, match.group(1))

    def bucket_policy(self, stack: str, bucket: str) -> dict[str, Any]:
        """The policy of `aws_s3_bucket.<bucket>` (its `aws_s3_bucket_policy`)."""
        wanted = f"${{aws_s3_bucket.{bucket}.id}}"
        found = [c for c in self.stacks[stack]["resource"].get("aws_s3_bucket_policy", {}).values()
                 if c["bucket"] in (wanted, f"${{aws_s3_bucket.{bucket}.bucket}}")]
        if len(found) != 1:
            raise UnresolvedReference(f"{stack}: {len(found)} bucket policies for aws_s3_bucket.{bucket}")
        return self.referenced_document(stack, found[0]["policy"])

    def key_policy(self, stack: str, key: str) -> dict[str, Any]:
        return self.referenced_document(stack, self._config(stack, "resource", "aws_kms_key", key)["policy"])

    def topic_policy(self, stack: str, topic: str) -> dict[str, Any]:
        """The policy of `aws_sns_topic.<topic>` (its `aws_sns_topic_policy`)."""
        wanted = f"${{aws_sns_topic.{topic}.arn}}"
        found = [c for c in self.stacks[stack]["resource"].get("aws_sns_topic_policy", {}).values() if c["arn"] == wanted]
        if len(found) != 1:
            raise UnresolvedReference(f"{stack}: {len(found)} topic policies for aws_sns_topic.{topic}")
        return self.referenced_document(stack, found[0]["policy"])

    def trust_policy(self, stack: str, role: str) -> dict[str, Any]:
        return self.referenced_document(stack, self._config(stack, "resource", "aws_iam_role", role)["assume_role_policy"])

    def role_policies(self, stack: str, role: str) -> list[dict[str, Any]]:
        """The inline policies (`aws_iam_role_policy`) of `aws_iam_role.<role>`."""
        wanted = {f"${{aws_iam_role.{role}.id}}", f"${{aws_iam_role.{role}.name}}"}
        return [self.referenced_document(stack, c["policy"])
                for c in self.stacks[stack]["resource"].get("aws_iam_role_policy", {}).values() if c["role"] in wanted]

    def named(self, stack: str, resource_type: str, path_suffix: str) -> str:
        """The logical id of the one `resource_type` whose construct path ends with `path_suffix`."""
        found = [name for name, c in self.stacks[stack]["resource"].get(resource_type, {}).items()
                 if c["//"]["metadata"]["path"].endswith(path_suffix)]
        if len(found) != 1:
            raise UnresolvedReference(f"{stack}: {len(found)} {resource_type} at */{path_suffix}")
        return found[0]


def documents(stack) -> dict[str, dict]:
    return stack.data("aws_iam_policy_document")


def document_of(stack, reference: str) -> dict:
    """The policy document a `${data.aws_iam_policy_document.X.json}` reference names."""
    name = re.fullmatch(r"\$\{data\.aws_iam_policy_document\.(\w+)\.json\}", reference).group(1)
    return documents(stack)[name]


def statements(stack, reference: str) -> dict[str, dict]:
    return {s["sid"]: s for s in document_of(stack, reference)["statement"]}


def resource_named(stack, resource_type: str, name_key: str, name: str) -> tuple[str, dict]:
    (found,) = [(k, v) for k, v in stack.resources(resource_type).items() if v.get(name_key) == name]
    return found


def role_policy(stack, role_logical_id: str) -> dict:
    (policy,) = [p for p in stack.resources("aws_iam_role_policy").values()
                 if p["role"] == f"${{aws_iam_role.{role_logical_id}.id}}"]
    return policy
