"""Synthesize every environment in `environments/` into `cdktf.out/`.

    python main.py                 # all environments
    ENVIRONMENTS=dev python main.py  # just some (comma-separated)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from modules.synth import synth_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(synth_main(Path(__file__).resolve().parent))
