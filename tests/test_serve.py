"""`qabot serve` over real HTTP: the real command in a subprocess on a free port, asked with httpx."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from qabot.cli import cli
from qabot.config import PathSettings, Settings
from qabot.errors import BadQuestion
from qabot.manifest import Manifest
from qabot.retrieve import MAX_QUESTION_CHARS, check_question
from qabot.store import load_manifest
from tests import shard_corpus
from tests.conftest import NETGUARD, QABOT, QUESTION, indexed, make_seeds, run_qabot

AS_OF = "2026-12-01"  # fixed, so ages and "today" can't change between two replies
GENERATION = "x-qabot-generation"

# The article a commit adds in the tests below, and the question only it answers.
PARROTS = (" date 2024-03-01 Rangers in Tasmania counted 412 orange-bellied parrots returning to "
           "Melaleuca this spring, the highest tally in a decade.\nThe recovery team credits captive "
           "breeding and new feeding stations along the migration route.\n")
PARROT_QUESTION = "How many orange-bellied parrots returned to Melaleuca?"


# ---------------------------------------------------------------- harness


def _env() -> dict[str, str]:
    """The environment a server runs in: offline, the no-network guard first on its path (a
    module fixture starts before the autouse fixtures that set both)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    path = env.get("PYTHONPATH", "").split(os.pathsep)
    if str(NETGUARD) not in path:
        env["PYTHONPATH"] = os.pathsep.join([str(NETGUARD), *filter(None, path)])
    return env


@contextlib.contextmanager
def serving(index: Path, log: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`qabot serve --index INDEX --port 0` running; yields its URL, read from its start line.
    On leaving it is stopped with SIGTERM, and must have logged no traceback."""
    with log.open("w") as out:
        proc = subprocess.Popen([*QABOT, "serve", "--index", str(index), "--port", "0", *args],
                                stdout=out, stderr=subprocess.STDOUT, env=env or _env())
    try:
        deadline = time.monotonic() + 90
        while not (found := re.search(r" on (http://\S+), docs at /docs", log.read_text())):
            assert proc.poll() is None, f"qabot serve exited {proc.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield found.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "Traceback" not in log.read_text(), log.read_text()


def ask(url: str, body: object, token: str | None = None,
        client: httpx.Client | None = None) -> httpx.Response:
    """POST /ask with `body` as JSON (ASCII-escaped: a lone surrogate travels as \\ud800)."""
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    content = json.dumps(body).encode()
    if client is None:
        return httpx.post(f"{url}/ask", content=content, headers=headers, timeout=120)
    return client.post(f"{url}/ask", content=content, headers=headers)


def copy_index(corpus: Settings, dest: Path) -> Settings:
    """A private copy of the module's seeds and index (the encoder hard-linked), for tests that commit."""
    seeds = shutil.copytree(corpus.seeds, dest / "seeds")

    def copy(src: str, dst: str) -> None:
        if "/encoder-" in src:
            os.link(src, dst)
        else:
            shutil.copy2(src, dst)

    index = shutil.copytree(corpus.index, dest / "embeddings", copy_function=copy)
    return Settings(paths=PathSettings(seeds=Path(seeds), index=Path(index)))


def commit_parrots(settings: Settings) -> None:
    """What a user does: a new article in the seeds folder, then `qabot index` (run_index)."""
    from qabot.indexer import run_index

    (settings.seeds / "parrots.txt").write_text(PARROTS, encoding="utf-8")
    report = run_index(settings, log=lambda msg: None)
    changed = (report.added, report.updated, report.removed, report.committed)
    assert changed == (1, 0, 0, True), report.summary()


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, encoder_cache: Path) -> Settings:
    """The shipped seed and the fixture articles, indexed once with the real model."""
    return indexed(make_seeds(tmp_path_factory.mktemp("serve") / "seeds"), encoder_cache)


@pytest.fixture(scope="module")
def server(corpus: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`qabot serve` on the module's index, with the default host and no token."""
    with serving(corpus.index, tmp_path_factory.mktemp("log") / "serve.log") as url:
        yield url


# ---------------------------------------------------------------- the API


@pytest.mark.parametrize("options", [
    {},
    {"k": 2, "mode": "bm25", "since": "2020-01-01", "until": "2025-12-31"},
    {"mode": "dense", "k": 1},
])
def test_ask_returns_exactly_what_qabot_ask_json_prints(server: str, corpus: Settings,
                                                        options: dict[str, object]) -> None:
    flags = [f"--{name.replace('_', '-')}" if name != "k" else "-k" for name in options]
    argv = [str(a) for flag, value in zip(flags, options.values(), strict=True) for a in (flag, value)]
    cli_run = run_qabot("ask", "--json", "--index", str(corpus.index), "--as-of", AS_OF, *argv, QUESTION)
    assert cli_run.returncode == 0, cli_run.stderr

    response = ask(server, {"question": QUESTION, "as_of": AS_OF, **options})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.text + "\n" == cli_run.stdout  # byte for byte: one serializer
    reply = response.json()
    assert reply["kind"] == "answer" and reply["answer"]["doc_id"] == "000_510ad1cb4fc50a43.txt"
    assert len(reply["passages"]) <= int(options.get("k", 5))  # type: ignore[call-overload]
    assert response.headers[GENERATION] == str(committed(corpus.index).generation)


def test_health_tells_the_generation_counts_and_newest_article(server: str, corpus: Settings) -> None:
    manifest = committed(corpus.index)
    dates = [re.match(r"\s*date (\d{4}-\d{2}-\d{2})", f.read_text(encoding="utf-8-sig"))
             for f in corpus.seeds.rglob("*.txt")]

    response = httpx.get(f"{server}/health")

    assert response.status_code == 200, response.text
    assert response.json() == {"generation": manifest.generation, "articles": manifest.article_count,
                               "passages": manifest.passage_count,
                               "newest": max(m.group(1) for m in dates if m)}
    assert manifest.article_count == len(dates) and manifest.passage_count > manifest.article_count
    assert response.headers[GENERATION] == str(manifest.generation)


def committed(index: Path) -> Manifest:
    """The index's current manifest (there is one)."""
    manifest = load_manifest(index)
    assert manifest is not None
    return manifest


def _message(question: str) -> str:
    with pytest.raises(BadQuestion) as err:
        check_question(question)
    return str(err.value)


@pytest.mark.parametrize(("body", "says"), [
    ({"question": ""}, _message("")),
    ({"question": "   "}, _message("")),
    ({"question": "x" * (MAX_QUESTION_CHARS + 1)}, _message("x" * (MAX_QUESTION_CHARS + 1))),
    ({"question": "\ud800 who?"}, _message("\ud800 who?")),
    ({"question": QUESTION, "since": "2024-05-01", "until": "2024-01-31"},
     "since 2024-05-01 is later than until 2024-01-31, so no article could match; swap them"),
    ({}, "question is missing"),
    ({"question": 42}, "question: Input should be a valid string"),
    ({"question": QUESTION, "k": 0}, "k: Input should be greater than or equal to 1"),
    ({"question": QUESTION, "k": 101}, "k: Input should be less than or equal to 100"),
    ({"question": QUESTION, "k": "5"}, "k: Input should be a valid integer"),
    ({"question": QUESTION, "mode": "fuzzy"}, "mode: Input should be 'hybrid', 'dense' or 'bm25'"),
    ({"question": QUESTION, "since": "2024-02-30"}, "since: '2024-02-30' is no date"),
    ({"question": QUESTION, "as_of": 1700000000}, "as_of: should be a date written YYYY-MM-DD"),
    ({"question": QUESTION, "until": "2024-01-31T00:00"}, "until: should be a date written YYYY-MM-DD"),
    ({"question": QUESTION, "top_k": 3}, "unknown field 'top_k'; the fields are question, k, mode"),
    (["not", "an", "object"], "the body: Input should be a valid dictionary"),
])
def test_a_bad_question_or_field_is_a_400_with_the_reason(server: str, body: object, says: str) -> None:
    response = ask(server, body)

    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith(says), response.json()
    assert set(response.json()) == {"error"}


def test_a_body_that_is_not_json_is_a_400(server: str) -> None:
    response = httpx.post(f"{server}/ask", content=b'{"question": "who', timeout=60,
                          headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json()["error"].startswith("the body is not valid JSON")


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/ask", 405), ("GET", "/nothing", 404),
                                                    ("POST", "/health", 405)])
def test_a_wrong_path_or_method_is_a_json_error_too(server: str, method: str, path: str, status: int) -> None:
    response = httpx.request(method, f"{server}{path}", timeout=60)

    assert response.status_code == status
    assert response.json()["error"].startswith(f"{method} {path}: ")


def test_small_talk_is_answered_as_by_qabot_ask(server: str) -> None:
    response = ask(server, {"question": "thanks!", "as_of": AS_OF})

    assert response.status_code == 200
    assert response.json()["kind"] == "small_talk" and response.json()["message"]


def test_the_openapi_schema_is_at_docs(server: str) -> None:
    page = httpx.get(f"{server}/docs")
    schema = httpx.get(f"{server}/openapi.json").json()

    assert page.status_code == 200 and "swagger" in page.text.lower()
    assert set(schema["paths"]) == {"/ask", "/health"}
    assert set(schema["paths"]["/ask"]) == {"post"} and set(schema["paths"]["/health"]) == {"get"}
    fields = schema["components"]["schemas"]["AskBody"]["properties"]
    assert list(fields) == ["question", "k", "mode", "since", "until", "as_of", "partial"]
    assert {"400", "401", "503"} <= set(schema["paths"]["/ask"]["post"]["responses"])


def test_it_listens_on_loopback_by_default(server: str) -> None:
    assert server.startswith("http://127.0.0.1:")


# ---------------------------------------------------------------- token, no index, port, extra


def test_with_qabot_api_token_set_every_request_needs_the_bearer_token(
    corpus: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = "s3cret-" + "x" * 40
    monkeypatch.setenv("QABOT_API_TOKEN", token)
    with serving(corpus.index, tmp_path / "serve.log") as url:
        refused = [ask(url, {"question": QUESTION}), ask(url, {"question": QUESTION}, token="s3cret-"),
                   ask(url, {"question": QUESTION}, token=token + "y"), ask(url, {"question": ""}),
                   httpx.get(f"{url}/health"),
                   httpx.get(f"{url}/health", headers={"Authorization": f"Basic {token}"})]
        answered = ask(url, {"question": QUESTION, "as_of": AS_OF}, token=token)
        health = httpx.get(f"{url}/health", headers={"Authorization": f"Bearer {token}"})
        schema = httpx.get(f"{url}/openapi.json")

    for response in refused:
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
        assert "QABOT_API_TOKEN" in response.json()["error"] and token not in response.text
    assert answered.status_code == 200 and answered.json()["kind"] == "answer"
    assert health.status_code == 200
    assert schema.status_code == 200  # the schema is no secret
    assert token not in (tmp_path / "serve.log").read_text()


def test_an_empty_token_is_refused_at_start(corpus: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QABOT_API_TOKEN", " ")
    proc = run_qabot("serve", "--index", str(corpus.index), "--port", "0")

    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: QABOT_API_TOKEN is set but empty") and proc.stderr.count("\n") == 1


def test_no_index_yet_is_a_503_until_one_is_committed(corpus: Settings, tmp_path: Path) -> None:
    empty = tmp_path / "empty-index"
    empty.mkdir()
    with serving(empty, tmp_path / "serve.log") as url:
        before = [ask(url, {"question": QUESTION}), ask(url, {"question": "hello"}),
                  httpx.get(f"{url}/health")]
        # A commit as the indexer makes one: every file first, manifest.json last.
        shutil.copytree(corpus.index, empty, dirs_exist_ok=True, copy_function=os.link,
                        ignore=lambda at, names: ["manifest.json"] if Path(at) == corpus.index else [])
        shutil.copy2(corpus.index / "manifest.json", empty / "manifest.json.tmp")
        os.replace(empty / "manifest.json.tmp", empty / "manifest.json")
        after = ask(url, {"question": QUESTION, "as_of": AS_OF})

    for response in before:
        assert response.status_code == 503, response.text
        assert response.json() == {"error": f"no index in {empty}; run `qabot index` to build it"}
        assert response.headers["retry-after"]
    assert after.status_code == 200 and after.json()["kind"] == "answer"
    assert "no usable index yet" in (tmp_path / "serve.log").read_text()


@pytest.mark.parametrize("ray", [(), ("--ray",)], ids=["one process", "ray"])
def test_a_port_in_use_is_one_clear_error(corpus: Settings, ray: tuple[str, ...]) -> None:
    """With --ray too, and before a Ray is started for nothing."""
    if ray:
        pytest.importorskip("ray.serve")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_qabot("serve", "--index", str(corpus.index), "--port", str(port), *ray)

    assert proc.returncode == 1
    assert proc.stderr == (f"Error: port {port} on 127.0.0.1 is already in use (another qabot serve?); "
                           "stop it or pick another with --port\n")


def test_without_the_serve_extra_serve_says_how_to_install_and_ask_and_the_bot_still_work(
    corpus: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Shadow FastAPI and uvicorn with modules that fail as a missing package does.
    missing = tmp_path / "no-serve-extra"
    missing.mkdir()
    for name in ("fastapi", "uvicorn"):
        message = f"No module named '{name}'"
        (missing / f"{name}.py").write_text(f"raise ImportError({message!r}, name={name!r})\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(missing), os.environ["PYTHONPATH"]]))

    serve = run_qabot("serve", "--index", str(corpus.index))
    asked = run_qabot("ask", "--json", "--index", str(corpus.index), QUESTION)
    shadowed = subprocess.run([sys.executable, "-c", "import uvicorn"], capture_output=True, text=True,
                              env=dict(os.environ), timeout=60)
    imports = subprocess.run([sys.executable, "-c", "import qabot.bot, qabot.cli, qabot.answer"],
                             capture_output=True, text=True, env=dict(os.environ), timeout=60)

    assert shadowed.returncode != 0 and "No module named 'uvicorn'" in shadowed.stderr
    assert serve.returncode == 1
    assert serve.stderr == ("Error: qabot serve needs FastAPI and uvicorn, which are not installed: "
                            "pip install 'qabot[serve]'\n")
    assert asked.returncode == 0 and json.loads(asked.stdout)["kind"] == "answer", asked.stderr
    assert imports.returncode == 0, imports.stderr


def test_serve_help_teaches_the_api() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"], obj={})

    assert result.exit_code == 0
    said = " ".join(result.output.split())  # as wrapped for any width
    for taught in ("POST /ask", "GET /health", "/docs", "QABOT_API_TOKEN", "400", "401", "503",
                   "pip install 'qabot[serve]'", "--host", "--port", "X-Qabot-Generation", "curl"):
        assert taught in said, taught


# ---------------------------------------------------------------- following commits


def test_a_commit_by_the_indexer_reaches_the_server_without_a_restart(
    corpus: Settings, tmp_path: Path,
) -> None:
    settings = copy_index(corpus, tmp_path)
    question = {"question": PARROT_QUESTION, "as_of": AS_OF}
    with serving(settings.index, tmp_path / "serve.log") as url:
        before, health_before = ask(url, question), httpx.get(f"{url}/health").json()
        commit_parrots(settings)
        after, health_after = ask(url, question), httpx.get(f"{url}/health").json()

    generation = committed(settings.index).generation
    assert before.status_code == after.status_code == 200
    assert "parrots.txt" not in [p["doc_id"] for p in before.json()["passages"]]
    assert after.json()["passages"][0]["doc_id"] == "parrots.txt"
    assert "412 orange-bellied parrots" in after.json()["passages"][0]["text"]
    assert int(before.headers[GENERATION]) == health_before["generation"] < generation
    assert int(after.headers[GENERATION]) == health_after["generation"] == generation
    assert health_after["articles"] == health_before["articles"] + 1


def test_fifty_concurrent_clients_during_a_commit_never_see_a_mixed_generation(
    corpus: Settings, tmp_path: Path,
) -> None:
    settings = copy_index(corpus, tmp_path)
    question = {"question": PARROT_QUESTION, "as_of": AS_OF}
    seen: list[tuple[int, str]] = []
    errors: list[BaseException] = []
    committed = threading.Event()
    go = threading.Barrier(51)

    def client() -> None:
        try:
            with httpx.Client(timeout=120) as http:
                go.wait()
                while True:  # ask until one reply started after the commit
                    done = committed.is_set()
                    response = ask(url, question, client=http)
                    assert response.status_code == 200, response.text
                    seen.append((int(response.headers[GENERATION]), response.text))
                    if done:
                        return
        except BaseException as err:  # reported below, not lost in the thread
            errors.append(err)

    with serving(settings.index, tmp_path / "serve.log") as url:
        old = ask(url, question)
        clients = [threading.Thread(target=client) for _ in range(50)]
        for thread in clients:
            thread.start()
        go.wait()
        time.sleep(0.5)  # all 50 asking before the commit starts
        commit_parrots(settings)
        committed.set()
        for thread in clients:
            thread.join(timeout=300)
        new = ask(url, question)

    assert errors == []
    expected = {int(old.headers[GENERATION]): old.text, int(new.headers[GENERATION]): new.text}
    assert len(expected) == 2 and "parrots.txt" in new.text and "parrots.txt" not in old.text
    # Every reply is, byte for byte, the reply of the generation its header names.
    assert all(text == expected[generation] for generation, text in seen)
    generations = [generation for generation, _ in seen]
    assert set(generations) == set(expected)  # the commit landed while they asked
    assert len(seen) >= 100


# ---------------------------------------------------------------- on Ray, from the command line


def raylets() -> set[str]:
    """The pids of the raylets running on this machine (one a Ray node)."""
    found = subprocess.run(["pgrep", "-f", "ray/core/src/ray/raylet/raylet"], capture_output=True, text=True)
    return set(found.stdout.split())


def test_qabot_serve_ray_answers_as_one_process_and_stops_its_ray_on_sigterm(
    tmp_path_factory: pytest.TempPathFactory, encoder_cache: Path
) -> None:
    """`qabot serve --ray` as a user runs it: the command starts a Ray of its own, serves the
    index in two shards, answers as one process does, and on SIGTERM stops the Ray it started
    (tests/test_serve_ray.py covers the shards on a three-node cluster)."""
    pytest.importorskip("ray.serve")
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
            got = httpx.post(f"{url}/ask", json={"question": question, "as_of": shard_corpus.AS_OF},
                             timeout=60)
            assert got.status_code == 200, got.text
            assert got.text == shard_corpus.local_json(settings, question, "hybrid"), question
        assert ask(url, {"question": "  "}).status_code == 400
    assert "in 2 shard(s) x 1 on Ray Serve" in (root / "serve.log").read_text()
    # SIGTERM stopped the Ray it started (its raylet exits just after the command), no other.
    deadline = time.monotonic() + 30
    while raylets() - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not raylets() - before
