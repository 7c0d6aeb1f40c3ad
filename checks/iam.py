"""Evaluate IAM policy documents against a request, as AWS documents it.

    from checks.iam import Principal, Request, evaluate

    request = Request(action="s3:PutObject", resource="arn:aws:s3:::state/dev/network.tfstate",
                      principal=Principal.aws("arn:aws:sts::111111111111:assumed-role/dev-tfstate/tf"),
                      context={"aws:SecureTransport": "true"})
    result = evaluate([role_policy], bucket_policy, request, resource_account="111111111111")
    assert result.decision is Decision.ALLOW, result.explain()

Policies are parsed JSON (`dict`), as IAM stores them. The evaluation follows the IAM User Guide:
- "Policy evaluation logic": an explicit Deny in any policy wins; otherwise an Allow is needed;
  otherwise the request is implicitly denied. Within one account, an Allow from the identity-based
  policies or from the resource-based policy is enough; across accounts
  ("Cross-account policy evaluation logic") both must allow.
- A resource-based policy that names an account (`"AWS": "123456789012"` or its `:root` ARN)
  delegates to that account: its principals still need an identity-based Allow
  ("AWS JSON policy elements: Principal", AWS account principals). A policy that names the
  principal itself (its role or user ARN, a service, `"*"`) allows on its own.
- Service principals (`Principal.service`) have no identity-based policies: only the resource
  policy speaks for them.
- "IAM JSON policy elements: Condition operators": String*, Numeric*, Bool, Null, Arn*, IpAddress,
  each with `...IfExists`; negated operators; `ForAnyValue:`/`ForAllValues:` ("Single-valued vs.
  multivalued context keys"). Several operators in a block, and several keys under one operator,
  must all hold (AND); several values for one key match if any does (OR), and a negated operator
  holds only if none does (NOR). Condition keys are matched case-insensitively.

Not modelled (the project's policies do not use them; an unknown operator raises
`UnsupportedPolicy` rather than guessing): Date* and Binary* operators, policy variables
(`${aws:username}`), permissions boundaries, session policies, SCPs/RCPs, ACLs.

The request's context is what the service would send: a key that is missing from `context` is
absent from the request. For an AWS principal, `aws:PrincipalArn` and `aws:PrincipalAccount` are
filled in from the principal unless given (AWS always sends them for IAM principals).
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ContextValue = str | Sequence[str]
Policy = Mapping[str, Any]


class UnsupportedPolicy(ValueError):
    """The policy uses an element or operator this evaluator does not implement."""


class Decision(enum.Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


class PrincipalType(enum.Enum):
    AWS = "AWS"
    SERVICE = "Service"
    FEDERATED = "Federated"
    ANONYMOUS = "Anonymous"


_ASSUMED_ROLE = re.compile(r"^arn:([^:]+):sts::(\d{12}):assumed-role/([^/]+)/.+$")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who makes the request: build one with `Principal.aws/service/federated/anonymous`.

    `arn` is the caller as AWS identifies it: a user, role or root ARN, or an assumed-role
    session ARN (`arn:aws:sts::<account>:assumed-role/<role>/<session>`); a service principal's
    name (`cloudfront.amazonaws.com`); a federated provider (`cognito-identity.amazonaws.com`).
    """

    type: PrincipalType
    arn: str = ""

    @classmethod
    def aws(cls, arn: str) -> Principal:
        if not arn.startswith("arn:") or len(arn.split(":")) < 6:
            raise ValueError(f"an AWS principal is an ARN, got {arn!r}")
        return cls(PrincipalType.AWS, arn)

    @classmethod
    def service(cls, name: str) -> Principal:
        return cls(PrincipalType.SERVICE, name)

    @classmethod
    def federated(cls, provider: str) -> Principal:
        return cls(PrincipalType.FEDERATED, provider)

    @classmethod
    def anonymous(cls) -> Principal:
        return cls(PrincipalType.ANONYMOUS)

    @property
    def account(self) -> str | None:
        """The 12-digit account of an AWS principal."""
        return self.arn.split(":")[4] if self.type is PrincipalType.AWS else None

    @property
    def principal_arn(self) -> str | None:
        """`aws:PrincipalArn`: for a role session, the role's ARN; else the caller's own ARN."""
        if self.type is not PrincipalType.AWS:
            return None
        session = _ASSUMED_ROLE.match(self.arn)
        if session:
            partition, account, role = session.groups()
            return f"arn:{partition}:iam::{account}:role/{role}"
        return self.arn


@dataclass(frozen=True, slots=True)
class Request:
    """One API call as IAM sees it: `context` maps condition keys to a value or a list of values."""

    action: str
    resource: str
    principal: Principal
    context: Mapping[str, ContextValue] = field(default_factory=dict)

    def context_value(self, key: str) -> list[str] | None:
        """The request's values for `key` (case-insensitive), None when the key is absent."""
        wanted = key.lower()
        for name, value in self.full_context().items():
            if name.lower() == wanted:
                return [value] if isinstance(value, str) else list(value)
        return None

    def full_context(self) -> dict[str, ContextValue]:
        implied: dict[str, ContextValue] = {}
        if self.principal.type is PrincipalType.AWS:
            implied = {"aws:PrincipalArn": self.principal.principal_arn or "",
                       "aws:PrincipalAccount": self.principal.account or ""}
        given = {name.lower() for name in self.context}
        return {**{k: v for k, v in implied.items() if k.lower() not in given}, **self.context}


@dataclass(frozen=True, slots=True)
class Statement:
    """A statement that matched the request, and where it came from (for messages)."""

    source: str  # "identity[0]", "resource"
    sid: str
    effect: str
    via_account: bool  # matched only through an account principal (delegation to IAM)
    document: Mapping[str, Any]

    def __str__(self) -> str:
        return f"{self.effect} {self.sid or '(no Sid)'} in the {self.source} policy"


@dataclass(frozen=True, slots=True)
class Result:
    decision: Decision
    statements: tuple[Statement, ...] = ()  # the statements that decided (empty for an implicit deny)
    reason: str = ""

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW

    def explain(self) -> str:
        decided = ", ".join(str(s) for s in self.statements) or "no statement"
        return f"{self.decision.value}: {self.reason or decided}"


# ---------------------------------------------------------------- matching

def _wildcard(pattern: str, *, case_sensitive: bool) -> re.Pattern[str]:
    """`*` any run of characters, `?` any one character (IAM's only wildcards)."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", 0 if case_sensitive else re.IGNORECASE | re.DOTALL)


def _like(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    return _wildcard(pattern, case_sensitive=case_sensitive).match(value) is not None


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _action_matches(patterns: Any, action: str) -> bool:
    # Action names are case-insensitive ("IAM JSON policy elements: Action").
    return any(_like(p, action, case_sensitive=False) for p in _listed(patterns))


def _resource_matches(patterns: Any, resource: str) -> bool:
    return any(_like(p, resource) for p in _listed(patterns))


def _arn_like(pattern: str, value: str) -> bool:
    """ArnLike: each of the six colon-separated parts matched on its own, case-sensitively."""
    pattern_parts, value_parts = pattern.split(":", 5), value.split(":", 5)
    if len(pattern_parts) != 6 or len(value_parts) != 6:
        return False
    return all(_like(p, v) for p, v in zip(pattern_parts, value_parts, strict=True))


def _principal_matches(element: Any, principal: Principal) -> tuple[bool, bool]:
    """(matches, only through an account principal)."""
    if element == "*":
        return True, False
    if not isinstance(element, Mapping):
        raise UnsupportedPolicy(f"Principal must be \"*\" or a map, got {element!r}")
    for kind, values in element.items():
        for value in _listed(values):
            if kind == "AWS":
                if value == "*":  # the same as "Principal": "*", anonymous callers included
                    return True, False
                if principal.type is not PrincipalType.AWS:
                    continue
                account = value if re.fullmatch(r"\d{12}", value) else None
                root = re.fullmatch(r"arn:[^:]+:iam::(\d{12}):root", value)
                if root:
                    account = root.group(1)
                if account is not None:
                    if principal.account == account:
                        return True, True
                    continue
                if value in (principal.arn, principal.principal_arn):
                    return True, False
            elif kind == "Service":
                if principal.type is PrincipalType.SERVICE and value == principal.arn:
                    return True, False
            elif kind == "Federated":
                if principal.type is PrincipalType.FEDERATED and value == principal.arn:
                    return True, False
            elif kind == "CanonicalUser":
                continue
            else:
                raise UnsupportedPolicy(f"unknown principal type {kind!r}")
    return False, False


# ---------------------------------------------------------------- conditions

def _number(text: str) -> float:
    return float(text)


def _bool(text: str) -> str:
    return text.lower()


def _ip(policy_value: str, value: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(policy_value, strict=False)
    except ValueError:
        return False


_Compare = Callable[[str, str], bool]

# operator -> (compare(policy value, request value), negated)
_OPERATORS: dict[str, tuple[_Compare, bool]] = {
    "StringEquals": (lambda p, v: p == v, False),
    "StringNotEquals": (lambda p, v: p == v, True),
    "StringEqualsIgnoreCase": (lambda p, v: p.lower() == v.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda p, v: p.lower() == v.lower(), True),
    "StringLike": (lambda p, v: _like(p, v), False),
    "StringNotLike": (lambda p, v: _like(p, v), True),
    "NumericEquals": (lambda p, v: _number(p) == _number(v), False),
    "NumericNotEquals": (lambda p, v: _number(p) == _number(v), True),
    "NumericLessThan": (lambda p, v: _number(v) < _number(p), False),
    "NumericLessThanEquals": (lambda p, v: _number(v) <= _number(p), False),
    "NumericGreaterThan": (lambda p, v: _number(v) > _number(p), False),
    "NumericGreaterThanEquals": (lambda p, v: _number(v) >= _number(p), False),
    "Bool": (lambda p, v: _bool(p) == _bool(v), False),
    "ArnEquals": (_arn_like, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
    "IpAddress": (_ip, False),
    "NotIpAddress": (_ip, True),
}


def _parse_operator(name: str) -> tuple[str | None, str, bool]:
    """`ForAllValues:StringLikeIfExists` -> ("ForAllValues", "StringLike", True)."""
    qualifier, _, base = name.rpartition(":")
    if qualifier not in ("", "ForAllValues", "ForAnyValue"):
        raise UnsupportedPolicy(f"unknown set operator {qualifier!r} in {name!r}")
    if_exists = base.endswith("IfExists") and base != "IfExists"
    if if_exists:
        base = base[: -len("IfExists")]
    if base == "Null" and (if_exists or qualifier):
        raise UnsupportedPolicy(f"{name!r}: Null takes neither IfExists nor a set operator")
    if base != "Null" and base not in _OPERATORS:
        raise UnsupportedPolicy(f"condition operator {name!r} is not implemented")
    return qualifier or None, base, if_exists


def _condition_holds(operator: str, key: str, policy_values: Any, request: Request) -> bool:
    qualifier, base, if_exists = _parse_operator(operator)
    wanted = [str(v).lower() if isinstance(v, bool) else str(v) for v in _listed(policy_values)]
    values = request.context_value(key)
    if base == "Null":
        # "Null": true means the key must be absent, false that it must be present.
        absent = values is None
        return any(absent == (w.lower() == "true") for w in wanted)
    compare, negated = _OPERATORS[base]

    def one(value: str) -> bool:
        matched = any(compare(w, value) for w in wanted)
        return not matched if negated else matched

    if qualifier == "ForAllValues":
        # True when every request value matches, and when the key is missing or empty.
        return values is None or all(one(v) for v in values)
    if qualifier == "ForAnyValue":
        if values is None or not values:
            return if_exists  # a missing key makes ForAnyValue false, unless ...IfExists
        return any(one(v) for v in values)
    if values is None:
        # A missing key: true for ...IfExists; for the rest false, except that a negated
        # operator ("StringNotEquals", "ArnNotLike", ...) is then true.
        return if_exists or negated
    # A single-valued operator over a multivalued key: one request value is enough.
    return any(one(v) for v in values) if not negated else all(one(v) for v in values)


def conditions_hold(condition: Mapping[str, Any] | None, request: Request) -> bool:
    """Every operator, and every key under it, must hold (AND)."""
    for operator, keys in (condition or {}).items():
        for key, policy_values in keys.items():
            if not _condition_holds(operator, key, policy_values, request):
                return False
    return True


# ---------------------------------------------------------------- statements and policies

_KNOWN_ELEMENTS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal",
                   "NotPrincipal", "Condition"}


def _statements(policy: Policy) -> list[Mapping[str, Any]]:
    statements = policy.get("Statement", [])
    return [statements] if isinstance(statements, Mapping) else list(statements)


def statement_applies(statement: Mapping[str, Any], request: Request, *,
                      resource_policy: bool) -> tuple[bool, bool]:
    """(applies to the request, matched only through an account principal)."""
    unknown = set(statement) - _KNOWN_ELEMENTS
    if unknown:
        raise UnsupportedPolicy(f"unknown statement elements {sorted(unknown)}")
    if "Action" in statement:
        if not _action_matches(statement["Action"], request.action):
            return False, False
    elif "NotAction" in statement:
        if _action_matches(statement["NotAction"], request.action):
            return False, False
    else:
        raise UnsupportedPolicy("a statement needs Action or NotAction")
    if "Resource" in statement:
        if not _resource_matches(statement["Resource"], request.resource):
            return False, False
    elif "NotResource" in statement:
        if _resource_matches(statement["NotResource"], request.resource):
            return False, False
    # A trust policy has no Resource: the role it is attached to is the resource.
    via_account = False
    if resource_policy:
        if "Principal" in statement:
            matched, via_account = _principal_matches(statement["Principal"], request.principal)
            if not matched:
                return False, False
        elif "NotPrincipal" in statement:
            matched, _ = _principal_matches(statement["NotPrincipal"], request.principal)
            if matched:
                return False, False
        else:
            raise UnsupportedPolicy("a resource-based policy statement needs Principal or NotPrincipal")
    elif "Principal" in statement or "NotPrincipal" in statement:
        raise UnsupportedPolicy("an identity-based policy statement cannot name a Principal")
    return conditions_hold(statement.get("Condition"), request), via_account


def evaluate_policy(policy: Policy, request: Request, *, source: str = "policy",
                    resource_policy: bool = False) -> Result:
    """One policy on its own: its explicit Deny, its Allow, or neither (implicit deny)."""
    denies: list[Statement] = []
    allows: list[Statement] = []
    for statement in _statements(policy):
        applies, via_account = statement_applies(statement, request, resource_policy=resource_policy)
        if not applies:
            continue
        effect = statement.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise UnsupportedPolicy(f"Effect must be Allow or Deny, got {effect!r}")
        found = Statement(source, statement.get("Sid", ""), effect, via_account, statement)
        (denies if effect == "Deny" else allows).append(found)
    if denies:
        return Result(Decision.EXPLICIT_DENY, tuple(denies))
    if allows:
        return Result(Decision.ALLOW, tuple(allows))
    return Result(Decision.IMPLICIT_DENY, reason=f"no statement of the {source} policy allows it")


def evaluate(identity_policies: Sequence[Policy], resource_policy: Policy | None, request: Request, *,
             resource_account: str | None = None) -> Result:
    """The decision for `request` given the caller's identity-based policies and the resource's
    policy (a bucket, key, topic or trust policy; None if it has none).

    `resource_account` is the account that owns the resource (S3 ARNs do not carry it); when it
    is None the request is taken as same-account.
    """
    identity = [evaluate_policy(p, request, source=f"identity[{i}]") for i, p in enumerate(identity_policies)]
    resource = (evaluate_policy(resource_policy, request, source="resource", resource_policy=True)
                if resource_policy is not None else Result(Decision.IMPLICIT_DENY))
    denies = tuple(s for r in [*identity, resource] if r.decision is Decision.EXPLICIT_DENY for s in r.statements)
    if denies:
        return Result(Decision.EXPLICIT_DENY, denies)

    identity_allows = tuple(s for r in identity if r.allowed for s in r.statements)
    if request.principal.type is not PrincipalType.AWS:
        identity_allows = ()  # services and anonymous callers have no identity-based policies
    resource_allows = resource.statements if resource.allowed else ()
    # A resource policy that names the principal (not only its account) allows on its own.
    resource_alone = tuple(s for s in resource_allows if not s.via_account)

    caller_account = request.principal.account
    same_account = resource_account is None or caller_account is None or caller_account == resource_account
    if same_account:
        if resource_alone:
            return Result(Decision.ALLOW, resource_alone)
        if identity_allows:
            return Result(Decision.ALLOW, identity_allows + resource_allows)
        return Result(Decision.IMPLICIT_DENY, reason="no identity-based or resource-based policy allows it")
    if not identity_allows:
        return Result(Decision.IMPLICIT_DENY, resource_allows,
                      reason="cross-account: the caller's identity-based policies do not allow it")
    if not resource_allows:
        return Result(Decision.IMPLICIT_DENY, identity_allows,
                      reason=f"cross-account: the resource policy of account {resource_account} does not allow it")
    return Result(Decision.ALLOW, identity_allows + resource_allows)
