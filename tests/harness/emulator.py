"""Start and stop the emulator, and run Terraform against it."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Emulator:
    endpoint: str
    process: subprocess.Popen[bytes]
    log: Path

    def boto3_client(self, service: str, region: str = "eu-west-1"):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            service, endpoint_url=self.endpoint, region_name=region,
            aws_access_key_id="test", aws_secret_access_key="test",
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_emulator(log: Path, timeout: float = 60) -> Emulator:
    """moto server (with the project's fixes) on a free 127.0.0.1 port, ready to serve."""
    port = free_port()
    handle = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.harness.moto_server", "--port", str(port)],
        cwd=PROJECT, stdout=handle, stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):
                return Emulator(endpoint, process, log)
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"moto server did not answer on {endpoint} within {timeout} s")


def emulator_env() -> dict[str, str]:
    """Credentials for terraform's backend and provider when they talk to the emulator."""
    return {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "eu-west-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_PROFILE": "",
    }
