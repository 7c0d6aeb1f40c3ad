"""The local AWS emulator: moto's server with the fixes this project's stacks need.

    python -m tests.harness.moto_server --port 4566

Run by the test fixture (`tests/harness/emulator.py`) on a free 127.0.0.1 port.
The fixes below are moto defects measured against aws provider 5.100.0
(ARCHITECTURE.md); each is the smallest change that lets a real
`terraform apply` of this project's stacks finish.
"""

from __future__ import annotations

import argparse
import json
import os
import uuid


def give_each_db_instance_its_own_resource_id() -> None:
    """moto gives every RDS instance the same DbiResourceId, so a replica collides with its primary."""
    from moto.rds import models

    original_init = models.DBInstance.__init__

    def init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original_init(self, *args, **kwargs)
        self.dbi_resource_id = "db-" + uuid.uuid4().hex[:26].upper()

    models.DBInstance.__init__ = init


def serve_application_autoscaling_tags() -> None:
    """moto lacks Application Auto Scaling's tag APIs; the provider retries them forever."""
    from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse

    tags: dict[str, dict[str, str]] = {}

    def list_tags_for_resource(self) -> str:  # type: ignore[no-untyped-def]
        return json.dumps({"Tags": tags.get(self._get_param("ResourceARN"), {})})

    def tag_resource(self) -> str:  # type: ignore[no-untyped-def]
        tags.setdefault(self._get_param("ResourceARN"), {}).update(self._get_param("Tags") or {})
        return "{}"

    def untag_resource(self) -> str:  # type: ignore[no-untyped-def]
        current = tags.get(self._get_param("ResourceARN"), {})
        for key in self._get_param("TagKeys") or []:
            current.pop(key, None)
        return "{}"

    ApplicationAutoScalingResponse.list_tags_for_resource = list_tags_for_resource
    ApplicationAutoScalingResponse.tag_resource = tag_resource
    ApplicationAutoScalingResponse.untag_resource = untag_resource


def skip_bucket_policy_conditions_moto_cannot_evaluate() -> None:
    """moto checks bucket policies with no request context and treats every Condition
    as met, so the TLS-only Deny (`aws:SecureTransport = false`) refuses every request,
    even over TLS. Statements with a Condition are left out of moto's check; the policy
    itself is still stored and returned as written (tests assert it in the JSON)."""
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3 import models

    def get_permission(self, action: str, resource: str):  # type: ignore[no-untyped-def]
        if self.policy is None:
            return PermissionResult.NEUTRAL
        document = json.loads(self.policy)
        statements = document.get("Statement", [])
        statements = statements if isinstance(statements, list) else [statements]
        unconditional = [s for s in statements if "Condition" not in s]
        if not unconditional:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps({**document, "Statement": unconditional})).is_action_permitted(action, resource)

    models.FakeBucket.get_permission = get_permission


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # Managed policies (for role attachments) must exist; certificates validate at once.
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    os.environ.setdefault("MOTO_ACM_VALIDATION_WAIT", "1")
    give_each_db_instance_its_own_resource_id()
    serve_application_autoscaling_tags()
    skip_bucket_policy_conditions_moto_cannot_evaluate()
    from moto.server import main as moto_main

    moto_main(["--host", "127.0.0.1", "--port", str(args.port)])


if __name__ == "__main__":
    main()
