"""The provider bindings are imported in exactly one place (modules/aws.py)."""

from __future__ import annotations

import ast

from tests.conftest import PROJECT

PACKAGE = "cdktf_cdktf_provider_aws"
ALLOWED = {PROJECT / "modules" / "aws.py"}


def python_files():
    for folder in ("modules", "tests"):
        yield from (PROJECT / folder).rglob("*.py")
    yield PROJECT / "main.py"


def _is_dynamic_import(func: ast.expr) -> bool:
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name in ("import_module", "__import__", "find_spec")


def test_no_module_but_modules_aws_imports_the_provider_package():
    offenders = []
    for path in python_files():
        if path in ALLOWED:
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Call) and _is_dynamic_import(node.func):
                names = [a.value for a in node.args[:1] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if any(name == PACKAGE or name.startswith(PACKAGE + ".") for name in names):
                offenders.append(f"{path.relative_to(PROJECT)}:{node.lineno}")
    assert not offenders, "import the provider through `from modules import aws`: " + ", ".join(offenders)


def test_unknown_resource_module_is_a_clear_attribute_error():
    from modules import aws

    try:
        aws.not_a_resource  # noqa: B018
    except AttributeError as error:
        assert "no module 'not_a_resource'" in str(error)
    else:
        raise AssertionError("expected AttributeError")
