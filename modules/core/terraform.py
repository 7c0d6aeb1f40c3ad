"""Running the `terraform` CLI from the project's tooling and tests.

Machines without registry access keep the aws provider in a filesystem mirror.
`TF_PROVIDER_MIRROR` names it; when unset, the well-known places are searched.
Every terraform subprocess gets an explicit `TF_CLI_CONFIG_FILE` (the ambient one
may point at a file that does not exist), which uses the mirror when there is
one and the public registry otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

PROVIDER_DIR = Path("registry.terraform.io") / "hashicorp" / "aws"
MIRROR_CANDIDATES = (
    Path("/opt/tf-plugins"),
    Path.home() / ".terraform.d" / "plugins",
    Path("/usr/share/terraform/plugins"),
    Path("/usr/local/share/terraform/plugins"),
)


def find_mirror() -> Path | None:
    """The filesystem mirror holding hashicorp/aws, from `TF_PROVIDER_MIRROR` or the machine."""
    configured = os.environ.get("TF_PROVIDER_MIRROR")
    if configured:
        return Path(configured)
    for candidate in MIRROR_CANDIDATES:
        if (candidate / PROVIDER_DIR).is_dir():
            return candidate
    return None


@dataclass(frozen=True)
class TerraformCli:
    """The terraform binary plus a CLI config file written for this run."""

    binary: str
    config_file: Path
    mirror: Path | None

    @classmethod
    def create(cls, workdir: Path) -> TerraformCli | None:
        binary = shutil.which("terraform")
        if binary is None:
            return None
        mirror = find_mirror()
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "terraform.rc"
        cache = workdir / "plugin-cache"
        cache.mkdir(exist_ok=True)
        if mirror is not None:
            config.write_text(
                'provider_installation {\n'
                f'  filesystem_mirror {{\n    path    = "{mirror}"\n    include = ["registry.terraform.io/*/*"]\n  }}\n'
                '  direct {\n    exclude = ["registry.terraform.io/*/*"]\n  }\n'
                '}\n'
            )
        else:
            config.write_text(f'plugin_cache_dir = "{cache}"\n')
        return cls(binary=binary, config_file=config, mirror=mirror)

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "TF_CLI_CONFIG_FILE": str(self.config_file),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
        })
        env.update(extra or {})
        return env

    def start(self, workdir: Path, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """terraform as a child process in a session of its own (a terminal's Ctrl-C reaches only the
        caller, which decides what to forward), output and errors on one text pipe."""
        return subprocess.Popen(
            [self.binary, *args], cwd=workdir, env=self.env(extra_env), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, start_new_session=True,
        )

    def run(self, workdir: Path, *args: str, extra_env: dict[str, str] | None = None,
            timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args], cwd=workdir, env=self.env(extra_env), capture_output=True, text=True,
            timeout=timeout,
        )
