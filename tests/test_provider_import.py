"""The provider bindings are imported in exactly one place (modules/aws.py)."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path
from typing import Any

import pytest

from tests.harness.project import PROJECT

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


# --- The Node kernel's lazy provider index (modules/core/lazy_provider_index.js) ---

def _node(script: str) -> str:
    import subprocess

    result = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_lazy_index_requires_a_submodule_on_first_access_only():
    """The rewrite of `exports.x = require("./x");` lines, run in Node on a sample index."""
    import json

    from modules.core.jsii_node import HOOK

    sample = "\n".join([
        '"use strict";',
        "exports.vpc = exports.subnet = void 0;",
        'exports.subnet = require("./subnet");',
        'exports.vpc = require("./vpc");',
        'const other = require("./kept-as-is");',
    ])
    script = f"""
      const {{ lazySubmodules }} = require({json.dumps(str(HOOK))});
      const source = lazySubmodules({json.dumps(sample)});
      const loaded = [];
      const exports = {{}};
      const fakeRequire = (name) => {{ loaded.push(name); return {{ name }}; }};
      new Function('exports', 'require', source)(exports, fakeRequire);
      const before = [...loaded];
      const vpc = exports.vpc, again = exports.vpc;
      console.log(JSON.stringify({{
        before, after: loaded, vpc: vpc.name, same: vpc === again,
        keys: Object.keys(exports).sort(),
      }}));
    """
    result = json.loads(_node(script))
    assert result["before"] == ["./kept-as-is"], "nothing of the provider may load before it is used"
    assert result["after"] == ["./kept-as-is", "./vpc"]
    assert result["vpc"] == "./vpc" and result["same"] is True
    assert result["keys"] == ["subnet", "vpc"], "the namespaces stay enumerable"


def test_lazy_index_applies_to_the_provider_package_only(tmp_path):
    import json

    from modules.core.jsii_node import HOOK

    for name in ("@cdktf/provider-aws", "@cdktf/provider-other"):
        package = tmp_path / name.replace("/", "_") / "lib"
        package.mkdir(parents=True)
        (package.parent / "package.json").write_text(json.dumps({"name": name}))
        (package / "index.js").write_text("x")
    script = f"""
      const {{ isProviderIndex }} = require({json.dumps(str(HOOK))});
      console.log(JSON.stringify([
        isProviderIndex({json.dumps(str(tmp_path / "@cdktf_provider-aws" / "lib" / "index.js"))}),
        isProviderIndex({json.dumps(str(tmp_path / "@cdktf_provider-other" / "lib" / "index.js"))}),
        isProviderIndex({json.dumps(str(tmp_path / "@cdktf_provider-aws" / "lib" / "vpc.js"))}),
      ]));
    """
    assert json.loads(_node(script)) == [True, False, False]


def test_the_session_kernel_runs_with_the_lazy_index(synth):
    """Else the byte-identical test in test_main.py would compare two eager runs."""
    import os

    from modules.core.jsii_node import HOOK

    kernels = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            status = (proc / "status").read_text()
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            environ = (proc / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        parent = next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:"))
        if "jsii-runtime" in cmdline and parent == str(os.getpid()):
            kernels.append(environ)
    assert kernels, "no jsii kernel is running under this test session"
    assert all(str(HOOK) in environ for environ in kernels)


NODE_OPTIONS_PROBE = """
import json, os, sys
import modules, modules.synth
from modules.core import jsii_node
imported = os.environ.get("NODE_OPTIONS")
if sys.argv[1] == "entry-point":
    jsii_node.prepare()
prepared = os.environ.get("NODE_OPTIONS")
import cdktf
jsii_node.restore()
from modules import aws
import jsii._kernel.providers.process as process
kernel = next(o for o in __import__("gc").get_objects() if isinstance(o, process._NodeProcess))
pid = kernel._process.pid
environ = open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace").split("\\0")
print(json.dumps({"imported": imported, "prepared": prepared, "after": os.environ.get("NODE_OPTIONS"),
                  "kernel": [e for e in environ if e.startswith("NODE_OPTIONS=")]}))
"""


def _probe(how: str, user_options: str | None) -> dict[str, Any]:
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("NODE_OPTIONS", "CDKTF_PLAIN_PROVIDER_IMPORT")}
    if user_options is not None:
        env["NODE_OPTIONS"] = user_options
    result = subprocess.run([sys.executable, "-c", NODE_OPTIONS_PROBE, how], cwd=PROJECT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("user_options", [None, "--max-old-space-size=4096"])
def test_the_hook_reaches_the_kernel_only_and_node_options_are_put_back(user_options):
    """What a synth entry point does (prepare, start the kernel, restore): programs started after
    the kernel (terraform, npm, node) get the user's NODE_OPTIONS."""
    from modules.core.jsii_node import HOOK

    seen = _probe("entry-point", user_options)
    assert seen["imported"] == user_options
    assert str(HOOK) in seen["prepared"]
    (kernel,) = seen["kernel"]
    assert str(HOOK) in kernel and (user_options or "") in kernel
    assert seen["after"] == user_options


@pytest.mark.parametrize("user_options", [None, "--max-old-space-size=4096"])
def test_importing_the_library_installs_no_hook(user_options):
    """`import modules...` (what the delivery commands do) changes no environment: no preload
    reaches the kernel or any later child process."""
    seen = _probe("import-only", user_options)
    assert seen["imported"] == seen["prepared"] == seen["after"] == user_options
    assert seen["kernel"] == ([f"NODE_OPTIONS={user_options}"] if user_options else [])


def test_node_options_add_and_remove_the_hook_once():
    from modules.core.jsii_node import HOOK, node_options, without_hook

    once = node_options("--max-http-header-size=1000")
    assert once.startswith("--max-http-header-size=1000 --require ") and str(HOOK) in once
    assert node_options(once) == once
    assert without_hook(once) == "--max-http-header-size=1000"
    assert without_hook(node_options("")) == ""


# --- Cached type hints and the background prefetch (modules/aws.py) ---

def test_type_errors_are_unchanged_by_the_cached_hints(tmp_path):
    """The same bad call twice (the second one reads the cached hints) gives the same error."""
    from cdktf import App, TerraformStack

    from modules import aws

    stack = TerraformStack(App(outdir=str(tmp_path)), "check")
    messages = []
    for attempt in range(2):
        try:
            aws.subnet.Subnet(stack, f"Subnet{attempt}", vpc_id="vpc-1", cidr_block=["10.0.0.0/24"])  # type: ignore[arg-type]
        except TypeError as error:
            messages.append(str(error))
    assert len(messages) == 2 and messages[0] == messages[1]
    assert "cidr_block" in messages[0]


def test_provider_submodules_see_typing_with_cached_hints(synth):
    import typing

    from modules import aws

    module = aws.vpc._private  # the namespace its functions run in (publication.publish)
    assert module.typing is not typing and module.typing.get_type_hints is not typing.get_type_hints
    stub = next(value for name, value in vars(module).items() if name.startswith("_typecheckingstub__"))
    assert dict(module.typing.get_type_hints(stub)) == typing.get_type_hints(stub)
    assert module.typing.get_type_hints(stub) is module.typing.get_type_hints(stub)


def test_prefetch_covers_every_submodule_the_synth_used(synth):
    import sys

    from modules import aws

    loaded = {
        name.split(".")[1] for name in sys.modules
        if name.startswith(PACKAGE + ".") and name.count(".") == 1 and not name.endswith("._jsii")
    }
    assert loaded, "the session synth loaded no provider submodule"
    assert loaded <= set(aws.used_submodules()), "aws.<name>.<Class> uses the scan does not see"


# --- Cached attribute reads (modules/aws.py `cacheable_getter`) ---

GETTER = re.compile(r"^    get (\w+)\(\) \{\n((?:        .*\n)+?)    \}$", re.M)
# `return this.getStringAttribute('arn');`, possibly wrapped in `cdktf.Fn.tolist(...)` or
# `cdktf.Token.asX(...)`: a token for the attribute, resolved at synth.
ATTRIBUTE_TOKEN = re.compile(
    r"return (?:cdktf\.(?:Fn\.tolist|Token\.as\w+)\()*this\.(?:get\w*Attribute|interpolationForAttribute)"
    r"\('[\w.]+'\)\)*;")
FIELD = re.compile(r"return this\.(_\w+);")


def provider_javascript(submodules: set[str]) -> dict[str, str]:
    """lib/<submodule>/index.js of the installed provider's jsii tarball (what the kernel runs),
    for submodules the library uses (plus kms_key and provider)."""
    return {name: source for name, source in _used_provider_javascript().items() if name in submodules}


@functools.cache
def _used_provider_javascript() -> dict[str, str]:
    # One pass over the 34 MB tarball for every test here (~1.5 s a pass).
    import tarfile

    from modules import aws

    submodules = set(aws.used_submodules()) | {"provider", "kms_key"}
    (tarball,) = Path(next(iter(aws._package.__path__)), "_jsii").glob("*.tgz")
    wanted = {f"package/lib/{name.replace('_', '-')}/index.js": name for name in submodules}
    found: dict[str, str] = {}
    with tarfile.open(tarball) as archive:
        for member in archive:
            if member.name in wanted:
                found[wanted[member.name]] = archive.extractfile(member).read().decode()  # type: ignore[union-attr]
    return found


def test_every_cached_getter_of_a_used_submodule_returns_a_fixed_value():
    from modules import aws

    used = set(aws.used_submodules()) - aws.UNCACHED_SUBMODULES
    sources = provider_javascript(used)
    assert set(sources) == used, f"no JavaScript found for {sorted(used - set(sources))}"
    unsafe, checked = [], 0
    for name, source in sources.items():
        made_once = set(re.findall(r"this\.(_\w+) = new ", source))
        for getter, body in GETTER.findall(source):
            if not aws.cacheable_getter(getter):
                continue
            checked += 1
            statement = " ".join(body.split())
            field = FIELD.fullmatch(statement)
            if not (ATTRIBUTE_TOKEN.fullmatch(statement) or (field and field.group(1) in made_once)):
                unsafe.append(f"{name}.{getter}: {statement}")
    assert checked > 1000, checked
    assert not unsafe, "getters the cache would answer wrongly:\n" + "\n".join(unsafe)


def test_the_rule_excludes_the_getters_that_return_what_was_set():
    from modules import aws

    sources = provider_javascript({"provider", "kms_key"})
    settings = [g for g, body in GETTER.findall(sources["provider"]) if FIELD.fullmatch(" ".join(body.split()))]
    assert "region" in settings and "provider" in aws.UNCACHED_SUBMODULES
    inputs = [g for g, _ in GETTER.findall(sources["kms_key"]) if g.endswith("Input")]
    assert "descriptionInput" in inputs and not any(aws.cacheable_getter(g) for g in inputs)
    assert not aws.cacheable_getter("internalValue") and aws.cacheable_getter("arn")


def test_cached_reads_return_one_token_and_settings_stay_live(tmp_path):
    from cdktf import App, TerraformStack

    from modules import aws

    stack = TerraformStack(App(outdir=str(tmp_path)), "reads")
    provider = aws.provider.AwsProvider(stack, "Aws", region="eu-west-1")
    key = aws.kms_key.KmsKey(stack, "Key", description="first")
    assert key.arn == key.arn and key.arn.startswith("${TfToken[")
    assert key.description_input == "first"
    key.description = "second"
    assert key.description_input == "second"  # an Input getter is read from the kernel each time
    provider.region = "eu-central-1"
    assert provider.region == "eu-central-1"  # the provider block's settings too
    timeouts = key.timeouts
    assert key.timeouts is timeouts


def test_provider_submodules_see_jsii_with_cached_gets(synth):
    import sys

    from modules import aws

    assert aws.kms_key._private.jsii is not sys.modules["jsii"]
    assert aws.kms_key._private.jsii.create is sys.modules["jsii"].create
    assert aws.provider._private.jsii is sys.modules["jsii"]


# --- The short way through typeguard (modules/aws.py `fast_check_type`) ---

def outcome(check, hint, value) -> str:
    try:
        check(argname="argument x", value=value, expected_type=hint)
    except TypeError as error:
        return f"TypeError: {error}"
    return "accepted"


def test_fast_check_type_agrees_with_typeguard_on_every_hint_and_value(tmp_path):
    """Every argument hint of a few resource classes, against values of every kind: same verdict,
    same message."""
    import typing

    from cdktf import App, TerraformStack, Token

    from modules import aws

    stack = TerraformStack(App(outdir=str(tmp_path)), "checks")
    key = aws.kms_key.KmsKey(stack, "Key")
    values = [
        "text", Token.as_string(key.arn), 7, 7.5, True, None, ["a", "b"], [1, 2], {"k": "v"}, {"k": 1},
        key, stack, aws.kms_key.KmsKeyTimeouts(create="1m"), {"create": "1m"}, ("a",), b"bytes", object(),
        aws.ecs_service.EcsServiceDeploymentCircuitBreaker(enable=True, rollback=True),
    ]
    hints = set()
    for module in (aws.kms_key, aws.ecs_service, aws.iam_role, aws.security_group, aws.lb_listener):
        namespace = module._private
        for name, stub in vars(namespace).items():
            if name.startswith("_typecheckingstub__"):
                hints.update(h for h in typing.get_type_hints(stub).values() if h is not type(None))
    assert len(hints) > 100, len(hints)
    fast = aws.kms_key._private.check_type
    plain = fast.checks_with
    disagreements, short = [], 0
    for hint in hints:
        for value in values:
            expected, got = outcome(plain, hint, value), outcome(fast, hint, value)
            if expected != got:
                disagreements.append((hint, value, expected, got))
            short += type(value) in aws._plain_members(hint)
    assert disagreements == []
    assert short > 100, "the short way was never taken: the test proves nothing"


def test_plain_members_leave_generics_protocols_and_tuples_to_typeguard():
    import typing

    import cdktf

    from modules import aws

    # The hints are spelled as jsii generates them (typing.Union, not `X | Y`).
    hint = typing.Optional[typing.Union[str, cdktf.IResolvable, typing.Sequence[str]]]  # noqa: UP007, UP045
    assert aws._plain_members(hint) == {str, type(None)}
    assert aws._plain_members(typing.Tuple[str, int]) == frozenset()  # noqa: UP006
    assert aws._plain_members(bytes) == frozenset()
    assert aws._plain_members(float) == {float}  # an int for a float goes to typeguard


def test_provider_submodules_check_arguments_the_short_way(synth):
    from modules import aws

    check = aws.vpc._private.check_type
    assert check.checks_with.__module__ == aws.vpc.__name__
    assert outcome(check, str, 10) == outcome(check.checks_with, str, 10)


# --- cdktf's token creation stacks, formatted when read (modules/core/lazy_creation_stacks.js) ---

CREATION_STACK_PROBE = """
  const cdktf = require(%(cdktf)s);
  function makeToken() { return cdktf.Lazy.stringValue({ produce: () => { throw new Error('boom'); } }); }
  const made = makeToken();
  const stack = cdktf.Tokenization.reverseString(made).firstToken.creationStack;
  const app = new cdktf.App({ outdir: %(outdir)s });
  new cdktf.TerraformOutput(new cdktf.TerraformStack(app, 'probe'), 'Out', { value: made });
  let message = '';
  try { app.synth(); } catch (error) { message = error.message; }
  const lazy = require(%(lazy)s).captureStackTrace;
  console.log(JSON.stringify({
    isArray: Array.isArray(stack), lines: [...stack], json: JSON.stringify(stack), length: stack.length,
    message, hooked: require(%(trace)s).captureStackTrace === lazy,
  }));
"""


def test_creation_stacks_and_their_error_messages_are_unchanged_by_the_hook(tmp_path):
    import json
    import os
    import subprocess

    from modules.core.jsii_node import HOOK, without_hook
    from tests.conftest import require

    cdktf = PROJECT / "node_modules" / "cdktf"
    require(cdktf.is_dir(), "node_modules/cdktf is missing (run `npm ci`)")
    lazy = HOOK.parent / "lazy_creation_stacks.js"
    script = CREATION_STACK_PROBE % {
        "cdktf": json.dumps(str(cdktf)), "outdir": json.dumps(str(tmp_path / "out")), "lazy": json.dumps(str(lazy)),
        "trace": json.dumps(str(cdktf / "lib" / "tokens" / "private" / "stack-trace.js")),
    }
    # A hook inherited from the caller's NODE_OPTIONS would make both runs hooked: the plain run drops it.
    plain_env = {**os.environ, "NODE_OPTIONS": without_hook(os.environ.get("NODE_OPTIONS", ""))}
    runs = {}
    for hooked in (False, True):
        command = ["node", *(["--require", str(HOOK)] if hooked else []), "-e", script]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=plain_env)
        assert result.returncode == 0, result.stderr
        runs[hooked] = json.loads(result.stdout)
    plain, hooked = runs[False], runs[True]
    assert hooked.pop("hooked") is True and plain.pop("hooked") is False
    assert hooked == plain
    assert plain["isArray"] and plain["length"] > 3 and plain["lines"][0].startswith("new LazyBase")
    assert "Object creation stack:\n  at new LazyBase" in plain["message"] and "boom" in plain["message"]


def test_creation_stack_hook_applies_to_cdktf_only(tmp_path):
    import json

    from modules.core.jsii_node import HOOK

    lazy = HOOK.parent / "lazy_creation_stacks.js"
    paths = []
    for name in ("cdktf", "not-cdktf"):
        folder = tmp_path / name / "lib" / "tokens" / "private"
        folder.mkdir(parents=True)
        (tmp_path / name / "package.json").write_text(json.dumps({"name": name}))
        (folder / "stack-trace.js").write_text("x")
        paths.append(str(folder / "stack-trace.js"))
    paths.append(str(tmp_path / "cdktf" / "lib" / "other.js"))
    script = f"""
      const {{ isCdktfStackTrace }} = require({json.dumps(str(lazy))});
      console.log(JSON.stringify({json.dumps(paths)}.map(isCdktfStackTrace)));
    """
    assert json.loads(_node(script)) == [True, False, False]


def test_the_kernel_check_survives_imports_on_another_thread(monkeypatch):
    """synth_main asks whether the kernel started while the bindings load on a thread of their own
    (modules/synth.py): iterating `sys.modules` as it grows raised "dictionary changed size during
    iteration" and failed a synth now and then. The check reads a snapshot."""
    import sys
    import threading

    from modules.core import jsii_node

    monkeypatch.setattr(sys, "modules", dict(sys.modules))  # this test's additions go with it
    stop = threading.Event()

    def import_and_forget() -> None:
        n = 0
        while not stop.is_set():
            sys.modules[f"race_probe_{n % 50}"] = sys  # added and removed, as imports and forgets do
            sys.modules.pop(f"race_probe_{(n + 25) % 50}", None)
            n += 1

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # hand the GIL over as often as possible
    thread = threading.Thread(target=import_and_forget, daemon=True)
    thread.start()
    try:
        for _ in range(3000):
            jsii_node._kernel_started()
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(switch)
