"""The CLI edge: what Ctrl-C says about the index; the tests' no-network guard in subprocesses;
`python -m qabot`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from qabot import store
from qabot.cli import cli
from qabot.config import Settings
from tests.conftest import QABOT


def interrupt(*args: Any, **kw: Any) -> None:
    raise KeyboardInterrupt


def test_ctrl_c_just_after_the_commit_says_the_new_index_is_in_use(
    real_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "_collect_garbage", interrupt)  # runs right after the rename
    result = CliRunner().invoke(cli, ["index"], obj={})
    assert result.exit_code == 130
    assert "new index generation was committed" in result.output
    assert "as it was before" not in result.output
    assert store.load_manifest(real_settings.index) is not None


def test_ctrl_c_before_the_commit_says_the_index_is_unchanged(
    real_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store.Writer, "merge", interrupt)  # a first run commits a merge of all it read
    result = CliRunner().invoke(cli, ["index"], obj={})
    assert result.exit_code == 130
    assert "Interrupted; the index is as it was before this run." in result.output
    assert store.load_manifest(real_settings.index) is None


@pytest.mark.parametrize("python", [sys.executable, "qabot's interpreter"])
def test_a_subprocess_cannot_reach_the_network_either(python: str) -> None:
    """The no-network guard holds in child processes: plain Python, and the interpreter the
    `qabot` console script runs under (its shebang), both start with tests/netguard on PYTHONPATH."""
    if python != sys.executable:
        python = Path(QABOT[0]).read_text().splitlines()[0].removeprefix("#!").strip()
    code = "import socket; socket.create_connection(('192.0.2.1', 80), timeout=5)"
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ))
    assert proc.returncode != 0
    assert "RuntimeError: test tried to reach the network: ('192.0.2.1', 80)" in proc.stderr, proc.stderr
    loopback = "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); " \
               "socket.create_connection(s.getsockname(), timeout=5)"
    assert subprocess.run([python, "-c", loopback], env=dict(os.environ), timeout=60).returncode == 0


def test_python_dash_m_qabot_runs_the_cli() -> None:
    """`python -m qabot` is the `qabot` console script's CLI, for when the script is not on PATH."""
    proc = subprocess.run([sys.executable, "-m", "qabot", "--help"], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: python -m qabot [OPTIONS] COMMAND [ARGS]...")
    listed = proc.stdout.split("\nCommands:\n", 1)[1].splitlines()
    assert sorted(line.split()[0] for line in listed if line.strip()) == sorted(cli.commands)
