"""Helpers shared by the benchmark scripts (run as scripts, so this folder is on sys.path)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

# ../shared beside the checkout, as on every developer machine and in CI.
DEFAULT_SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "scifact"


def log(msg: str) -> None:
    """Progress on stderr, so stdout holds only the report."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def qabot_exe() -> Path:
    """The `qabot` console script installed next to this interpreter (the project's venv)."""
    exe = Path(sys.executable).with_name("qabot")
    if not exe.is_file():
        raise SystemExit(f"no qabot next to {sys.executable}; run with .venv/bin/python")
    return exe


def clean_env() -> dict[str, str]:
    """This environment minus QABOT_*, so only the explicit flags configure qabot, and minus
    PYTHONDONTWRITEBYTECODE: an installed qabot has its bytecode (pip compiles it; a first run
    writes it), and compiling 30 modules from source on every start is ~70 ms no user pays."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("QABOT_") and k != "PYTHONDONTWRITEBYTECODE"}
