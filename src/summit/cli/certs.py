"""``summit certs``: the stage's certificates (like ACM): its local CA and the front door's
certificate, which one the running HAProxy serves, renewing it, and the CA for clients to trust."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from summit.cli.main import ConfigOpt, DataDirOpt, app, blueprint_or_exit, console

certs_app = typer.Typer(help="The stage's certificates: its local CA and the front door's (HTTPS) certificate.", no_args_is_help=True)
app.add_typer(certs_app, name="certs")

out = Console(highlight=False)


def _stage(config: Path | None, data_dir: Path | None):  # noqa: ANN202
    from summit.engines import Layout
    from summit.engines.certs import CertError, for_blueprint

    blueprint = blueprint_or_exit(config, data_dir=data_dir)
    layout = Layout(blueprint.data_dir.resolve())
    try:
        return blueprint, layout, for_blueprint(blueprint, layout)
    except CertError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None


def _socket(layout) -> Path | None:  # noqa: ANN001
    """The running HAProxy's runtime socket, if this data directory has an HAProxy at all."""
    from summit.engines.haproxy import runtime_socket

    try:
        port = json.loads((layout.data_dir / "engines" / "ports.json").read_text())["haproxy-stats"]
    except (OSError, ValueError, KeyError):
        return None
    path = runtime_socket(layout, int(port))
    return path if path.exists() else None


def _served(layout, certs) -> tuple[str, dict[str, str] | None]:  # noqa: ANN001
    """("running" | "not running" | "no TLS", what HAProxy serves from the leaf's file)."""
    from summit.engines.haproxy import served_certificate

    path = _socket(layout)
    if path is None:
        return "not running", None
    try:
        served = served_certificate(path, certs.leaf_path)
    except OSError:
        return "not running", None
    return ("running", served) if served else ("no TLS", None)


def _record(info, kind: str, served: str) -> dict[str, Any]:  # noqa: ANN001
    return {
        "name": kind, "path": str(info.path), "subject": info.subject, "issuer": info.issuer, "sans": list(info.sans),
        "not_before": info.not_before.isoformat(), "not_after": info.not_after.isoformat(),
        "days_left": round(info.days_left(), 1), "serial": info.serial_hex, "sha256": info.sha256,
        "renewal_due": (not info.is_ca) and info.due(), "served": served,
    }


@certs_app.command("list")
def list_certificates(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the CA and the front door's certificate, and whether HAProxy serves it.

    Subject, names, validity, days left and serial of each; the running HAProxy is asked what it
    serves through its runtime API (`show ssl cert`).
    """
    _, layout, certs = _stage(config, data_dir)
    ca, leaf = certs.ca_info(), certs.leaf()
    haproxy, served = _served(layout, certs)
    rows = []
    if ca is not None:
        rows.append(_record(ca, "ca", "-  (clients trust it: summit certs export-ca)"))
    if leaf is not None:
        if served is None:
            state = f"no: HAProxy is {haproxy}" if haproxy == "not running" else "no: HAProxy serves no HTTPS (engines.haproxy.tls is off)"
        elif int(served["Serial"], 16) == leaf.serial:
            state = "yes"
        else:
            state = f"no: HAProxy serves serial {served['Serial'].lstrip('0')}"
        rows.append(_record(leaf, "front-door", state))
    if as_json:
        typer.echo(json.dumps({"directory": str(certs.directory), "domain": certs.domain, "haproxy": haproxy,
                               "haproxy_serial": served["Serial"].lstrip("0") if served else None, "certificates": rows}, indent=2))
        return
    if not rows:
        out.print(f"no certificates in {certs.directory} yet: a stage with engines.haproxy.tls makes them when it starts, "
                  "and `summit certs renew` makes them now")
        return
    out.print(f"certificates in {certs.directory}")
    for row in rows:  # one block each: the names and dates are long
        table = Table(show_header=False, title=f"{row['name']} ({Path(row['path']).name})", title_justify="left")
        days = f"{row['days_left']:.1f}" + ("  (renewal due: `summit certs renew`)" if row["renewal_due"] else "")
        for key, value in (("subject", row["subject"]), ("issuer", row["issuer"]), ("names", ", ".join(row["sans"]) or "-"),
                           ("not before", row["not_before"][:16].replace("T", " ") + " UTC"),
                           ("not after", row["not_after"][:16].replace("T", " ") + " UTC"), ("days left", days),
                           ("serial", row["serial"]), ("served by HAProxy", row["served"])):
            table.add_row(key, value)
        out.print(table)


@certs_app.command("renew")
def renew_certificate(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Issue a new certificate (and key) even if the current one is not due.")] = False,
) -> None:
    """Renew the front door's certificate when it is due, and install it in the running HAProxy.

    Due means less than a third of its life left (or --force). The new certificate goes to disk
    (for the next start) and into the running HAProxy through its runtime API: no reload, no
    dropped connection. The control plane does the same by itself at start and every
    certs.check_interval_seconds.
    """
    from summit.engines.certs import CertError
    from summit.engines.haproxy import renew

    _, layout, certs = _stage(config, data_dir)
    try:
        done = renew(certs, _socket(layout), force=force)
    except (CertError, OSError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from None
    out.print(("renewed: " if done.renewal.renewed else "not due: ") + done.describe())


@certs_app.command("export-ca")
def export_ca(
    path: Annotated[Optional[Path], typer.Argument(help="Where to write the CA certificate (PEM); default: print it.")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Write (or print) the stage's CA certificate, for clients to trust.

    `curl --cacert PATH`, httpx `verify=`, a browser's or the system's trust store (see
    docs/certificates.md). It holds no secret.
    """
    _, _, certs = _stage(config, data_dir)
    if not certs.ca_path.is_file():
        console.print(f"[red]error:[/red] there is no CA in {certs.directory} yet: a stage with engines.haproxy.tls makes it "
                      "when it starts, and `summit certs renew` makes it now")
        raise typer.Exit(1)
    if path is None:
        typer.echo(certs.ca_path.read_text(), nl=False)
        return
    shutil.copyfile(certs.ca_path, path)
    Path(path).chmod(0o644)
    out.print(f"wrote the CA certificate to {path}: `curl --cacert {path} https://...`, or add it to a browser's "
              "trusted authorities (see docs/certificates.md)")
