"""``summit search``: rebuild the search index from the app's data, and query it as an operator."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from summit.cli.main import ConfigOpt, DataDirOpt, StageOpt, app, blueprint_or_exit, console
from summit.engines import state

search_app = typer.Typer(help="The search index: rebuild it from the app's data, query it.", no_args_is_help=True)
app.add_typer(search_app, name="search")


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


def _blueprint(config: Path | None, stage: str | None, data_dir: Path | None) -> Any:  # noqa: ANN401
    """The blueprint of the stage running in the data directory (else the one asked for)."""
    blueprint = blueprint_or_exit(config, stage=stage, data_dir=data_dir)
    running = state.running(blueprint.data_dir.resolve())
    if running and not stage and running.get("stage") != blueprint.stage:
        blueprint = blueprint_or_exit(config, stage=running["stage"], data_dir=data_dir)
    return blueprint


def _platform(blueprint: Any) -> Any:  # noqa: ANN401
    from summit.blueprint import BlueprintError
    from summit.platform import Platform

    try:
        return Platform.from_blueprint(blueprint)
    except (BlueprintError, ValueError) as error:
        raise _fail(str(error), 2) from None


@search_app.command("reindex")
def reindex(config: ConfigOpt = None, stage: StageOpt = None, data_dir: DataDirOpt = None) -> None:
    """Empty the search index and fill it again from the app's data.

    The app's documents come from the function the blueprint names in app.search_documents; the
    index is compacted at the end. Runs beside the app: searches made meanwhile see a partial index. On the stage running in the
    data directory (its PostgreSQL from 1+), else on --stage. Exits 1 if the engine or the app's
    data cannot be read (run `summit db upgrade` first on a new data directory).
    """
    from summit import reindex as reindexing
    from summit.blueprint import BlueprintError
    from summit.ports import DatabaseError, DatabaseUnavailable, SearchError

    blueprint = _blueprint(config, stage, data_dir)
    try:
        documents = blueprint.app.load_search_documents()
    except BlueprintError as error:
        raise _fail(str(error), 2) from None
    if documents is None:
        raise _fail("the blueprint's app.search_documents names no function: the app gives the platform nothing to index "
                    "(set it to 'package.module:function', an async generator of documents)", 2)
    platform = _platform(blueprint)

    async def run(progress: Progress) -> reindexing.ReindexReport:
        task = progress.add_task("reading the app's documents", total=None)

        def update(counts: Counter[str]) -> None:
            progress.update(task, completed=sum(counts.values()), description=_by_kind(counts))

        async with platform:
            return await reindexing.reindex(platform, documents, on_progress=update)

    try:
        with Progress(SpinnerColumn(), TextColumn("{task.completed:,} documents"), TextColumn("{task.description}"),
                      TimeElapsedColumn(), console=console, transient=True) as progress:
            report = asyncio.run(run(progress))
    except (SearchError, DatabaseUnavailable) as error:
        raise _fail(str(error)) from None
    except DatabaseError as error:
        raise _fail(f"reading the app's data failed ({str(error.orig).strip() or type(error).__name__}): "
                    "is the database migrated (`summit db upgrade`)?") from None
    except (TypeError, ValueError) as error:  # what the app yielded is not a document
        raise _fail(f"{blueprint.app.search_documents}: {error}") from None
    console.print(f"indexed {report.total:,} documents ({_by_kind(report.counts) or 'none'}) in {report.seconds:.1f} s "
                  f"({report.rate:,.0f} documents/s)")


@search_app.command("query")
def query(
    text: Annotated[str, typer.Argument(help="What a user would type: words, each a prefix.")],
    config: ConfigOpt = None,
    stage: StageOpt = None,
    data_dir: DataDirOpt = None,
    kind: Annotated[Optional[list[str]], typer.Option("--kind", "-k", help="Only documents of this kind (repeat for several).")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Hits per page (1-100).")] = 20,
    cursor: Annotated[Optional[str], typer.Option("--cursor", help="The next cursor a previous page printed.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Search the index as the app would: best hits first, then the cursor of the next page.

    Exits 2 when the query is refused (too long, too many words: the message says what to fix).
    """
    from summit.ports import InvalidQuery, SearchError

    platform = _platform(_blueprint(config, stage, data_dir))

    async def run() -> tuple[Any, int]:
        async with platform:
            page = await platform.search.query(text, kinds=kind, cursor=cursor, limit=limit)
            return page, await platform.search.count()

    try:
        page, total = asyncio.run(run())
    except InvalidQuery as error:
        raise _fail(str(error), 2) from None
    except SearchError as error:
        raise _fail(str(error)) from None
    if as_json:
        hits = [{"kind": hit.kind, "id": hit.doc_id, "score": hit.score} for hit in page.hits]
        typer.echo(json.dumps({"hits": hits, "next_cursor": page.next_cursor}, ensure_ascii=False, indent=2))
        return
    if not page.hits:
        console.print(f"no hits in the index's {total:,} documents")
        return
    table = Table("kind", "id", "score")
    for hit in page.hits:
        table.add_row(escape(hit.kind), escape(hit.doc_id), f"{hit.score:.6g}")
    console.print(table)
    if page.next_cursor:
        console.print(f"next page: --cursor {page.next_cursor}")


def _by_kind(counts: Counter[str]) -> str:
    return ", ".join(f"{kind} {count:,}" for kind, count in sorted(counts.items()))
