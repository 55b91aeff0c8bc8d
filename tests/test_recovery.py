"""Recovery from damage: a damaged manifest or generation is repaired by `qabot index`, and every
failure a user can cause ends in one `Error:` line, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qabot import store
from qabot.config import Settings
from qabot.errors import ManifestDamaged
from qabot.indexer import run_index
from qabot.retrieve import Retriever, search
from tests.conftest import QUESTION, SHIPPED_SEED, run_qabot
from tests.fakes import FakeEmbedder


def quiet(msg: str) -> None:
    pass


@pytest.fixture
def env(tmp_path: Path) -> tuple[Settings, FakeEmbedder]:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for i, topic in enumerate(["volcano lava Iceland", "football cup final", "bank interest rate"]):
        (seeds / f"{i}.txt").write_text(
            f" date 2024-01-0{i + 1} Story about {topic}. " + f"More on {topic} here. " * 5
        )
    return Settings(seeds=seeds, index=tmp_path / "idx", model="fake-embedder", chunk_tokens=24,
                    chunk_overlap=4), FakeEmbedder()


def index(settings: Settings, fake: FakeEmbedder, **kw: object):  # type: ignore[no-untyped-def]
    return run_index(settings, log=quiet, progress=False, embedder=fake, **kw)  # type: ignore[arg-type]


def one_error_line(proc: object) -> str:
    """The stderr of a run that failed the way users should see failures."""
    assert proc.returncode not in (0, None), proc.stdout  # type: ignore[attr-defined]
    err: str = proc.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in err, err
    assert err.startswith("Error: ") and len(err.strip().splitlines()) == 1, err
    return err


# 7. A damaged manifest.json


def test_a_damaged_manifest_is_recovered_from_the_newest_generation_without_re_embedding(
    env: tuple[Settings, FakeEmbedder],
) -> None:
    settings, fake = env
    index(settings, fake)
    (settings.seeds / "new.txt").write_text(" date 2024-02-01 Penguins waddle in Antarctica.")
    committed = index(settings, fake)
    (settings.index / "manifest.json").write_text('{"format": "qabot-index", "format_ver')
    with pytest.raises(ManifestDamaged, match="not valid JSON.*qabot index"):
        store.load_snapshot(settings.index)

    fake.embedded.clear()
    messages: list[str] = []
    report = run_index(settings, log=messages.append, progress=False, embedder=fake)
    assert fake.embedded == [] and report.unchanged == 4
    assert any("recovered generation 2" in m for m in messages), messages
    snap = store.load_snapshot(settings.index)
    assert snap.manifest["passage_count"] == committed.passage_count and len(snap.articles) == 4
    assert search(Retriever(settings.index, embedder=fake), "penguins antarctica", 1)[0].doc_id == "new.txt"

    # and what changed after that generation is all that gets embedded
    (settings.seeds / "new.txt").write_text(" date 2024-02-02 Giraffes eat leaves.")
    (settings.index / "manifest.json").write_bytes(b"\xff\x00 not text")
    fake.embedded.clear()
    report = index(settings, fake)
    assert report.updated == 1 and fake.embedded == ["Giraffes eat leaves."]


def test_rebuild_after_a_damaged_manifest_starts_clean_and_succeeds(
    env: tuple[Settings, FakeEmbedder],
) -> None:
    settings, fake = env
    first = index(settings, fake)
    (settings.index / "manifest.json").write_text("[]")
    fake.embedded.clear()
    report = index(settings, fake, rebuild=True)
    assert report.committed and report.added == 3 and len(fake.embedded) == first.passage_count
    assert len(store.load_snapshot(settings.index).articles) == 3


def test_a_damaged_manifest_and_no_intact_generation_rebuilds(env: tuple[Settings, FakeEmbedder]) -> None:
    settings, fake = env
    index(settings, fake)
    for copy in settings.index.glob("gen-*/manifest.json"):  # as an index from before the copies
        copy.unlink()
    (settings.index / "manifest.json").write_text("")
    report = index(settings, fake)
    assert report.committed and report.added == 3
    assert store.load_snapshot(settings.index).manifest["generation"] == 2


def test_an_error_that_is_not_damage_is_not_taken_for_a_rebuild(
    env: tuple[Settings, FakeEmbedder], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, fake = env
    index(settings, fake)
    before = (settings.index / "manifest.json").read_text()

    def bug(self: store.Catalog) -> dict[str, str]:
        raise TypeError("a bug")

    monkeypatch.setattr(store.Catalog, "hashes", bug)
    fake.embedded.clear()
    with pytest.raises(TypeError, match="a bug"):
        index(settings, fake)
    assert fake.embedded == [] and (settings.index / "manifest.json").read_text() == before


def test_cli_index_recovers_a_damaged_manifest(real_settings: Settings) -> None:
    assert run_qabot("index").returncode == 0
    manifest = real_settings.index / "manifest.json"
    manifest.write_text(manifest.read_text()[:40])
    err = one_error_line(run_qabot("ask", QUESTION))
    assert "damaged" in err and "qabot index" in err
    proc = run_qabot("index")
    assert proc.returncode == 0, proc.stderr
    assert "recovered generation 1" in proc.stderr and "Embedding" not in proc.stderr
    assert "5 unchanged" in proc.stdout
    proc = run_qabot("ask", "--json", "-k", "1", QUESTION)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["passages"][0]["doc_id"] == SHIPPED_SEED.name
