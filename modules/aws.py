"""The one place that imports the hashicorp/aws provider bindings.

`cdktf_cdktf_provider_aws/__init__.py` imports all ~2,100 resource submodules
(about 7 s and ~500 MB of Python objects). The constructs here use a few dozen.
This module registers the package *without* running its `__init__.py`, loads the
jsii assembly (which the Node kernel needs for every resource), and then imports
submodules on first attribute access. The synthesized JSON is byte-identical to a
plain import; `tests/test_provider_import.py` proves it, so a provider upgrade
that breaks the mechanism fails the suite.

Every construct imports resources through this module:

    from modules import aws
    aws.vpc.Vpc(self, "Vpc", ...)

Each submodule's methods check their arguments with typeguard against hints
that `typing.get_type_hints` re-evaluates from strings on every call (~0.5 s of
a synth). The submodules loaded here see a `typing` whose `get_type_hints`
remembers the hints of each (immutable, module-level) stub function, so the
checks and their errors are unchanged, only computed once; and a `check_type`
that accepts at once a value whose own class the hint names (`fast_check_type`),
leaving everything else, and so every error, to typeguard.

Each attribute read (`key.arn`) is a round trip to the Node kernel, and a synth
reads the same attribute of the same resource again and again. The submodules'
`jsii.get` asks the kernel once per object and getter, for the getters whose
answer never changes (`cacheable_getter`: attribute tokens and nested-block objects;
never `<name>Input`, `internalValue` or the provider block's settings).

Importing the few dozen submodules costs ~0.7 s of Python work, mostly while
the Node kernel is busy building resources: a background thread imports the
ones this library names (`aws.<submodule>` in modules/) as soon as the package
is registered, so that work overlaps the kernel's instead of following it.

Set `CDKTF_PLAIN_PROVIDER_IMPORT=1` to import the package the ordinary way
(the benchmark's baseline): whole `__init__`, no cached hints or reads, and no lazy
index in the Node kernel (modules/core/jsii_node.py).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import threading
import typing
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING, Any

from modules.core.jsii_node import plain_provider_import

if TYPE_CHECKING:
    # What mypy sees of `aws.<submodule>` (the lazy __getattr__ below hides it): the provider's
    # own types. Never run: at run time __getattr__ imports a submodule on first use.
    from cdktf_cdktf_provider_aws import (  # noqa: F401
        acm_certificate,
        acm_certificate_validation,
        api_gateway_account,
        api_gateway_base_path_mapping,
        api_gateway_deployment,
        api_gateway_domain_name,
        api_gateway_integration,
        api_gateway_method,
        api_gateway_method_settings,
        api_gateway_request_validator,
        api_gateway_resource,
        api_gateway_rest_api,
        api_gateway_stage,
        api_gateway_vpc_link,
        appautoscaling_policy,
        appautoscaling_target,
        cloudfront_distribution,
        cloudfront_origin_access_control,
        cloudfront_response_headers_policy,
        cloudwatch_log_group,
        cloudwatch_metric_alarm,
        data_aws_availability_zones,
        data_aws_caller_identity,
        data_aws_canonical_user_id,
        data_aws_cloudfront_log_delivery_canonical_user_id,
        data_aws_iam_policy_document,
        data_aws_partition,
        data_aws_prefix_list,
        data_aws_route53_zone,
        data_aws_ssm_parameter,
        db_instance,
        db_parameter_group,
        db_subnet_group,
        default_security_group,
        dynamodb_table,
        ecr_lifecycle_policy,
        ecr_registry_scanning_configuration,
        ecr_repository,
        ecr_repository_policy,
        ecs_cluster,
        ecs_cluster_capacity_providers,
        ecs_service,
        ecs_task_definition,
        eip,
        flow_log,
        grafana_workspace,
        grafana_workspace_saml_configuration,
        iam_role,
        iam_role_policy,
        iam_role_policy_attachment,
        internet_gateway,
        kms_alias,
        kms_key,
        lb,
        lb_listener,
        lb_target_group,
        nat_gateway,
        prometheus_alert_manager_definition,
        prometheus_rule_group_namespace,
        prometheus_workspace,
        provider,
        route,
        route53_record,
        route_table,
        route_table_association,
        s3_bucket,
        s3_bucket_acl,
        s3_bucket_lifecycle_configuration,
        s3_bucket_logging,
        s3_bucket_ownership_controls,
        s3_bucket_policy,
        s3_bucket_public_access_block,
        s3_bucket_server_side_encryption_configuration,
        s3_bucket_versioning,
        secretsmanager_secret,
        secretsmanager_secret_version,
        security_group,
        sns_topic,
        sns_topic_policy,
        sns_topic_subscription,
        ssm_parameter,
        subnet,
        vpc,
        vpc_endpoint,
        vpc_security_group_egress_rule,
        vpc_security_group_ingress_rule,
        wafv2_web_acl,
        wafv2_web_acl_association,
        wafv2_web_acl_logging_configuration,
    )

PACKAGE = "cdktf_cdktf_provider_aws"


def _load_package_without_init() -> ModuleType:
    existing = sys.modules.get(PACKAGE)
    if existing is not None:
        return existing
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError(
            f"{PACKAGE} is not installed: run `pipenv sync` (see README.md)"
        )
    package = importlib.util.module_from_spec(spec)
    # module_from_spec sets __path__ from the spec, so `import PACKAGE.vpc` finds
    # the submodule; registering before loading _jsii mirrors what __init__ does.
    sys.modules[PACKAGE] = package
    try:
        importlib.import_module(f"{PACKAGE}._jsii")
    except BaseException:
        del sys.modules[PACKAGE]
        raise
    return package


def _typing_with_cached_hints() -> ModuleType:
    """A copy of the `typing` module whose `get_type_hints` caches per function."""
    proxy = ModuleType("typing", typing.__doc__)
    proxy.__dict__.update(typing.__dict__)
    hints_of: dict[Any, MappingProxyType[str, Any]] = {}

    def get_type_hints(obj: Any, globalns: Any = None, localns: Any = None, include_extras: bool = False) -> Any:
        if globalns is not None or localns is not None or include_extras:
            return typing.get_type_hints(obj, globalns, localns, include_extras)
        hints = hints_of.get(obj)
        if hints is None:
            # Read-only: every caller shares it.
            hints = hints_of[obj] = MappingProxyType(typing.get_type_hints(obj))
        return hints

    proxy.get_type_hints = get_type_hints  # type: ignore[attr-defined]
    return proxy


def _plain_members(expected: Any) -> frozenset[type]:
    """The classes of `expected` (itself, or its Union members) that typeguard checks with a
    bare isinstance: not generics, protocols (jsii interfaces), TypedDicts, tuples, bytes, IO."""
    members = typing.get_args(expected) if typing.get_origin(expected) is typing.Union else (expected,)
    return frozenset(
        member for member in members
        if isinstance(member, type) and typing.get_origin(member) is None
        and not getattr(member, "_is_protocol", False) and not hasattr(member, "__required_keys__")
        and not issubclass(member, (tuple, bytes, bytearray, memoryview, typing.IO))
    )


def fast_check_type(check_type: Any) -> Any:
    """The generated modules' `check_type`, answering at once when the value's own class is
    one the expected type names (a `str` for `Optional[str]`): typeguard would accept it.

    Every other value goes to typeguard, so every error is typeguard's, unchanged. Of the
    ~23,000 checks in a synth, ~20,700 take the short way.
    """
    members: dict[int, tuple[Any, frozenset[type]]] = {}

    def check(argname: str, value: object, expected_type: Any) -> Any:
        entry = members.get(id(expected_type))
        if entry is None or entry[0] is not expected_type:
            entry = members[id(expected_type)] = (expected_type, _plain_members(expected_type))
        if type(value) in entry[1]:
            return None
        return check_type(argname=argname, value=value, expected_type=expected_type)

    check.checks_with = check_type  # type: ignore[attr-defined]
    return check


# Submodules whose getters return settings as they stand (the provider block's `region`, ...).
UNCACHED_SUBMODULES = frozenset({"provider"})


def cacheable_getter(jsii_name: str) -> bool:
    """Whether a resource, data source or nested-block getter always returns the same value.

    The generated getters return a token for a Terraform attribute
    (`this.getStringAttribute('arn')`, resolved only at synth, so one token is right
    wherever it is used) or an object made once in the constructor (`this._timeouts`).
    The exceptions return what has been set so far: `<name>Input` and `internalValue`.
    tests/test_provider_import.py checks this against the JavaScript of every submodule
    the library uses.
    """
    return not jsii_name.endswith("Input") and jsii_name != "internalValue"


def _jsii_with_cached_gets() -> ModuleType:
    """A copy of the `jsii` module whose `get` asks the kernel once per object and getter.

    A synth reads the same attributes many times (a key's `arn` in every policy that
    names it): 1,071 reads of 690 distinct ones, each a round trip to Node.
    """
    import jsii

    proxy = ModuleType("jsii", jsii.__doc__)
    proxy.__dict__.update(jsii.__dict__)
    kernel_get = jsii.get
    values: dict[tuple[str, str], Any] = {}

    def get(obj: Any, jsii_name: str) -> Any:
        if not cacheable_getter(jsii_name):
            return kernel_get(obj, jsii_name)
        key = (obj.__jsii_ref__.ref, jsii_name)
        try:
            value = values[key]
        except KeyError:
            value = values[key] = kernel_get(obj, jsii_name)
        # A list or map of tokens is the caller's to change; the cached one is not.
        if isinstance(value, list):
            return list(value)
        if isinstance(value, dict):
            return dict(value)
        return value

    proxy.get = get  # type: ignore[attr-defined]
    return proxy


PLAIN = plain_provider_import()
_typing = None if PLAIN else _typing_with_cached_hints()
_jsii = None if PLAIN else _jsii_with_cached_gets()
_package = importlib.import_module(PACKAGE) if PLAIN else _load_package_without_init()


def __getattr__(name: str) -> Any:
    """Import `cdktf_cdktf_provider_aws.<name>` on first use."""
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        module = importlib.import_module(f"{PACKAGE}.{name}")
    except ModuleNotFoundError as error:
        if error.name == f"{PACKAGE}.{name}":
            raise AttributeError(
                f"hashicorp/aws bindings have no module {name!r}"
            ) from None
        raise
    # The package's modules `publication.publish()` themselves: their functions
    # run in the namespace kept as `<module>._private`.
    namespace: Any = getattr(module, "_private", module)
    if _typing is not None and getattr(namespace, "typing", None) is typing:
        namespace.typing = _typing
    if not PLAIN and not hasattr(getattr(namespace, "check_type", None), "checks_with"):
        namespace.check_type = fast_check_type(namespace.check_type)
    if _jsii is not None and name not in UNCACHED_SUBMODULES and getattr(namespace, "jsii", None) is sys.modules["jsii"]:
        namespace.jsii = _jsii
    globals()[name] = module
    return module


_SUBMODULE_USE = re.compile(r"\baws\.([a-z][a-z0-9_]*)\b")


def used_submodules() -> list[str]:
    """Provider submodules this library names as `aws.<submodule>`."""
    found: set[str] = set()
    for source in Path(__file__).resolve().parent.rglob("*.py"):
        found.update(_SUBMODULE_USE.findall(source.read_text(encoding="utf-8")))
    package_dir = Path(next(iter(_package.__path__)))
    return sorted(name for name in found if (package_dir / name / "__init__.py").is_file())


def _prefetch() -> None:
    for name in used_submodules():
        try:
            __getattr__(name)
        except Exception:  # noqa: BLE001 - the construct's own import reports it
            return


if not PLAIN:
    # A daemon thread: an exit never waits for it. The import lock makes a
    # construct that needs a submodule the thread is loading wait for it.
    threading.Thread(target=_prefetch, name="provider-prefetch", daemon=True).start()
