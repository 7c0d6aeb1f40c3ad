"""Benchmark: where a command's CPU goes, by program and by where it ran (the test suite's profile).

    python -m bench.suite                      # make test
    python -m bench.suite --json cpu.json -- make test-fast

Runs the command, samples every process below it from /proc (CPU time, command line, folder)
every `--interval` seconds, and prints the wall time, the children's exact CPU time (getrusage)
and the sampled CPU by program (the aws provider, `terraform <subcommand>`, the moto server,
pytest, node, checkov, ...) and, for terraform and the provider, by where they ran: a stack the
test session applies, a pytest temporary folder (named after its fixture or test), or a
background job's folder. A process that starts and ends between two samples, or leaves the tree
(a daemon), is not seen: the report says how much of the exact total the samples cover.

Figures from one machine are comparable only with figures from the same machine at the same load:
CONTRIBUTING.md ("How long the tests take") keeps the measured ones.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
DEFAULT_COMMAND = ["make", "test"]
TRAILING_NUMBER = re.compile(r"\d+$")


@dataclass
class Sample:
    """One process as last seen: its CPU seconds so far, command line and working folder."""

    pid: int
    ppid: int
    command: str
    cwd: str
    cpu: float
    started: int = 0  # clock ticks after boot: with the pid, names one process even when the pid is reused


def read_process(pid: int) -> Sample | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
        # The command name is in parentheses and may hold spaces: the fields start after the last ')'.
        fields = text[text.rindex(")") + 2:].split()
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            command = cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except (OSError, ValueError):
        return None  # gone, or not ours to read
    return Sample(pid=pid, ppid=int(fields[1]), command=command, cwd=cwd,
                  cpu=(int(fields[11]) + int(fields[12])) / CLOCK_TICKS, started=int(fields[19]))


class Sampler:
    """Every process below `root`, sampled on a thread until `stop()`.

    It reads all of /proc and keeps a process whose parent it already keeps, rather than walking
    `/proc/<pid>/task/<pid>/children` as bench/synth.py does: that file lists only the children
    of a process's main thread, and pytest starts terraform from its background jobs' threads.
    """

    def __init__(self, root: int, interval: float) -> None:
        self.interval = interval
        self.seen: dict[tuple[int, int], Sample] = {}  # by (pid, start time)
        self._family = {root}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        self.record([s for s in (read_process(int(p)) for p in os.listdir("/proc") if p.isdigit()) if s is not None])

    def record(self, samples: list[Sample]) -> None:
        # Parents before children: a process joins the family when its parent is in it.
        for sample in sorted(samples, key=lambda s: s.pid):
            if sample.pid in self._family or sample.ppid in self._family:
                self._family.add(sample.pid)
                key = (sample.pid, sample.started)
                previous = self.seen.get(key)
                if previous is None:
                    self.seen[key] = sample
                elif sample.cpu >= previous.cpu:
                    # A process that exited (a zombie) shows no command line or folder: keep the earlier ones.
                    previous.cpu = sample.cpu
                    previous.command = previous.command or sample.command
                    previous.cwd = previous.cwd or sample.cwd


def program(sample: Sample) -> str:
    """What a process is, in the words of the report."""
    words = sample.command.split()
    if not words:
        return "(unnamed)"
    executable = Path(words[0]).name
    if executable.startswith("terraform-provider-"):
        return "aws provider" if "provider-aws" in executable else executable
    if executable == "terraform":
        return f"terraform {words[1]}" if len(words) > 1 else "terraform"
    if "moto_server" in sample.command or "moto.server" in sample.command:
        return "moto server"
    if "pytest" in words[:3]:  # pytest, python -m pytest
        return "pytest"
    if "checkov" in sample.command:
        return "checkov"
    if executable.startswith("node"):
        return "node"
    if executable == "java" or "groovy" in executable:
        return "java (groovy)"
    if executable.startswith("postgres") or executable in ("initdb", "pg_ctl"):
        return "postgres"
    if executable.startswith("python"):
        if "-c" in words[1:2]:
            return "python -c"
        rest = [w for w in words[1:] if not w.startswith("-") or w == "-m"]
        if rest[:1] == ["-m"] and len(rest) > 1:
            return f"python -m {rest[1]}"
        return f"python {Path(rest[0]).name}" if rest else "python"
    return executable


def place(sample: Sample) -> str:
    """Where a process ran: a session stack, a pytest temporary folder, a background job or the checkout."""
    cwd = sample.cwd
    stack = re.search(r"/emulator-project/cdktf\.out/stacks/([^/]+)", cwd)
    if stack:
        return f"session {stack.group(1)}"
    temporary = re.search(r"/pytest-\d+/([^/]+)", cwd)
    if temporary:
        return "tmp " + TRAILING_NUMBER.sub("", temporary.group(1))  # pytest numbers each folder
    job = re.search(r"/cdktf-test-jobs-[^/]+/([^/]+)", cwd)
    if job:
        return f"job {job.group(1)}"
    return "elsewhere"


@dataclass
class Report:
    command: list[str]
    returncode: int
    wall_seconds: float
    cpu_seconds: float  # the command and every process below it that was waited for (getrusage)
    sampled_seconds: float
    by_program: list[tuple[str, float, int]]
    by_place: list[tuple[str, float, int]]

    def lines(self, top: int = 25) -> list[str]:
        coverage = self.sampled_seconds / self.cpu_seconds if self.cpu_seconds else 0.0
        out = [f"{' '.join(self.command)}: exit {self.returncode}, {self.wall_seconds / 60:.1f} min wall, "
               f"CPU {self.cpu_seconds:,.0f} s (exact), {self.sampled_seconds:,.0f} s seen by sampling "
               f"({coverage:.0%})", "", "CPU by program (seconds, share of the seen, processes)"]
        out += [f"  {cpu:8,.0f}  {cpu / max(self.sampled_seconds, 1e-9):4.0%}  {count:5d}  {name}"
                for name, cpu, count in self.by_program[:top]]
        out += ["", "terraform and the provider by where they ran (seconds, processes)"]
        out += [f"  {cpu:8,.0f}  {count:5d}  {name}" for name, cpu, count in self.by_place[:top]]
        return out


def summarize(command: list[str], returncode: int, wall: float, cpu: float, samples: list[Sample]) -> Report:
    seconds: defaultdict[str, float] = defaultdict(float)
    counts: Counter[str] = Counter()
    place_seconds: defaultdict[str, float] = defaultdict(float)
    place_counts: Counter[str] = Counter()
    for sample in samples:
        name = program(sample)
        seconds[name] += sample.cpu
        counts[name] += 1
        if name == "aws provider" or name.startswith("terraform"):
            where = place(sample)
            place_seconds[where] += sample.cpu
            place_counts[where] += 1
    return Report(command=command, returncode=returncode, wall_seconds=wall, cpu_seconds=cpu,
                  sampled_seconds=sum(seconds.values()),
                  by_program=[(n, s, counts[n]) for n, s in most_first(seconds)],
                  by_place=[(n, s, place_counts[n]) for n, s in most_first(place_seconds)])


def most_first(seconds: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(seconds.items(), key=lambda item: -item[1])


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(command: list[str], interval: float) -> Report:
    before = children_cpu()
    started = time.monotonic()
    process = subprocess.Popen(command)
    sampler = Sampler(process.pid, interval)
    sampler.start()
    try:
        returncode = process.wait()
    finally:
        sampler.stop()
    return summarize(command, returncode, time.monotonic() - started, children_cpu() - before,
                     list(sampler.seen.values()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Where a command's CPU goes (default: make test).")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between samples (default 0.5)")
    parser.add_argument("--json", type=Path, help="also write the report here as JSON")
    parser.add_argument("--top", type=int, default=25, help="rows per table (default 25)")
    parser.add_argument("command", nargs="*", help="the command (after --; default: make test)")
    args = parser.parse_args(argv)
    command = args.command or DEFAULT_COMMAND
    try:
        report = run(command, args.interval)
    except OSError as error:  # the command cannot be started: one line, as the other commands say it
        print(f"error: cannot run {command[0]}: {error.strerror or error}", file=sys.stderr)
        return 2
    print("\n".join(report.lines(args.top)))
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=1))
    return report.returncode


if __name__ == "__main__":
    sys.exit(main())
