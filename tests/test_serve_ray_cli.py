"""`qabot serve --ray` as a user runs it: the command starts a Ray of its own on this machine,
serves the index in two shards, answers over HTTP as one process does, and on SIGTERM stops the
Ray it started (tests/test_serve_ray.py covers the shards on a three-node cluster)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests import shard_corpus
from tests.test_serve import _env, serving
from tests.test_serve_ray import AS_OF, local_json

pytest.importorskip("ray.serve")


def raylets() -> set[str]:
    """The pids of the raylets running on this machine (one a Ray node)."""
    found = subprocess.run(["pgrep", "-f", "ray/core/src/ray/raylet/raylet"], capture_output=True, text=True)
    return set(found.stdout.split())


def test_qabot_serve_ray_answers_as_one_process_and_stops_its_ray_on_sigterm(
    tmp_path_factory: pytest.TempPathFactory, encoder_cache: Path
) -> None:
    root = tmp_path_factory.mktemp("ray-cli")
    settings = shard_corpus.build(root, encoder_cache)
    before = raylets()
    env = {**_env(), "RAY_USAGE_STATS_ENABLED": "0"}
    # --port 0: Serve's proxy needs a number; the command picks a free one and prints it.
    with serving(settings.index, root / "serve.log", "--ray", "--shards", "2", "--no-access-log",
                 env=env) as url:
        assert not url.endswith(":0"), url
        assert raylets() - before  # a Ray of its own
        for question in shard_corpus.QUESTIONS[:3]:
            got = httpx.post(f"{url}/ask", json={"question": question, "as_of": AS_OF}, timeout=60)
            assert got.status_code == 200, got.text
            assert got.text == local_json(settings, question, "hybrid"), question
        assert httpx.post(f"{url}/ask", json={"question": "  "}, timeout=60).status_code == 400
    assert "in 2 shard(s) x 1 on Ray Serve" in (root / "serve.log").read_text()
    assert not raylets() - before  # SIGTERM stopped the Ray it started, and only that one
