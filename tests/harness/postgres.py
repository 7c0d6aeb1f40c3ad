"""A throwaway PostgreSQL server for the tests: initdb in a temporary directory, a free loopback port.

PostgreSQL refuses to run as root, and CI runs the tests as root: then the server
runs as the `postgres` user (Debian's package creates it) or `nobody`, through
`runuser`, in a directory that user owns. Clients are `psql` subprocesses (no driver
is installed in the project's virtualenv). Authentication is `trust` on 127.0.0.1:
the tests check roles and grants, not passwords (RDS's IAM tokens cannot be made here).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def find_bin_dir() -> Path | None:
    """Where `initdb` and `pg_ctl` are: on PATH, or Debian's /usr/lib/postgresql/<major>/bin (newest)."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    return Path(candidates[-1]).parent if candidates else None


def _server_user() -> str | None:
    """None when not root (the server runs as us); else a user PostgreSQL accepts to run as."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL as")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresServer:
    bin_dir: Path
    psql_path: str
    directory: Path
    port: int
    user: str | None

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def _as_server_user(self, *command: str) -> list[str]:
        return ["runuser", "-u", self.user, "--", *command] if self.user else list(command)

    @classmethod
    def start(cls, bin_dir: Path) -> PostgresServer:
        user = _server_user()
        directory = Path(tempfile.mkdtemp(prefix="pytest-postgres-"))
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(directory, entry.pw_uid, entry.pw_gid)
        psql = str(bin_dir / "psql") if (bin_dir / "psql").exists() else (shutil.which("psql") or "psql")
        server = cls(bin_dir=bin_dir, psql_path=psql, directory=directory, port=_free_port(), user=user)
        subprocess.run(
            server._as_server_user(str(bin_dir / "initdb"), "-D", str(server.data), "-U", "postgres",
                                   "--auth=trust", "--encoding=UTF8", "--no-sync"),
            check=True, capture_output=True, text=True, cwd=directory,
        )
        options = f"-p {server.port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            server._as_server_user(str(bin_dir / "pg_ctl"), "-D", str(server.data), "-l",
                                   str(directory / "server.log"), "-o", options, "-w", "start"),
            check=True, capture_output=True, text=True, cwd=directory,
        )
        return server

    def stop(self) -> None:
        subprocess.run(self._as_server_user(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast",
                                            "-w", "stop"), capture_output=True, text=True, cwd=self.directory)
        shutil.rmtree(self.directory, ignore_errors=True)

    def psql(self, sql: str, *, user: str = "postgres", database: str = "postgres",
             check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `sql` (stops at the first error); rows come back unaligned, `|`-separated."""
        result = subprocess.run(
            [self.psql_path, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
             "-U", user, "-d", database, "-f", "-"],
            input=sql, capture_output=True, text=True, env={**os.environ, "PGCONNECT_TIMEOUT": "10"},
        )
        if check and result.returncode != 0:
            raise AssertionError(f"psql as {user} failed ({result.returncode}):\n{result.stderr}\nSQL:\n{sql}")
        return result
