"""`qabot` command line: parse → call the core → format. Errors become one `Error:` line."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .config import SEARCH_MODES, Settings, load_settings
from .errors import BadQuestion, QabotError
from .progress import Reporter  # standard library only: cheap to import

if TYPE_CHECKING:  # the real imports stay inside the commands: `qabot --help` must be instant
    from .api import Backend
    from .reader import Retriever


class _Group(click.Group):
    """Turns domain errors and Ctrl-C into a message and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except QabotError as err:
            click.echo(f"Error: {err}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo(_interrupted(ctx.obj or {}), err=True)
            sys.exit(130)
        except OSError as err:  # the machine's doing (disk full, read-only...), not the user's
            click.echo(f"Error: {_os_error(err, ctx.obj or {})}", err=True)
            sys.exit(1)


_OS_HINTS = {
    errno.ENOSPC: "free some space and run it again",
    errno.EDQUOT: "free some space (the disk quota is used up) and run it again",
    errno.EROFS: "point --index / QABOT_INDEX at a writable folder",
    errno.EACCES: "check the permissions, or point --index / QABOT_INDEX at a folder you can write",
    errno.EPERM: "check the permissions, or point --index / QABOT_INDEX at a folder you can write",
}


def _os_error(err: OSError, obj: dict[str, Any]) -> str:
    """One line for an error of the file system: what failed, on what, what to do, and what
    became of the index (a commit is one rename, so it is the old one or a whole new one)."""
    what = err.strerror or str(err)
    if err.filename is not None:
        what += f": {os.fsdecode(err.filename)!r}"
    hint = _OS_HINTS.get(err.errno or 0, "check that path and run it again")
    state = ""
    if "index" in obj:
        from .store import manifest_stamp

        state = ("; the index is as it was before this run" if manifest_stamp(obj["index"]) == obj["stamp"]
                 else "; a new index generation was committed before it")
    return f"{what}; {hint}{state}"


def _interrupted(obj: dict[str, Any]) -> str:
    """What Ctrl-C left behind: a commit is one rename, so the index is either the one from
    before the run or a whole new generation; compare the manifest to say which."""
    if "index" not in obj:
        return "Interrupted; the index is as it was before this run."
    from .store import manifest_stamp

    if manifest_stamp(obj["index"]) == obj["stamp"]:
        return "Interrupted; the index is as it was before this run."
    return (f"Interrupted after a new index generation was committed in {obj['index']}: it is "
            "complete and in use; run `qabot index` to pick up anything changed since.")


_seeds = click.option("--seeds", type=click.Path(path_type=Path), default=None,
                      help="Folder of *.txt articles [config paths.seeds, env QABOT_SEEDS].")
_index = click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None,
                      help="Index folder [config paths.index, env QABOT_INDEX].")


_DATE = click.DateTime(formats=["%Y-%m-%d"])
_mode = click.option("--mode", type=click.Choice(SEARCH_MODES), default=None,
                     help="dense (meaning), bm25 (words) or hybrid (both) [config search.mode, "
                          "default hybrid].")


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    from .store import manifest_stamp

    settings = load_settings(ctx.obj.get("config"), **overrides)
    # The committed manifest as this run found it, for the Ctrl-C message (see _interrupted).
    ctx.obj.update(index=settings.index, stamp=manifest_stamp(settings.index))
    return settings


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Settings file [default: config/qabot.toml if present, env QABOT_CONFIG].")
@click.version_option(package_name="qabot")
@click.pass_context
def cli(ctx: click.Context, config: Path | None) -> None:
    """Ask questions of a folder of news articles; get back the passages that answer them,
    with exact citations (file, date, title, character offsets).

    \b
    Quick start:
      qabot index                      # build or update the index from seeds/
      qabot ask "Which road did Azerbaijan propose?"
      qabot bot                        # answer on Telegram (QABOT_TELEGRAM_TOKEN)

    Settings come from config/qabot.toml, then QABOT_* environment variables, then flags.
    """
    ctx.ensure_object(dict)
    ctx.obj["config"] = config


@cli.command()
@_seeds
@_index
@click.option("--rebuild", is_flag=True, help="Re-embed every article, even unchanged ones.")
@click.option("-q", "--quiet", is_flag=True, help="Only print the summary line and problems.")
@click.option("--watch", is_flag=True,
              help="Then keep watching the seeds folder and index every change, until Ctrl-C or "
                   "SIGTERM (see docs/watch.md).")
@click.option("--verify", is_flag=True,
              help="Read and hash every seed file, even those whose size, times and inode say "
                   "they are unchanged (needed only after a file was rewritten in place keeping "
                   "all of them, e.g. through a writable mmap).")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None,
              metavar="[ADDRESS]",
              help="Embed new and changed articles on Ray: alone, a local Ray on this machine's "
                   "CPUs; with ADDRESS (auto, head:6379), a cluster this machine is a node of. "
                   'Needs pip install "qabot[ray]"; see docs/ray.md.')
@click.pass_context
def index(ctx: click.Context, seeds: Path | None, index_dir: Path | None, rebuild: bool,
          quiet: bool, watch: bool, verify: bool, ray_address: str | None) -> None:
    """Build or update the index from the seeds folder.

    Only new and changed articles are embedded; deleted ones are dropped; a crash or Ctrl-C
    leaves the previous index whole. Unreadable files are reported and skipped.

    \b
    Examples:
      qabot index
      qabot index --seeds ~/news --index ~/news-index
      qabot index --rebuild            # after changing the model or chunking settings
      qabot index --verify             # re-read every file, trusting no cached stat
      qabot index --watch              # and keep indexing every change in seeds/
      qabot index --ray                # embed on a local Ray, one model replica per CPU
      qabot index --ray auto           # on a node of a cluster (after `ray start --address=...`)
    """
    from .embed import Embedder
    from .indexer import load_embedder, run_index

    settings = _settings(ctx, seeds=seeds, index=index_dir)
    embedder: Embedder | None = None
    if ray_address is not None:
        if watch:
            raise click.UsageError("--ray and --watch can't be combined; run `qabot index --ray` first")
        from .ray_embed import RayEmbedder

        embedder = RayEmbedder(lambda: load_embedder(settings, _log(quiet)),
                               None if ray_address == "local" else ray_address, log=_log(quiet))
    if watch:
        from .watch import PROGRESS_AFTER_S, Watcher

        # Progress on stderr as without --watch: the first build of a big folder takes minutes.
        progress = None if quiet else Reporter(sys.stderr, after=PROGRESS_AFTER_S)
        sys.exit(Watcher(settings, log=click.echo, quiet=quiet, rebuild=rebuild,
                         progress=progress).run_forever())
    with _progress(quiet) as progress:
        report = run_index(settings, rebuild=rebuild, log=_log(quiet), progress=progress, embedder=embedder,
                           verify=verify)
    from .format import printable

    for bad in report.skipped:  # a file name may hold escape sequences too
        click.echo(f"Skipped {printable(bad.doc_id)}: {bad.reason}", err=True)
    click.echo(report.summary())


@cli.command()
@click.argument("question")
@click.option("-k", type=click.IntRange(1, 100), default=None,
              help="How many passages [config search.k, default 5].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@_mode
@click.option("--since", type=_DATE, default=None, help="Only articles dated on or after this day.")
@click.option("--until", type=_DATE, default=None, help="Only articles dated on or before this day.")
@click.option("--as-of", "as_of", type=_DATE, default=None,
              help="Answer as of this day: later articles are left out [default: today].")
@_seeds
@_index
@click.pass_context
def ask(ctx: click.Context, question: str, k: int | None, as_json: bool, mode: str | None,
        since: dt.datetime | None, until: dt.datetime | None, as_of: dt.datetime | None,
        seeds: Path | None, index_dir: Path | None) -> None:
    """Answer QUESTION: the sentence that answers it first, then one source line per article
    (headline, date, age), then the passages behind them with exact citations (file, character
    offsets). One article per result; up to three of its best passages compete for the answer.

    Builds the index first if there is none. When no passage scores above the confidence
    floor ([search] min_score) it says there is no confident answer; when no sentence is good
    enough to be the answer, it shows the closest passages without one. Time words ("this week",
    "yesterday", "latest") prefer articles of that window, read against --as-of: by default today,
    or on an archive whose newest article is over two weeks old, that article's day (ages are
    still counted from today). Greetings
    and thanks get a short reply and no search.

    \b
    Examples:
      qabot ask "Which road did Azerbaijan propose to help Armenian residents in Karabakh?"
      qabot ask -k 3 --json "What did Bayramov tell Bono?"
      qabot ask --since 2024-01-01 --until 2024-06-30 "What did the ECB decide on rates?"
      qabot ask --mode bm25 --as-of 2024-03-31 "Grindavik evacuation"
    """
    from . import format as fmt
    from .answer import respond
    from .retrieve import check_question

    settings = _settings(ctx, seeds=seeds, index=index_dir, k=k, mode=mode)
    if not question.isascii() and any("\udc80" <= c <= "\udcff" for c in question):
        # bytes that are not UTF-8 reach argv as lone surrogates, which nothing can encode
        raise BadQuestion("the question is not valid UTF-8 text; check your terminal's "
                          "encoding (locale) and type it again")
    check_question(question)
    if since is not None and until is not None and since > until:
        raise BadQuestion(f"--since {since:%Y-%m-%d} is later than --until {until:%Y-%m-%d}, "
                          "so no article could match; swap them")
    retriever = _retriever(settings)
    reply = respond(retriever, question, settings.search, since=_day(since), until=_day(until),
                    as_of=_day(as_of))
    if as_json:
        click.echo(fmt.to_json(reply))
    else:
        width = min(100, shutil.get_terminal_size().columns)
        bold = (("\x1b[1m", "\x1b[0m") if sys.stdout.isatty() else ("", ""))
        click.echo(fmt.to_terminal(reply, width=width, bold=bold))


@cli.command(name="eval")
@click.argument("queries", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@_mode
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@_seeds
@_index
@click.pass_context
def eval_(ctx: click.Context, queries: Path, mode: str | None, as_json: bool, seeds: Path | None,
          index_dir: Path | None) -> None:
    """Score retrieval on QUERIES, a JSONL file of questions with their known articles.

    One JSON object a line: {"id", "question", "gold_docs": [doc ids, with or without .txt],
    "answers": [strings], "date" or "question_date": "YYYY-MM-DD" (optional: the day it was asked,
    used as its as-of day)}.
    Indexes the seeds first (only what changed), then prints Hit@1/5/10, MRR@10 and nDCG@10
    (article level), answer-recall@5 (an answer string in one of the top 5 passages),
    answer_sentence@1/@3 (in the answering sentence of the first / top 3 results) and the
    p50/p95 latency of one question. Progress goes to stderr.
    Malformed lines (not JSON, not UTF-8, a question over 2,000 characters...) are reported by
    line number and skipped.

    \b
    Examples:
      qabot eval questions.jsonl
      qabot eval --mode bm25 --json questions.jsonl
      qabot eval --seeds scifact/corpus --index /tmp/scifact-index scifact/queries.jsonl
    """
    from .evaluate import evaluate, read_queries

    settings = _settings(ctx, seeds=seeds, index=index_dir, mode=mode)
    parsed, problems = read_queries(queries)
    for problem in problems:
        click.echo(f"Skipped {queries.name} {problem}", err=True)
    if not parsed:
        raise QabotError(f"{queries} holds no usable query ({len(problems)} malformed lines)")
    if settings.seeds.is_dir():
        from .indexer import run_index

        with _progress(False) as progress:  # a first build takes minutes: show it is moving
            report = run_index(settings, log=_log(True), progress=progress)
        click.echo(report.summary(), err=True)
    retriever = _retriever(settings)
    with _progress(False, label="Evaluating", noun="questions") as progress:
        result = evaluate(retriever, parsed, settings.search, progress=progress)
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"{result['queries']} queries, mode {settings.search.mode}")
    for key, value in result.items():
        if key != "queries":
            shown = "n/a" if value is None else (f"{value:.1f}" if key.endswith("_ms") else f"{value:.4f}")
            click.echo(f"  {key:<16} {shown}")


@cli.command()
@_seeds
@_index
@click.option("--watch", is_flag=True,
              help="Also watch the seeds folder and index every change, in this process "
                   "(see docs/watch.md).")
@click.option("-v", "--verbose", is_flag=True,
              help="Log at DEBUG level (the token is never logged).")
@click.pass_context
def bot(ctx: click.Context, seeds: Path | None, index_dir: Path | None, watch: bool,
        verbose: bool) -> None:
    """Answer questions on Telegram (long polling) until Ctrl-C or SIGTERM.

    The token comes from the environment only: QABOT_TELEGRAM_TOKEN (or TELEGRAM_BOT_TOKEN);
    QABOT_TELEGRAM_API_URL points it at another Bot API server. Builds the index first if there
    is none; a new index committed while the bot runs is picked up without a restart.
    Settings are in [bot] of config/qabot.toml; see docs/telegram.md.

    \b
    Examples:
      QABOT_TELEGRAM_TOKEN=123456:ABC... qabot bot
      qabot bot --seeds ~/news --index ~/news-index --watch
    """
    from .bot import run_bot

    # run_bot checks the token first, then opens the index (reader.open_index: upgraded or
    # built when needed, progress in its log) unless the watcher is to build it.
    run_bot(_settings(ctx, seeds=seeds, index=index_dir), verbose=verbose, watch=watch)


@cli.command()
@_index
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. The default answers this machine only; 0.0.0.0 (or ::) "
                   "every network it is on: then set QABOT_API_TOKEN.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port to listen on (0: any free one, printed at start).")
@click.option("--no-access-log", "quiet", is_flag=True, help="Don't log a line per request.")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
              help="Serve on Ray Serve, the index in shards: on the cluster at ADDRESS "
                   "(e.g. 10.0.0.5:6379, or auto), or with no ADDRESS on a Ray started here. "
                   "Needs pip install 'qabot[serve-ray]'.")
@click.option("--shards", type=click.IntRange(1, 1024), default=2, show_default=True,
              help="With --ray: how many shards the index's passages are cut between (even runs of "
                   "whole articles).")
@click.option("--replicas", type=click.IntRange(1, 64), default=1, show_default=True,
              help="With --ray: copies of each shard (more questions at once, a node's loss survived).")
@click.option("--deadline", type=click.FloatRange(0.1, 600), default=10.0, show_default=True,
              help="With --ray: seconds a shard has to answer; then 503 naming it (or, with "
                   "\"partial\": true in the question, the other shards' results and a coverage field).")
@click.pass_context
def serve(ctx: click.Context, index_dir: Path | None, host: str, port: int, quiet: bool,
          ray_address: str | None, shards: int, replicas: int, deadline: float) -> None:
    """Answer questions over HTTP with a JSON API, until Ctrl-C or SIGTERM.

    \b
    POST /ask     {"question": "...", "k": 5, "mode": "hybrid", "since": "2024-01-01",
                   "until": "2024-06-30", "as_of": "2024-06-30"} (all but question optional)
                  -> exactly the object `qabot ask --json` prints; the header
                  X-Qabot-Generation names the index generation it was answered from
    GET  /health  -> {"generation", "articles", "passages", "newest"}
    GET  /docs    the OpenAPI schema, to read and try (/openapi.json for tools)

    Errors are JSON, {"error": "what to do"}: 400 for a bad question or field, 401 without the
    token, 503 while there is no usable index (run `qabot index`). It reads the index only and
    follows its commits without a restart: run `qabot index` (or `qabot index --watch`) beside
    it. With QABOT_API_TOKEN set in the environment, every request needs
    `Authorization: Bearer <token>`. Needs pip install 'qabot[serve]'.

    \b
    Examples:
      qabot serve                                   # http://127.0.0.1:8000
      curl -s localhost:8000/ask -H 'Content-Type: application/json' \\
           -d '{"question": "Which road did Azerbaijan propose?", "k": 3}'
      QABOT_API_TOKEN=$(openssl rand -hex 32) qabot serve --host 0.0.0.0 --port 8080
      qabot serve --ray 10.0.0.5:6379 --shards 4 --replicas 2   # on a Ray cluster, 4 shards
    """
    try:
        from . import api
    except ImportError as err:
        if err.name not in {"fastapi", "uvicorn", "starlette", "pydantic"}:
            raise
        raise QabotError("qabot serve needs FastAPI and uvicorn, which are not installed: "
                         "pip install 'qabot[serve]'") from None
    from .reader import Retriever

    token = os.environ.get(api.TOKEN_ENV)
    if token is not None and not token.strip():
        raise QabotError(f"{api.TOKEN_ENV} is set but empty; set it to a long random string "
                         "(e.g. openssl rand -hex 32), or unset it to serve without a token")
    settings = _settings(ctx, index=index_dir)
    if ray_address is not None:
        _serve_ray(settings, ray_address, host, port, shards, replicas, deadline, token, quiet)
        return
    backend = api.LocalBackend(Retriever.for_settings(settings), settings.search)
    sock = api.bind(host, port)  # before loading anything: a port in use fails at once
    backend.warm()
    click.echo(f"Serving {settings.index} ({_state(backend)}) on {api.url_of(sock)}, docs at /docs"
               f"{_exposure(host, token)}. Ctrl-C to stop.", err=True)
    api.run(api.create_app(backend, token), sock, access_log=not quiet)


def _state(backend: Backend) -> str:
    """What the start line says of the index served."""
    try:
        known = backend.health()
        return f"generation {known.generation}, {known.articles:,} articles"
    except QabotError as err:
        return f"no usable index yet ({err}); /ask answers 503 until there is one"


def _exposure(host: str, token: str | None) -> str:
    """What the start line says of who may ask."""
    if token:
        return "; token required"
    loopback = host in {"127.0.0.1", "localhost", "::1"} or host.startswith("127.")
    return "" if loopback else "; anyone who can reach it may ask: consider QABOT_API_TOKEN"


def _serve_ray(settings: Settings, address: str, host: str, port: int, shards: int, replicas: int,
               deadline: float, token: str | None, quiet: bool) -> None:
    """`qabot serve --ray`: the shard deployments on Ray Serve, and this process the router
    serving HTTP over them, until Ctrl-C or SIGTERM."""
    import logging

    try:
        import ray

        from . import serve_ray
    except ImportError as err:
        if not (err.name or "").startswith(("ray", "grpc", "aiohttp", "starlette", "fastapi")):
            raise
        raise QabotError("qabot serve --ray needs Ray Serve, which is not installed: "
                         "pip install 'qabot[serve-ray]'") from None
    from . import api
    from .embed import model_id

    sock = api.bind(host, port)  # a port in use fails here, before Ray starts
    if address == "local":
        ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING)
    else:
        try:
            ray.init(address=address, logging_level=logging.WARNING)
        except ConnectionError as err:
            raise QabotError(f"can't reach the Ray cluster at {address} ({err}); start it with "
                             "`ray start --head` (docs/scaling.md), or leave out ADDRESS") from None
    try:
        from ray import serve

        found = serve_ray.deploy(settings.index, shards, replicas, nprobe=settings.vectors.nprobe)
        backend = serve_ray.backend(settings.index, found, settings.search, deadline=deadline,
                                    model=model_id(settings.model.name))
        click.echo(f"Serving {settings.index} ({_state(backend)}) in {shards} shard(s) x {replicas} on Ray "
                   f"Serve on {api.url_of(sock)}, docs at /docs{_exposure(host, token)}. Ctrl-C to stop.",
                   err=True)
        api.run(api.create_app(backend, token), sock, access_log=not quiet)
    finally:
        if address == "local":
            serve.shutdown()  # the Ray started here goes next, and Serve with it
        else:  # a cluster's Serve may run other applications: only ours go
            serve_ray.undeploy(shards)
        ray.shutdown()


def _retriever(settings: Settings) -> Retriever:
    """The settings' index, ready to answer (reader.open_index: upgraded or built first when
    needed, saying so and showing progress on stderr)."""
    from .reader import open_index

    with _progress(False) as progress:
        return open_index(settings, log=_log(False), progress=progress)


def _day(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value is not None else None


@contextlib.contextmanager
def _progress(quiet: bool, label: str = "Embedding", noun: str = "passages") -> Iterator[Reporter | None]:
    """Progress of long work on stderr (stdout is the answer's): a bar on a terminal, a line
    every few seconds elsewhere; none when quiet."""
    if quiet:
        yield None
        return
    # stderr: where click.echo(err=True) writes; both flush each line
    reporter = Reporter(sys.stderr, label, noun=noun)
    try:
        yield reporter
    finally:
        reporter.close()


def _log(quiet: bool) -> Any:
    return (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))


def main() -> None:
    """Console-script entry point."""
    cli(obj={})


if __name__ == "__main__":
    main()
