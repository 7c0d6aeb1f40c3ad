"""The benchmark's generated environments (bench/synth.py) are valid configurations."""

from __future__ import annotations

import sys

from bench.suite import Sample, Sampler, place, program, run
from bench.synth import generate_environments
from modules.environment import load_environments


def test_generated_copies_load_and_leave_account_settings_to_their_original(tmp_path):
    environments = load_environments(generate_environments(3, tmp_path / "environments"))
    names = [e.name for e in environments.environments]
    assert sorted(names) == sorted(f"{base}{n}" for base in ("dev", "stage", "prod") for n in ("", "2", "3"))
    owners = {(e.account_id, e.region) for e in environments.environments if e.api.account_cloudwatch_role}
    assert len(owners) == 3
    assert len({e.network.cidr for e in environments.environments}) == 9


def _sample(command: str, cwd: str = "/work", cpu: float = 1.0) -> Sample:
    return Sample(pid=1, ppid=0, command=command, cwd=cwd, cpu=cpu)


def test_the_suite_profile_names_each_program_and_where_terraform_ran():
    stack = "/tmp/cdktf-test-jobs-x/emulator/emulator-project/cdktf.out/stacks/dev-api"
    provider = ".terraform/providers/registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64/" \
               "terraform-provider-aws_v5.100.0_x5"
    assert program(_sample(provider, stack)) == "aws provider"
    assert place(_sample(provider, stack)) == "session dev-api"
    assert program(_sample("/usr/local/bin/terraform plan -input=false")) == "terraform plan"
    assert place(_sample("terraform show", "/tmp/pytest-of-root/pytest-423/saved-plans0/stacks/prod-api")) == \
        "tmp saved-plans"
    assert place(_sample("terraform apply", "/tmp/cdktf-test-jobs-y/zero-to-dev/project/cdktf.out/stacks/x")) == \
        "job zero-to-dev"
    assert program(_sample("/p/.venv/bin/python -m tests.harness.moto_server --port 1")) == "moto server"
    assert program(_sample(".venv/bin/python -m pytest")) == "pytest"
    assert program(_sample("/p/.venv/bin/python /p/main.py")) == "python main.py"
    assert program(_sample("/p/.venv/bin/python -m delivery apply dev")) == "python -m delivery"
    assert program(_sample("/usr/bin/node --max-old-space-size=4069 program.js")) == "node"
    assert program(_sample("/usr/bin/python3 -c print(1)")) == "python -c"
    assert program(_sample("")) == "(unnamed)"


def test_the_suite_profile_sees_the_processes_below_the_command_and_their_exact_cpu():
    burn = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {burn!r}], check=True)"
    report = run([sys.executable, "-c", child], interval=0.05)
    assert report.returncode == 0
    assert report.cpu_seconds >= 0.3  # both pythons, waited for: getrusage counts them
    assert [name for name, _, count in report.by_program] == ["python -c"]
    (_, seen, count) = report.by_program[0]
    assert count == 2 and 0 < seen <= report.cpu_seconds + 0.05
    assert report.lines()[0].startswith(f"{sys.executable} -c ")


def test_the_suite_profile_counts_a_process_once_and_only_below_the_command():
    sampler = Sampler(root=100, interval=1)
    sampler.record([Sample(pid=101, ppid=100, command="terraform plan", cwd="/a", cpu=1.0, started=7),
                    Sample(pid=102, ppid=101, command="terraform-provider-aws_v5", cwd="/a", cpu=2.0, started=8),
                    Sample(pid=200, ppid=1, command="someone else", cwd="/", cpu=9.0, started=9)])
    # Exited, not yet reaped: no command line any more, more CPU.
    sampler.record([Sample(pid=101, ppid=100, command="", cwd="", cpu=1.5, started=7)])
    # The pid reused by another process.
    sampler.record([Sample(pid=101, ppid=100, command="terraform show", cwd="/b", cpu=0.5, started=50)])
    seen = sorted((s.pid, s.command, s.cpu) for s in sampler.seen.values())
    assert seen == [(101, "terraform plan", 1.5), (101, "terraform show", 0.5), (102, "terraform-provider-aws_v5", 2.0)]


def test_the_suite_profile_names_a_command_it_cannot_start_in_one_line(capsys):
    from bench.suite import main

    assert main(["--", "no-such-command-here"]) == 2
    assert capsys.readouterr().err == "error: cannot run no-such-command-here: No such file or directory\n"
