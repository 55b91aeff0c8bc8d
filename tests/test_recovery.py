"""Recovery from damage: a damaged manifest or generation is repaired by `qabot index`, and every
failure a user can cause ends in one `Error:` line, never a traceback."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from qabot import catalog, store
from qabot.config import SearchOptions, Settings
from qabot.errors import ManifestDamaged
from qabot.indexer import run_index
from qabot.reader import Retriever
from qabot.retrieve import search
from tests.conftest import QABOT, QUESTION, SHIPPED_SEED, run_qabot
from tests.fakes import FakeEmbedder, fake_corpus, index


def quiet(msg: str) -> None:
    pass


@pytest.fixture
def env(tmp_path: Path) -> tuple[Settings, FakeEmbedder]:
    return fake_corpus(tmp_path / "seeds"), FakeEmbedder()


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
    report = run_index(settings, log=messages.append, embedder=fake)
    assert fake.embedded == [] and report.unchanged == 4
    assert any("recovered generation 2" in m for m in messages), messages
    snap = store.load_snapshot(settings.index)
    assert snap.manifest.passage_count == committed.passage_count and len(snap.articles) == 4
    assert (
        search(Retriever(settings.index, embedder=fake), "penguins antarctica", SearchOptions(k=1),
               floor=False)[0].doc_id
        == "new.txt"
    )

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
    assert store.load_snapshot(settings.index).manifest.generation == 2


def test_an_error_that_is_not_damage_is_not_taken_for_a_rebuild(
    env: tuple[Settings, FakeEmbedder], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, fake = env
    index(settings, fake)
    before = (settings.index / "manifest.json").read_text()

    def bug(self: catalog.Stack) -> dict[str, str]:
        raise TypeError("a bug")

    monkeypatch.setattr(catalog.Stack, "hashes", bug)
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


# 8. A damaged generation, and errors that were tracebacks


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _forget_sizes(index_dir: Path) -> None:
    """Make the manifest one written before file sizes were recorded: headers must tell."""
    path = index_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["sizes"]
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("legacy", [False, True], ids=["sizes", "headers"])
@pytest.mark.parametrize("name", ["vectors.faiss", "bm25.npz", "passages.sqlite", "rows.npz"])
def test_a_truncated_file_is_one_error_line_and_qabot_index_repairs_it(
    real_settings: Settings, name: str, legacy: bool
) -> None:
    assert run_qabot("index").returncode == 0
    if legacy:
        _forget_sizes(real_settings.index)
    _truncate(real_settings.index / "gen-000001" / name)
    err = one_error_line(run_qabot("ask", QUESTION))
    assert f"damaged (gen-000001/{name}" in err and "run `qabot index` to repair it" in err
    proc = run_qabot("index")
    assert proc.returncode == 0, proc.stderr
    assert "The index is damaged" in proc.stderr and "Indexed 5 articles" in proc.stdout
    proc = run_qabot("ask", "--json", "-k", "1", QUESTION)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["passages"][0]["doc_id"] == SHIPPED_SEED.name


def test_a_damaged_generation_falls_back_to_the_previous_one_and_embeds_only_the_difference(
    env: tuple[Settings, FakeEmbedder],
) -> None:
    settings, fake = env
    index(settings, fake)
    (settings.seeds / "new.txt").write_text(" date 2024-02-01 Penguins waddle in Antarctica.")
    index(settings, fake)
    _truncate(settings.index / "gen-000002" / "vectors.faiss")
    fake.embedded.clear()
    messages: list[str] = []
    report = run_index(settings, log=messages.append, embedder=fake)
    assert any("recovered generation 1" in m for m in messages), messages
    assert report.committed and report.added == 1 and report.unchanged == 3
    assert fake.embedded == ["Penguins waddle in Antarctica."]
    snap = store.load_snapshot(settings.index)
    assert len(snap.articles) == 4 and snap.vectors.ntotal == snap.manifest.passage_count


@pytest.mark.parametrize("name", ["bm25.npz", "bm25-vocab.json"])
def test_a_lost_bm25_part_is_rebuilt_from_the_stored_passages_without_embedding(
    env: tuple[Settings, FakeEmbedder], name: str
) -> None:
    settings, fake = env
    index(settings, fake)  # one generation: nothing older to go back to
    lexical = store.load_snapshot(settings.index, for_merge=True).lexical
    assert lexical is not None
    vocab, ids = dict(lexical.parts[0].vocab), lexical.ids.tolist()  # copies: the arrays map the file
    del lexical
    (settings.index / "gen-000001" / name).unlink()
    (settings.index / "gen-000001" / name).write_bytes(b"")
    fake.embedded.clear()
    messages: list[str] = []
    report = run_index(settings, log=messages.append, embedder=fake)
    assert report.committed and report.unchanged == 3 and fake.embedded == []
    assert any("rebuilding its BM25 part" in m for m in messages), messages
    after = store.load_snapshot(settings.index, for_merge=True).lexical
    assert after is not None and after.parts[0].vocab == vocab and after.ids.tolist() == ids
    hits = search(Retriever(settings.index, embedder=fake), "football cup final",
                  SearchOptions(k=1, mode="bm25"), floor=False)
    assert hits[0].doc_id == "1.txt"


def test_a_deleted_model_export_is_one_error_line_and_qabot_index_exports_it_again(
    real_settings: Settings,
) -> None:
    assert run_qabot("index").returncode == 0
    (encoder,) = real_settings.index.glob("encoder-*")
    shutil.rmtree(encoder)
    err = one_error_line(run_qabot("ask", QUESTION))
    assert "is missing" in err and "run `qabot index`" in err
    proc = run_qabot("index", timeout=300)
    assert proc.returncode == 0 and "exporting it again" in proc.stderr, proc.stderr
    assert (encoder / "model.onnx").is_file()
    assert run_qabot("ask", QUESTION).returncode == 0


def _unshare(script: str) -> subprocess.CompletedProcess[str]:
    """Run a shell script in its own mount namespace (to mount a small or read-only folder)."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("cannot make a mount namespace here")
    return subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ))


def test_a_full_disk_is_one_error_line_and_leaves_the_index_and_no_partial_generation(
    real_settings: Settings, tmp_path: Path
) -> None:
    assert run_qabot("index").returncode == 0
    small = tmp_path / "small"
    small.mkdir()
    manifest = json.loads((real_settings.index / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps(dict(manifest, encoder=None)))
    (real_settings.seeds / SHIPPED_SEED.name).unlink()  # a removal: a commit without the model
    qabot = shlex.join(QABOT)
    proc = _unshare(
        f"mount -t tmpfs -o size=1m tmpfs {small} || exit 99; "
        f"cp -r {real_settings.index}/gen-000001 {tmp_path}/manifest.json {small}/; "
        f"dd if=/dev/zero of={small}/fill bs=4k count=1000 2>/dev/null; "
        f"QABOT_INDEX={small} {qabot} index; echo rc=$? >&2; ls -a {small} >&2"
    )
    if "rc=" not in proc.stderr:
        pytest.skip(f"cannot mount a small file system here: {proc.stderr}")
    err, rc, *listing = proc.stderr.strip().splitlines()
    assert rc == "rc=1" and "Traceback" not in proc.stderr, proc.stderr
    assert err.startswith("Error: No space left on device") and "free some space" in err
    assert "the index is as it was before this run" in err
    assert "gen-000002" not in listing and "gen-000001" in listing


def test_a_read_only_index_folder_is_one_error_line(real_settings: Settings) -> None:
    assert run_qabot("index").returncode == 0
    (real_settings.seeds / "new.txt").write_text(" date 2024-02-01 Penguins waddle in Antarctica.")
    idx = real_settings.index
    proc = _unshare(
        f"mount --bind {idx} {idx} && mount -o remount,bind,ro {idx} || exit 99; {shlex.join(QABOT)} index"
    )
    if proc.returncode == 99:
        pytest.skip(f"cannot mount read-only here: {proc.stderr}")
    err = one_error_line(proc)
    assert "Read-only file system" in err and "writable folder" in err


def test_an_index_path_that_is_a_file_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "a.txt").write_text("Penguins waddle in Antarctica.")
    (tmp_path / "afile").write_text("not a folder")
    for args in (["ask", QUESTION], ["index"]):
        proc = run_qabot(*args, "--index", str(tmp_path / "afile"))
        err = one_error_line(proc)
        assert "is a file, not a folder" in err and "QABOT_INDEX" in err


def test_an_index_deleted_while_answering_finishes_the_reply_it_began(real_settings: Settings) -> None:
    """The real CLI, with the index removed once the snapshot and the question encoder are loaded
    (removed before the encoder loads, it would be the missing model export of the test above). A
    reply is pinned to the generation it began on (Retriever.pinned: no answer mixes two), so it
    is finished from what is loaded and open, with no traceback (the next snapshot finds no index
    and says to run `qabot index`: tests/test_store.py)."""
    assert run_qabot("index").returncode == 0
    code = (
        "import shutil, sys\n"
        "from qabot.embed import OnnxEmbedder\n"
        "real = OnnxEmbedder.__init__\n"
        "def doomed(self, *a, **k):\n"
        "    real(self, *a, **k)\n"
        f"    shutil.rmtree({str(real_settings.index)!r})\n"
        "    print('deleted', file=sys.stderr)\n"
        "OnnxEmbedder.__init__ = doomed\n"
        "from qabot.cli import main\n"
        f"sys.argv = ['qabot', 'ask', {QUESTION!r}]\n"
        "main()\n"
    )
    py = str(Path(QABOT[0]).parent / "python")
    proc = subprocess.run([py, "-c", code], capture_output=True, text=True, env=dict(os.environ))
    assert proc.stderr == "deleted\n", proc.stderr  # the encoder was loaded first; no traceback
    assert proc.returncode == 0 and "Azerbaijan" in proc.stdout.split("\n\n")[0], proc.stdout
    assert not real_settings.index.exists()


def test_a_question_that_is_not_utf8_is_one_error_line() -> None:
    proc = subprocess.run([*QABOT, "ask", os.fsdecode(b"caf\xe9 au lait?")], capture_output=True, text=True,
                          env=dict(os.environ))
    err = one_error_line(proc)
    assert "not valid UTF-8" in err
