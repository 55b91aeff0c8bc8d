"""Incremental indexing logic with a fake embedder that counts what it embeds."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from qabot import bm25, corpus, headline, store
from qabot.config import (
    ChunkSettings,
    ModelSettings,
    PathSettings,
    SearchOptions,
    SegmentSettings,
    Settings,
    VectorSettings,
)
from qabot.errors import IndexLocked, NothingToIndex
from qabot.indexer import run_index
from qabot.manifest import from_json
from qabot.reader import Retriever
from qabot.retrieve import search
from tests.conftest import QABOT
from tests.fakes import FakeEmbedder, fake_corpus, index


def quiet(msg: str) -> None:
    pass


@pytest.fixture
def env(tmp_path: Path) -> tuple[Settings, FakeEmbedder]:
    return fake_corpus(tmp_path / "seeds"), FakeEmbedder()


def ask(settings: Settings, fake: FakeEmbedder, q: str, k: int = 3) -> list[str]:
    return [
        p.doc_id for p in search(Retriever(settings.index, embedder=fake), q, SearchOptions(k=k), floor=False)
    ]


def test_first_run_embeds_everything_then_nothing(env: tuple[Settings, FakeEmbedder]) -> None:
    settings, fake = env
    report = index(settings, fake)
    assert report.committed and report.added == 3 and report.passage_count > 3
    assert len(fake.embedded) == report.passage_count
    before = len(fake.embedded)
    report = index(settings, fake)
    assert not report.committed and report.unchanged == 3
    assert len(fake.embedded) == before
    assert "0 added, 0 updated, 0 removed, 3 unchanged, 0 skipped" in report.summary()


def test_only_new_and_changed_articles_have_their_headline_worked_out(
    env: tuple[Settings, FakeEmbedder], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The headline rules cost ~2.5 ms an article: a run over 100,000 unchanged seed files must
    not pay them for every file (it did: 4.5 minutes for a no-op)."""
    settings, fake = env
    index(settings, fake)
    parsed: list[str] = []
    real = corpus.headline

    def counting(text: str, body_start: int) -> str:
        parsed.append(text[body_start : body_start + 20])
        return real(text, body_start)

    monkeypatch.setattr(corpus, "headline", counting)
    assert not index(settings, fake).committed and parsed == []  # a no-op reads no headline
    (settings.seeds / "new.txt").write_text(" date 2024-02-01 Penguins waddle in Antarctica.")
    report = index(settings, fake)
    assert report.added == 1 and parsed == ["Penguins waddle in A"]  # the new article's alone
    stored = store.load_snapshot(settings.index).articles["new.txt"]
    assert stored.title == "Penguins waddle in Antarctica."


def test_add_change_delete(env: tuple[Settings, FakeEmbedder]) -> None:
    settings, fake = env
    index(settings, fake)
    kept_ids = store.load_snapshot(settings.index).articles["1.txt"].ids

    fake.embedded.clear()
    new = " date 2024-02-01 Penguins waddle in Antarctica. Penguins swim fast."
    (settings.seeds / "new.txt").write_text(new)
    report = index(settings, fake)
    assert report.added == 1 and report.unchanged == 3
    assert fake.embedded == ["Penguins waddle in Antarctica. Penguins swim fast."]
    assert ask(settings, fake, "penguins antarctica")[0] == "new.txt"

    fake.embedded.clear()
    (settings.seeds / "0.txt").write_text(" date 2024-01-01 Giraffes eat leaves from tall trees.")
    report = index(settings, fake)
    assert report.updated == 1 and fake.embedded == ["Giraffes eat leaves from tall trees."]
    assert ask(settings, fake, "giraffes tall trees")[0] == "0.txt"
    snap = store.load_snapshot(settings.index)
    assert not any("volcano" in p.text for p in snap.passages.values())

    (settings.seeds / "2.txt").unlink()
    report = index(settings, fake)
    assert report.removed == 1
    snap = store.load_snapshot(settings.index)
    assert "2.txt" not in snap.articles
    assert all(p.doc_id != "2.txt" for p in snap.passages.values())
    assert "2.txt" not in ask(settings, fake, "bank interest rate", k=10)
    # the untouched article kept its passages and ids throughout
    assert snap.articles["1.txt"].ids == kept_ids
    assert snap.vectors.ntotal == len(snap.passages) == snap.manifest.passage_count


def test_settings_change_and_rebuild_flag_reembed_everything(env: tuple[Settings, FakeEmbedder]) -> None:
    settings, fake = env
    first = index(settings, fake)
    messages: list[str] = []
    fake.embedded.clear()
    changed = Settings(paths=PathSettings(seeds=settings.seeds, index=settings.index),
                       model=ModelSettings(name="fake-embedder"),
                       chunking=ChunkSettings(max_tokens=64, overlap_tokens=4))
    report = run_index(changed, log=messages.append, embedder=fake)
    assert report.committed and report.added == 3
    assert any("chunker settings changed" in m for m in messages)
    assert len(fake.embedded) == report.passage_count != first.passage_count

    fake.embedded.clear()
    messages.clear()
    report = run_index(changed, rebuild=True, log=messages.append, embedder=fake)
    assert report.added == 3 and len(fake.embedded) == report.passage_count
    assert any("--rebuild" in m for m in messages)


def test_new_title_rules_rewrite_titles_and_bm25_without_embedding(
    env: tuple[Settings, FakeEmbedder], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, fake = env
    with monkeypatch.context() as m:  # an index written under older title rules
        m.setattr(headline, "TITLE_VERSION", 0)
        m.setattr("qabot.corpus.headline", lambda text, start: "Zzyzx " + text[start : start + 12])
        index(settings, fake)
    old = store.load_snapshot(settings.index, for_merge=True)
    assert old.articles["0.txt"].title == "Zzyzx Story about "
    assert old.lexical is not None and any(w.startswith("zzyzx") for w in old.lexical.parts[0].vocab)

    fake.embedded.clear()
    messages: list[str] = []
    report = run_index(settings, log=messages.append, embedder=fake)
    assert report.committed and report.unchanged == 3 and fake.embedded == []
    assert any("titles of 3 articles" in msg for msg in messages)
    snap = store.load_snapshot(settings.index, for_merge=True)
    assert snap.manifest.build.title_version == headline.TITLE_VERSION
    assert snap.articles["0.txt"].title == "Story about volcano lava Iceland."
    assert snap.articles["1.txt"].ids == old.articles["1.txt"].ids
    # BM25 holds what a fresh build of the same seeds holds: no trace of the old titles.
    fresh_settings = settings.at(index=settings.index.parent / "fresh")
    index(fresh_settings, FakeEmbedder())
    fresh = store.load_snapshot(fresh_settings.index).lexical
    assert snap.lexical is not None and fresh is not None
    (part,), (fresh_part,) = snap.lexical.parts, fresh.parts
    assert set(part.vocab) == set(fresh_part.vocab)
    assert bm25.idf(snap.lexical, list(part.vocab)) == pytest.approx(bm25.idf(fresh, list(part.vocab)))

    report = index(settings, fake)
    assert not report.committed and fake.embedded == []


def test_bad_seed_is_skipped_and_a_broken_known_file_keeps_its_last_version(
    env: tuple[Settings, FakeEmbedder],
) -> None:
    settings, fake = env
    (settings.seeds / "bad.txt").write_bytes(b"\xff\xfe bad bytes")
    report = index(settings, fake)
    assert report.added == 3 and [b.doc_id for b in report.skipped] == ["bad.txt"]
    (settings.seeds / "1.txt").write_bytes(b"\x00\x01 half-written binary")
    report = index(settings, fake)
    assert not report.committed and {b.doc_id for b in report.skipped} == {"bad.txt", "1.txt"}
    assert "1.txt" in store.load_snapshot(settings.index).articles


def test_nothing_indexable_fails_and_leaves_the_index_alone(env: tuple[Settings, FakeEmbedder]) -> None:
    settings, fake = env
    index(settings, fake)
    before = (settings.index / "manifest.json").read_text()
    for f in settings.seeds.iterdir():
        f.unlink()
    (settings.seeds / "x.txt").write_bytes(b"")
    with pytest.raises(NothingToIndex, match="1 unreadable"):
        index(settings, fake)
    assert (settings.index / "manifest.json").read_text() == before


def test_a_crash_before_the_manifest_rename_leaves_the_previous_generation(
    env: tuple[Settings, FakeEmbedder], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, fake = env
    index(settings, fake)
    before = json.loads((settings.index / "manifest.json").read_text())
    (settings.seeds / "new.txt").write_text("Penguins waddle in Antarctica.")

    commit = settings.index / "manifest.json"
    tried: list[Path] = []

    class StoreOs:
        """os as qabot.store sees it, but the rename onto the index's manifest (the commit) fails.
        Only store's own name is patched: os.replace stays whole for everything else."""

        def __getattr__(self, name: str) -> Any:
            return getattr(os, name)

        @staticmethod
        def replace(src: Any, dst: Any) -> None:
            if Path(dst) == commit:
                tried.append(Path(dst))
                raise OSError("disk full")
            os.replace(src, dst)

    monkeypatch.setattr(store, "os", StoreOs())
    with pytest.raises(OSError, match="disk full"):
        index(settings, fake)
    monkeypatch.undo()
    assert tried == [commit]  # it failed at the commit rename, after every other file was written
    assert json.loads((settings.index / "manifest.json").read_text()) == before
    snap = store.load_snapshot(settings.index)
    assert "new.txt" not in snap.articles and snap.vectors.ntotal == before["passage_count"]
    assert index(settings, fake).added == 1


def test_old_generations_are_collected_but_the_previous_one_is_kept(
    env: tuple[Settings, FakeEmbedder],
) -> None:
    settings, fake = env
    settings = replace(settings, segments=SegmentSettings(max_count=2))
    for i in range(4):
        (settings.seeds / f"extra{i}.txt").write_text(f"Extra story number {i}.")
        index(settings, fake)
    current = store.load_manifest(settings.index)
    assert current is not None and current.generation == 5  # 4 runs, one of which merged
    copy = settings.index / f"gen-{current.generation - 1:06d}" / "manifest.json"
    previous = from_json(json.loads(copy.read_text()))
    # what the current and the previous generation name (their segments may lie in older
    # folders) stays, for readers that opened the previous one; every other folder is gone
    gens = {p.name for p in settings.index.glob("gen-*")}
    assert gens == current.folders | previous.folders and len(gens) < current.generation


def test_second_writer_waits_or_refuses(env: tuple[Settings, FakeEmbedder]) -> None:
    settings, fake = env
    index(settings, fake)
    lock = store.WriteLock(settings.index)
    with lock, pytest.raises(IndexLocked, match="another qabot"):
        index(settings, fake, wait=False)
    messages: list[str] = []
    done = threading.Event()
    (settings.seeds / "n.txt").write_text("Penguins.")

    def writer() -> None:
        run_index(settings, log=messages.append, embedder=fake)
        done.set()

    with lock:
        t = threading.Thread(target=writer)
        t.start()
        time.sleep(0.5)
        assert not done.is_set() and any("waiting" in m for m in messages)
    t.join(10)
    assert done.is_set() and "n.txt" in store.load_snapshot(settings.index).articles


def test_vector_index_type_follows_the_corpus_size(tmp_path: Path) -> None:
    def name(i: int) -> str:  # three words of its own: the fake embedder hashes words into 256 dims
        return f"x{i}a y{i}b z{i}c"

    seeds = tmp_path / "seeds"
    seeds.mkdir()

    def write(n: int) -> None:
        for i in range(n):
            w = name(i)
            (seeds / f"{i:03d}.txt").write_text(
                f" date 2024-02-{i % 28 + 1:02d} Report {w}. " + f"The {w} story goes on. " * 2
            )

    def layout() -> dict:
        committed = store.load_manifest(settings.index)
        assert committed is not None
        return committed.layout.as_dict()

    def findable(n: int, nprobe: int = 0, dense_floor: float = 1.0) -> None:
        """Each sampled article first for its own words; in dense mode on an approximate index
        (nprobe below nlist) at least `dense_floor` of them, as a neighbour may sit in a cell
        left unscanned."""
        r = Retriever(settings.index, embedder=fake, nprobe=nprobe)
        hits: dict[str, list[bool]] = {mode: [] for mode in ("dense", "hybrid", "bm25")}
        for i in range(0, n, 7):
            w = name(i)
            for mode, found in hits.items():
                found.append(
                    [p.doc_id for p in search(r, f"{w} story", SearchOptions(k=3, mode=mode), floor=False)][0]
                    == f"{i:03d}.txt"
                )
        assert all(hits["hybrid"]) and all(hits["bm25"])
        assert sum(hits["dense"]) >= dense_floor * len(hits["dense"]), hits["dense"]

    write(90)
    settings = Settings(paths=PathSettings(seeds=seeds, index=tmp_path / "idx"),
                        model=ModelSettings(name="fake-embedder"),
                        chunking=ChunkSettings(max_tokens=24, overlap_tokens=4),
                        vectors=VectorSettings(ann_threshold=160))
    fake = FakeEmbedder(dim=256)
    report = index(settings, fake)
    assert layout()["type"] == "flat" and report.passage_count < 160
    findable(90)
    write(200)  # grows past the threshold: approximate, every passage still found
    report = index(settings, fake)
    assert report.passage_count >= 160 and layout()["type"] == "ivf" and layout()["nlist"] >= 4
    # At this size the default nprobe is every cell (min(nlist, 32)), which is exact; the
    # approximate path is a query-time nprobe below nlist, here half the cells.
    findable(200)
    findable(200, nprobe=layout()["nlist"] // 2, dense_floor=0.9)
    # nprobe is a query-time setting: the retriever applies it, the committed index is untouched
    narrow = Retriever(settings.index, embedder=fake, nprobe=1)
    assert "nprobe" not in layout()  # not part of the committed index: read at query time
    assert len(search(narrow, f"{name(7)} story", SearchOptions(k=3, mode="dense"), floor=False)) == 3
    for f in sorted(seeds.iterdir())[60:]:  # shrinks below half of it: exact again
        f.unlink()
    report = index(settings, fake)
    assert report.passage_count < 80 and layout()["type"] == "flat"
    findable(60)
    # a new codec applies at the next run without re-embedding anything (nor rebuilding BM25)
    before = len(fake.embedded)
    said: list[str] = []
    sq8 = replace(settings, vectors=replace(settings.vectors, codec="sq8"))
    report = run_index(sq8, log=said.append, embedder=fake)
    assert report.committed and len(fake.embedded) == before and layout()["codec"] == "sq8"
    assert any("Re-indexing" in line for line in said) and not any("BM25" in line for line in said)
    said.clear()  # while new BM25 settings say so, and still embed nothing
    assert run_index(replace(sq8, bm25=replace(sq8.bm25, k1=1.2)), log=said.append, embedder=fake).committed
    assert len(fake.embedded) == before and any("Building the BM25 index" in line for line in said)
    settings = replace(settings, bm25=replace(settings.bm25, k1=1.2))
    findable(60)
    assert not index(replace(settings, vectors=replace(settings.vectors, codec="sq8")), fake).committed


def test_codec_pq_on_a_small_index_stays_exact_until_it_can_train(tmp_path: Path) -> None:
    """pq learns 256 centroids per sub-quantizer and FAISS refuses fewer training points: a small
    index with codec "pq" is exact float32, says why, and turns pq once it has 256 passages."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()

    def write(n: int) -> None:
        for i in range(n):
            (seeds / f"{i:03d}.txt").write_text(f" date 2024-02-01 Report x{i}a y{i}b. The x{i}a story.")

    settings = Settings(paths=PathSettings(seeds=seeds, index=tmp_path / "idx"),
                        model=ModelSettings(name="fake-embedder"), vectors=VectorSettings(codec="pq"))
    fake = FakeEmbedder(dim=256)
    write(40)
    said: list[str] = []
    report = run_index(settings, log=said.append, embedder=fake)
    committed = store.load_manifest(settings.index)
    assert report.committed and committed is not None and committed.layout.codec == "none"
    assert any("stay float32 (exact) until the index has 256 passages" in line for line in said), said
    r = Retriever(settings.index, embedder=fake)
    assert search(r, "x7a y7b story", SearchOptions(k=1, mode="dense"), floor=False)[0].doc_id == "007.txt"
    write(300)
    assert run_index(settings, log=quiet, embedder=fake).passage_count >= 256
    committed = store.load_manifest(settings.index)
    assert committed is not None and committed.layout.codec == "pq"


def test_a_run_that_waited_for_the_lock_indexes_the_folder_as_it_is_after_the_wait(
    real_settings: Settings,
) -> None:
    """`qabot index` started while another writer holds the lock reads the seeds after the wait:
    an article deleted (or edited) meanwhile must not come back in its old form."""
    settings = real_settings
    run_index(settings, log=quiet)
    before = store.load_snapshot(settings.index).articles
    gone, edited = sorted(before)[:2]
    with store.WriteLock(settings.index):
        proc = subprocess.Popen([*QABOT, "index"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ))
        assert proc.stderr is not None
        waited = proc.stderr.readline()  # blocks until the subprocess says it waits
        assert "waiting" in waited, waited
        (settings.seeds / gone).unlink()
        (settings.seeds / edited).write_text(" date 2024-05-05 Walruses nap on ice floes.")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    after = store.load_snapshot(settings.index)
    assert gone not in after.articles
    assert after.articles[edited].title == "Walruses nap on ice floes."
    assert "1 updated, 1 removed" in out


def test_a_folder_that_cannot_be_listed_keeps_its_articles(
    env: tuple[Settings, FakeEmbedder], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, fake = env
    (settings.seeds / "locked").mkdir()
    (settings.seeds / "locked" / "a.txt").write_text("Otters hold hands while sleeping.")
    (settings.seeds / "locked" / "b.txt").write_text("Beavers build dams of branches.")
    index(settings, fake)
    real_scandir = os.scandir

    def scandir(path: Any) -> Any:  # chmod 000 does not stop root: refuse in-process
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    (settings.seeds / "0.txt").unlink()
    report = index(settings, fake)
    assert report.removed == 1 and [b.doc_id for b in report.skipped] == ["locked"]
    assert {"locked/a.txt", "locked/b.txt"} <= set(store.load_snapshot(settings.index).articles)


def test_an_article_replaced_by_a_link_out_of_the_seeds_folder_is_removed(
    env: tuple[Settings, FakeEmbedder], tmp_path: Path
) -> None:
    settings, fake = env
    index(settings, fake)
    secret = tmp_path / "secret.txt"
    secret.write_text("The launch codes are 0000.")
    (settings.seeds / "1.txt").unlink()
    (settings.seeds / "1.txt").symlink_to(secret)
    report = index(settings, fake)
    assert report.removed == 1 and "outside the seeds folder" in report.skipped[0].reason
    snap = store.load_snapshot(settings.index)
    assert "1.txt" not in snap.articles
    assert not any("launch" in p.text for p in snap.passages.values())


def test_files_over_max_file_mb_are_skipped(env: tuple[Settings, FakeEmbedder]) -> None:
    settings, fake = env
    (settings.seeds / "big.txt").write_text("Logs. " * 100_000)  # 0.6 MB
    report = index(replace(settings, paths=replace(settings.paths, max_file_mb=0.5)), fake)
    assert report.added == 3 and [b.doc_id for b in report.skipped] == ["big.txt"]
    assert "over the 0.5 MB limit" in report.skipped[0].reason


def test_a_seeds_folder_whose_path_is_not_utf8_can_be_indexed(
    env: tuple[Settings, FakeEmbedder], tmp_path: Path
) -> None:
    settings, fake = env
    try:
        seeds = Path(os.fsdecode(os.fsencode(tmp_path) + b"/nouvelles-\xe9t\xe9"))
        settings.seeds.rename(seeds)
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    report = index(settings.at(seeds=seeds), fake)
    assert report.added == 3
    committed = store.load_manifest(settings.index)
    assert committed is not None and committed.build.seeds is not None
    assert committed.build.seeds.endswith("nouvelles-\\xe9t\\xe9")
