"""Where the project and its environment files are, and the stacks they synthesize."""

from __future__ import annotations

from pathlib import Path

from modules.environment import load_environments
from modules.layout import stack_names

PROJECT = Path(__file__).resolve().parent.parent.parent
ENVIRONMENTS_DIR = PROJECT / "environments"
# Every stack of the shipped environments (tests parametrized by stack).
STACKS = stack_names(load_environments(ENVIRONMENTS_DIR))
