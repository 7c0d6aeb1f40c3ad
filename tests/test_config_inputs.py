"""Bad input of every kind ends in one line: file, place, dotted key, the value (cut, escaped), what
is allowed. Cases from trying malformed environment files as a new user would (issue 21)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modules.core.errors import ConfigError
from modules.environment import load_environments
from tests.harness import edits
from tests.harness.edits import edit


def load_error(directory: Path) -> ConfigError:
    """The loader's error, which must be one line of readable length."""
    error = edits.load_error(directory)
    assert "\n" not in str(error) and len(str(error)) < 600, str(error)
    return error


def message(error: ConfigError) -> str:
    """The message without the file (its folder is a temporary one)."""
    assert error.file is not None
    return str(error).removeprefix(f"{error.file}: ")


LOG_LEVEL = 'environment   = { LOG_LEVEL = "debug" }'


def test_rejects_a_terraform_interpolation_in_a_value_showing_the_escape(environments_copy):
    edit(environments_copy, "dev.hcl", LOG_LEVEL, 'environment   = { LOG_LEVEL = "${file("/etc/hostname")}" }')
    error = load_error(environments_copy)
    assert error.file.endswith("dev.hcl")
    assert message(error) == (
        "api.service[0].environment.LOG_LEVEL holds ${, which Terraform would evaluate as a template when it "
        'reads the synthesized JSON, got "${file(\\"/etc/hostname\\")}"; for a literal ${ write $${')


def test_rejects_a_terraform_directive_in_a_value(environments_copy):
    edit(environments_copy, "dev.hcl", LOG_LEVEL, 'environment   = { LOG_LEVEL = "%{if true}x%{endif}" }')
    assert message(load_error(environments_copy)).startswith("api.service[0].environment.LOG_LEVEL holds %{,")


def test_accepts_the_escapes_and_writes_them_as_terraform_reads_them(environments_copy):
    edit(environments_copy, "dev.hcl", LOG_LEVEL, 'environment   = { LOG_LEVEL = "a$${b}%%{c}" }')
    dev = load_environments(environments_copy).get("dev")
    assert dev.api.service[0].environment["LOG_LEVEL"] == "a$${b}%%{c}"  # Terraform's JSON: literal a${b}%{c}


def test_rejects_an_account_id_ending_in_a_newline(environments_copy):
    edit(environments_copy, "dev.hcl", 'account_id = "222222222222"', 'account_id = "222222222222\\n"')
    assert message(load_error(environments_copy)) == (
        'account_id must be printable text on one line, got "222222222222\\n" (holds \\n)')


def test_rejects_a_value_too_long_for_any_aws_document_cut_in_the_message(environments_copy):
    edit(environments_copy, "dev.hcl", LOG_LEVEL, f'environment   = {{ LOG_LEVEL = "{"x" * 2_000_000}" }}')
    assert message(load_error(environments_copy)) == (
        f'api.service[0].environment.LOG_LEVEL must be at most 65536 characters, got "{"x" * 59}... '
        "(2000000 characters)")


def test_rejects_a_heredoc_by_name(environments_copy):
    edit(environments_copy, "dev.hcl", LOG_LEVEL, 'environment   = { LOG_LEVEL = <<EOT\ndebug\nEOT\n }')
    assert message(load_error(environments_copy)) == (
        "api.service[0].environment.LOG_LEVEL is a heredoc (<<EOT ... EOT), which environment files do not "
        "support: write a quoted string")


def test_rejects_a_file_that_is_not_utf8_with_the_place(environments_copy):
    path = environments_copy / "dev.hcl"
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2] + b" # caf\xe9"
    path.write_bytes(b"\n".join(lines))
    error = load_error(environments_copy)
    column = len(lines[2])  # the last byte of the line, counted from 1
    assert message(error) == f"is not UTF-8 text: byte 0xe9 at line 3, column {column}; save the file as UTF-8"


def test_accepts_a_byte_order_mark(environments_copy):
    path = environments_copy / "dev.hcl"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_environments(environments_copy).get("dev").account_id == "222222222222"


def test_rejects_nesting_deeper_than_any_file_needs_with_the_place(environments_copy):
    edit(environments_copy, "dev.hcl", LOG_LEVEL, "environment   = " + "[" * 3000 + "]" * 3000)
    error = load_error(environments_copy)
    assert message(error).startswith("nests blocks, lists or maps more than 32 deep at line ")


def test_rejects_a_syntax_error_on_the_last_line_with_line_and_column(environments_copy):
    path = environments_copy / "dev.hcl"
    text = path.read_text().rstrip("\n") + "\nextra = [1,\n"
    path.write_text(text)
    lines = text.splitlines()
    assert message(load_error(environments_copy)) == (
        f"HCL syntax error at line {len(lines)}, column {len(lines[-1]) + 1}, the end of the file: "
        "a statement, string or bracket is left open")


def test_a_syntax_error_after_an_escape_names_its_own_line(environments_copy):
    path = environments_copy / "dev.hcl"
    text = 'note = "a$${b}"\n' + path.read_text().replace('account_id = "222222222222"', "account_id = ", 1)
    path.write_text(text)
    line = next(n for n, content in enumerate(text.splitlines(), 1) if content.startswith("account_id = "))
    assert message(load_error(environments_copy)) == f"HCL syntax error at line {line}, column 14: `account_id =`"


# -- production is declared once -----------------------------------------------------------------

def test_rejects_dev_pointed_at_prods_account_and_terraform_role(environments_copy):
    edit(environments_copy, "dev.hcl", 'account_id = "222222222222"', 'account_id = "444444444444"')
    edit(environments_copy, "dev.hcl", "arn:aws:iam::222222222222:role/webapp-terraform-dev",
         "arn:aws:iam::444444444444:role/webapp-terraform-prod")
    # Two mistakes, both reported at once: dev left non-production in a production account, and the
    # account (which the Terraform role is in) is prod's.
    error = edits.load_error(environments_copy)
    assert [(Path(e.file).name, message(e)) for e in error.errors] == [
        ("dev.hcl", "production must be true: account 444444444444 is a production account (production_accounts "
                    "in shared.hcl); to retire it on purpose, remove the account from production_accounts in the "
                    "same reviewed change, got false"),
        ("prod.hcl", 'account_id "444444444444" is already dev.hcl\'s account; an account holds one environment '
                     "unless shared_accounts in shared.hcl lists it"),
    ]


def test_rejects_prod_declaring_production_away(environments_copy):
    edit(environments_copy, "prod.hcl", "production = true", "production = false")
    error = load_error(environments_copy)
    assert error.file.endswith("prod.hcl") and error.key == "production"
    assert "remove the account from production_accounts in the same reviewed change" in message(error)


def test_turning_production_off_on_purpose_is_one_reviewed_change_of_both_files(environments_copy):
    edit(environments_copy, "prod.hcl", "production = true", "production = false")
    edit(environments_copy, "shared.hcl", 'production_accounts = ["444444444444"]', "production_accounts = []")
    assert not load_environments(environments_copy).get("prod").production


def test_rejects_production_in_an_account_not_declared_production(environments_copy):
    edit(environments_copy, "shared.hcl", 'production_accounts = ["444444444444"]', "production_accounts = []")
    assert message(load_error(environments_copy)) == (
        "production is true, but account 444444444444 is not in production_accounts in shared.hcl: declare it there "
        "too (production is declared once, for every file)")


def test_rejects_a_shared_file_without_production_accounts(environments_copy):
    edit(environments_copy, "shared.hcl", 'production_accounts = ["444444444444"]', "")
    error = load_error(environments_copy)
    assert error.file.endswith("shared.hcl")
    assert message(error).startswith("production_accounts must be the list of production accounts")


def test_rejects_two_environments_in_one_account_unless_declared_shared(environments_copy):
    edit(environments_copy, "stage.hcl", 'account_id = "333333333333"', 'account_id = "222222222222"')
    edit(environments_copy, "stage.hcl", "arn:aws:iam::333333333333:role/webapp-terraform-stage",
         "arn:aws:iam::222222222222:role/webapp-terraform-dev")
    assert message(load_error(environments_copy)) == (
        "account_id \"222222222222\" is already dev.hcl's account; an account holds one environment unless "
        "shared_accounts in shared.hcl lists it")


def test_cross_environment_checks_read_every_file_when_only_some_are_loaded(environments_copy):
    qa = (environments_copy / "dev.hcl").read_text().replace("222222222222", "555555555555")
    (environments_copy / "qa.hcl").write_text(qa)
    with pytest.raises(ConfigError) as caught:
        load_environments(environments_copy, ("qa",))
    assert caught.value.key == "network.cidr" and 'overlaps dev.hcl\'s "10.10.0.0/16"' in str(caught.value)


# -- patterns match the whole value, in ASCII ------------------------------------------------------

def test_rejects_non_ascii_letters_in_a_role_arn(environments_copy):
    # `\w` matches any Unicode letter unless the pattern is ASCII; IAM names are ASCII.
    edit(environments_copy, "dev.hcl", "role/webapp-terraform-dev", "role/webapp-terraform-dév")
    error = load_error(environments_copy)
    assert error.key == "assume_role_arn"
    assert message(error).endswith('got "arn:aws:iam::222222222222:role/webapp-terraform-dév"')


def test_rejects_non_ascii_letters_in_an_email_address(environments_copy):
    edit(environments_copy, "shared.hcl", "platform-team@webapp.example.com", "platform-téam@webapp.example.com")
    error = load_error(environments_copy)
    assert error.key.endswith("report_email_addresses") and "platform-téam@webapp.example.com" in message(error)


def test_every_check_pattern_matches_whole_values_in_ascii():
    """Every module-level pattern a config check uses (an UPPER_CASE name compiled from `^...`) is built
    with `whole()`: anchored at the very end (`\\Z`, not `$`) and with ASCII classes."""
    import importlib
    import pkgutil
    import re

    import modules

    found = 0
    for info in pkgutil.walk_packages(modules.__path__, "modules."):
        if info.name in ("modules.aws",):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if name.isupper() and isinstance(value, re.Pattern) and re.match(r"(\(\?:)?\^", value.pattern):
                found += 1
                assert value.flags & re.ASCII, f"{info.name}.{name} is not ASCII"
                assert value.pattern.endswith("\\Z"), f"{info.name}.{name} does not match the whole value"
    assert found >= 25  # the patterns exist (a walk that finds none would prove nothing)
