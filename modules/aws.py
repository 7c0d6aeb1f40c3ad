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
checks and their errors are unchanged, only computed once.

Importing the few dozen submodules costs ~0.7 s of Python work, mostly while
the Node kernel is busy building resources: a background thread imports the
ones this library names (`aws.<submodule>` in modules/) as soon as the package
is registered, so that work overlaps the kernel's instead of following it.

Set `CDKTF_PLAIN_PROVIDER_IMPORT=1` to import the package the ordinary way
(the benchmark's baseline): whole `__init__`, no cached hints, and no lazy
index in the Node kernel (modules/core/jsii_node.py).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
import threading
import typing
from pathlib import Path
from types import MappingProxyType, ModuleType
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


PLAIN = os.environ.get("CDKTF_PLAIN_PROVIDER_IMPORT") == "1"
_typing = None if PLAIN else _typing_with_cached_hints()
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
