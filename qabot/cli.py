"""`qabot` command line: parse → call the core → format. Errors become one `Error:` line."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import click

from .config import Settings, load_settings
from .errors import IndexNotFound, QabotError, SeedsNotFound


class _Group(click.Group):
    """Turns domain errors and Ctrl-C into a message and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except QabotError as err:
            click.echo(f"Error: {err}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("Interrupted; the index is as it was before this run.", err=True)
            sys.exit(130)


_seeds = click.option("--seeds", type=click.Path(path_type=Path), default=None,
                      help="Folder of *.txt articles [config paths.seeds, env QABOT_SEEDS].")
_index = click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None,
                      help="Index folder [config paths.index, env QABOT_INDEX].")


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    return load_settings(ctx.obj.get("config"), **overrides)


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
@click.pass_context
def index(ctx: click.Context, seeds: Path | None, index_dir: Path | None, rebuild: bool,
          quiet: bool) -> None:
    """Build or update the index from the seeds folder.

    Only new and changed articles are embedded; deleted ones are dropped; a crash or Ctrl-C
    leaves the previous index whole. Unreadable files are reported and skipped.

    \b
    Examples:
      qabot index
      qabot index --seeds ~/news --index ~/news-index
      qabot index --rebuild            # after changing the model or chunking settings
    """
    from .indexer import run_index

    settings = _settings(ctx, seeds=seeds, index=index_dir)
    report = run_index(settings, rebuild=rebuild, log=_log(quiet), progress=not quiet)
    for bad in report.skipped:
        click.echo(f"Skipped {bad.doc_id}: {bad.reason}", err=True)
    click.echo(report.summary())


@cli.command()
@click.argument("question")
@click.option("-k", type=click.IntRange(1, 100), default=None,
              help="How many passages [config search.k, default 5].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@_seeds
@_index
@click.pass_context
def ask(ctx: click.Context, question: str, k: int | None, as_json: bool, seeds: Path | None,
        index_dir: Path | None) -> None:
    """Answer QUESTION with the best passages and their citations.

    Builds the index first if there is none.

    \b
    Examples:
      qabot ask "Which road did Azerbaijan propose to help Armenian residents in Karabakh?"
      qabot ask -k 3 --json "What did Bayramov tell Bono?"
    """
    from . import format as fmt
    from .retrieve import Retriever, check_question, search

    settings = _settings(ctx, seeds=seeds, index=index_dir, k=k)
    check_question(question)
    retriever = Retriever(settings.index, settings_model(settings))
    try:
        retriever.snapshot()
    except IndexNotFound:
        from .indexer import run_index

        if not settings.seeds.is_dir():
            raise SeedsNotFound(
                f"no index in {settings.index} to answer from, and seeds folder {settings.seeds} "
                "does not exist; point --seeds / QABOT_SEEDS at your articles, or --index at an index"
            ) from None
        click.echo(f"No index in {settings.index} yet; building it from {settings.seeds} first.",
                   err=True)
        click.echo(run_index(settings, log=_log(False)).summary(), err=True)
    passages = search(retriever, question, settings.k, settings.per_article)
    if as_json:
        click.echo(fmt.to_json(question.strip(), passages))
    else:
        width = min(100, shutil.get_terminal_size().columns)
        bold = (("\x1b[1m", "\x1b[0m") if sys.stdout.isatty() else ("", ""))
        click.echo(fmt.to_terminal(passages, width=width, bold=bold))


def settings_model(settings: Settings) -> str:
    """The model id to check the index against."""
    from .embed import model_id

    return model_id(settings.model)


def _log(quiet: bool) -> Any:
    return (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))


def main() -> None:
    """Console-script entry point."""
    cli(obj={})


if __name__ == "__main__":
    main()
