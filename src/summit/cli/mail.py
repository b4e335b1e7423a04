"""``summit mail``: read the embedded outbox of a stage (stage 1 keeps mail instead of sending it)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Optional
from urllib.parse import urlsplit, urlunsplit

import typer
from rich.markup import escape

from summit.cli.main import ConfigOpt, DataDirOpt, app, blueprint_or_exit, console
from summit.ports.mail import MailError, Outbox, SentMail
from summit.wiring import WiringError, adapter_class


@app.command()
def mail(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    to: Annotated[Optional[str], typer.Option("--to", help="Only mail sent to this address (any case).")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many messages, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array instead of text.")] = False,
) -> None:
    """List the mail a stage has sent to its outbox, newest first: confirmation and reset codes.

    Works while the stage runs (it reads the outbox directory, not the server). Exits 1 when the
    stage's mail port is not the outbox (an SMTP server delivers that mail; read it there).
    """
    blueprint = blueprint_or_exit(config, data_dir=data_dir)
    url = blueprint.port_url("mail")
    try:
        cls = adapter_class("mail", url)
    except WiringError as error:
        console.print(f"[red]error:[/red] the mail port's URL: {escape(str(error))}")
        raise typer.Exit(2) from None
    if not issubclass(cls, Outbox):
        console.print(
            f"[yellow]this stage's mail port is {escape(_redact(url))}: "
            "it delivers mail rather than keeping it,[/yellow] "
            "so there is no outbox to read. summit mail reads the embedded outbox (outbox://...): "
            "set ports.mail to outbox://{data_dir}/outbox (or SUMMIT_PORTS__MAIL) to keep mail locally."
        )
        raise typer.Exit(1)
    try:
        outbox = cls.from_url(url)
        messages = asyncio.run(outbox.list(limit, to=to))
    except (MailError, ValueError) as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps([_record(m) for m in messages], ensure_ascii=False, indent=2))
        return
    if not messages:
        where = getattr(outbox, "root", _redact(url))
        console.print(escape(f"no mail{f' to {to}' if to else ''} in {where}"))
        return
    for n, message in enumerate(messages):
        if n:
            typer.echo("")
        typer.echo(f"── {message.sent_at:%Y-%m-%d %H:%M:%S}Z  to {', '.join(message.to)}  [{message.id}]")
        typer.echo(f"Subject: {message.subject}")
        typer.echo("")
        typer.echo(message.text.rstrip("\n"))


def _record(message: SentMail) -> dict:
    return {
        "id": message.id,
        "to": list(message.to),
        "subject": message.subject,
        "text": message.text,
        "html": message.html,
        "reply_to": message.reply_to,
        "headers": dict(message.headers),
        "sent_at": message.sent_at.isoformat(),
    }


def _redact(url: str) -> str:
    """The URL without its password."""
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return urlunsplit(parts._replace(netloc=f"{userinfo.partition(':')[0]}:***@{host}"))
