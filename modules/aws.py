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

Set `CDKTF_PLAIN_PROVIDER_IMPORT=1` to import the package the ordinary way
(the benchmark's baseline).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from types import ModuleType
from typing import Any

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


if os.environ.get("CDKTF_PLAIN_PROVIDER_IMPORT") == "1":
    _package = importlib.import_module(PACKAGE)
else:
    _package = _load_package_without_init()


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
    globals()[name] = module
    return module
