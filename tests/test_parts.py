"""A segment's parts: a toy part registered from outside is written with every new segment,
merged, deleted through and checked, and an index written before it gets it, all without a line
of store.py knowing it (only parts.PARTS is changed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from qabot import parts, store
from qabot.catalog import Deleted
from qabot.config import SegmentSettings, Settings
from qabot.errors import IndexDamaged
from qabot.indexer import run_index
from qabot.manifest import Build, Segment
from tests.fakes import FakeEmbedder, fake_corpus, index


class Lengths(parts.Part[np.ndarray, "np.ndarray | None"]):
    """Each passage's length in characters: a (passage id, length) row per passage, by id.
    Derived (the catalog holds the texts), like BM25; it counts the texts it had to read."""

    name = label = "lengths"
    files = ("lengths.npy",)
    derived = True

    def __init__(self) -> None:
        self.read_back = 0  # passages whose length a merge took from the catalog, not a part

    def write(self, folder: Path, job: parts.Write) -> int:
        return self._save(folder, self._new(job))

    def merge(self, folder: Path, job: parts.Merge) -> int:
        loaded = job.values(self)
        kept = job.catalog.rows.ids
        known = np.concatenate([np.zeros((0, 2), np.int64), *(t for t in loaded if t is not None)])
        have = kept[np.isin(kept, known[:, 0])]
        rows = [known[np.isin(known[:, 0], have)], self._new(job)]
        missing = kept[~np.isin(kept, known[:, 0])]
        if len(missing):  # a segment without the part: from the stored texts
            self.read_back += len(missing)
            rows.append(np.array([[p.id, len(p.text)] for p in job.catalog.passages(missing.tolist())],
                                 dtype=np.int64))
        return self._save(folder, np.concatenate(rows))

    def load(self, paths: Sequence[Path], segment: Segment, build: Build, how: parts.Reading) -> np.ndarray:
        table: np.ndarray = np.load(paths[0], allow_pickle=False)
        return table

    def count(self, loaded: np.ndarray) -> int:
        return len(loaded)

    def stack(self, segments: Sequence[parts.Loaded], deleted: Deleted, build: Build) -> np.ndarray | None:
        tables = [x.get(self) for x in segments]
        if any(t is None for t in tables):
            return None
        table = np.concatenate([t for t in tables if t is not None])
        return table[~np.isin(table[:, 0], deleted.passages)]

    @staticmethod
    def _new(job: parts.Write) -> np.ndarray:
        recs = [p for _, ps in job.batch.changes.articles for p in ps]
        return np.array([[p.id, len(p.text)] for p in recs], dtype=np.int64).reshape(-1, 2)

    def _save(self, folder: Path, table: np.ndarray) -> int:
        np.save(folder / self.files[0], table[np.argsort(table[:, 0], kind="stable")])
        return len(table)


@pytest.fixture
def lengths(monkeypatch: pytest.MonkeyPatch) -> Lengths:
    part = Lengths()
    monkeypatch.setattr(parts, "PARTS", (*parts.PARTS, part))
    return part


@pytest.fixture
def env(tmp_path: Path) -> tuple[Settings, FakeEmbedder]:
    settings = fake_corpus(tmp_path / "seeds")
    for i in range(6):
        (settings.seeds / f"extra{i}.txt").write_text(f" date 2024-02-0{i + 1} Extra story {i}, otters. " * 3)
    return settings, FakeEmbedder()


def live_lengths(settings: Settings) -> dict[int, int]:
    snap = store.load_snapshot(settings.index)
    return {p.id: len(p.text) for p in snap.passages.many(snap.rows.ids.tolist())}


def stacked(settings: Settings, part: Lengths) -> dict[int, int]:
    table = store.load_snapshot(settings.index).stack(part)
    assert table is not None
    return {int(i): int(n) for i, n in table}


def test_a_registered_part_is_written_merged_deleted_through_and_checked(
    env: tuple[Settings, FakeEmbedder], lengths: Lengths,
) -> None:
    settings, fake = env
    settings = replace(settings, segments=SegmentSettings(max_count=8))
    index(settings, fake)
    first = store.load_manifest(settings.index)
    assert first is not None and first.segments[0].files_of("lengths") == ("gen-000001/lengths.npy",)
    assert stacked(settings, lengths) == live_lengths(settings)

    # written with each new segment; a changed and a removed article leave through the deletion list
    (settings.seeds / "new.txt").write_text(" date 2024-03-01 Walruses sunbathe on the beach.")
    index(settings, fake)
    (settings.seeds / "0.txt").write_text(" date 2024-01-01 Giraffes eat leaves from tall trees.")
    (settings.seeds / "extra1.txt").unlink()
    index(settings, fake)
    manifest = store.load_manifest(settings.index)
    assert manifest is not None and len(manifest.segments) == 3 and manifest.deleted is not None
    assert [s.files_of("lengths") for s in manifest.segments] == [
        ("gen-000001/lengths.npy",), ("gen-000002/lengths.npy",), ("gen-000003/lengths.npy",)]
    deleted = store.load_snapshot(settings.index).deleted.passages
    assert len(deleted) and not set(deleted.tolist()) & set(stacked(settings, lengths))
    assert stacked(settings, lengths) == live_lengths(settings)

    # merged: the small segments alone, then all, from the loaded parts (no text read back)
    with store.open_writer(settings, log=lambda msg: None) as writer:
        small = writer.merge_small()
        assert len(small.segments) == 2 and small.segments[1].files_of("lengths") is not None
        assert stacked(settings, lengths) == live_lengths(settings)
        merged = writer.merge()
    assert len(merged.segments) == 1 and merged.deleted is None and lengths.read_back == 0
    table = store.load_snapshot(settings.index).stack(lengths)
    assert table is not None and len(table) == merged.passage_count == merged.segments[0].passage_count
    assert stacked(settings, lengths) == live_lengths(settings)

    # checked: damage is found and named; the next run goes back to the previous generation
    (lost,) = merged.segments[0].files_of("lengths") or ()
    (settings.index / lost).write_bytes(b"oops")
    problems = store.check_generation(settings.index, merged)
    assert [(p.part, p.what.split(" ")[0]) for p in problems] == [("lengths", lost)]
    with pytest.raises(IndexDamaged, match=f"damaged \\({lost} has 4 bytes"):
        store.load_snapshot(settings.index)
    said: list[str] = []
    assert not run_index(settings, log=said.append, embedder=fake).committed
    assert any(f"recovered generation {small.generation}" in m for m in said), said
    assert stacked(settings, lengths) == live_lengths(settings)


def test_a_damaged_derived_part_is_rebuilt_from_the_stored_texts(
    env: tuple[Settings, FakeEmbedder], lengths: Lengths,
) -> None:
    settings, fake = env
    index(settings, fake)  # one generation: nothing older to go back to
    before = stacked(settings, lengths)
    (settings.index / "gen-000001" / "lengths.npy").unlink()
    fake.embedded.clear()
    said: list[str] = []
    report = run_index(settings, log=said.append, embedder=fake)
    assert report.committed and fake.embedded == [] and any("rebuilding its lengths part" in m for m in said)
    assert stacked(settings, lengths) == before == live_lengths(settings)
    assert lengths.read_back == len(before)  # every length taken from the catalog's texts


def test_an_index_written_before_a_part_existed_gets_it_at_the_next_run(
    env: tuple[Settings, FakeEmbedder], monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, fake = env
    index(settings, fake)
    (settings.seeds / "new.txt").write_text(" date 2024-03-01 Walruses sunbathe on the beach.")
    index(settings, fake)
    before = store.load_manifest(settings.index)
    assert before is not None and len(before.segments) == 2 and store.complete(before)
    part = Lengths()
    monkeypatch.setattr(parts, "PARTS", (*parts.PARTS, part))
    assert not store.complete(before)
    assert store.load_snapshot(settings.index).stack(part) is None  # readers do without it meanwhile
    fake.embedded.clear()
    report = index(settings, fake)
    assert report.committed and fake.embedded == []  # a merge that builds it from the stored texts
    after = store.load_manifest(settings.index)
    assert after is not None and len(after.segments) == 1 and store.complete(after)
    assert stacked(settings, part) == live_lengths(settings)
    assert not index(settings, fake).committed
