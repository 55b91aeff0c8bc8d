"""The CLI edge: what Ctrl-C says about the index."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from qabot import store
from qabot.cli import cli
from qabot.config import Settings


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
    monkeypatch.setattr(store, "commit", interrupt)
    result = CliRunner().invoke(cli, ["index"], obj={})
    assert result.exit_code == 130
    assert "Interrupted; the index is as it was before this run." in result.output
    assert store.load_manifest(real_settings.index) is None
