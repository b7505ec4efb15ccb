"""``argus serve RUN_DIR...``: the live dashboard (entry-point group ``argus.commands``)."""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
from pathlib import Path

import click

from argus_core import LEDGER_FILE, ConfigError, FiniteFloat, LedgerError, ledger_tables

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an IP address or ``localhost``) stays on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_hosts(host: str) -> list[str]:
    """The ``Host`` names a loopback dashboard answers: this machine's, as a browser on it
    writes them (an IPv6 address in brackets, as in ``http://[::1]:8765/``)."""
    names = ["127.0.0.1", "localhost", "[::1]"]
    shown = f"[{host}]" if ":" in host else host.lower()
    return names if shown in names else [*names, shown]


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; an ``ArgusError`` naming the port when taken."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: cannot resolve it ({exc.strerror})") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        # The option's fault, with its code (ConfigError, exit 2; it was exit 1, a bug's).
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"--port {port}: port {port} on {host} is already in use; "
                              f"pick another (0: any free port)") from None
        raise ConfigError(f"--host {host} --port {port}: cannot listen there: "
                          f"{exc.strerror}") from None
    return sock


def check_run_dir(run_dir: Path) -> None:
    """Refuse a RUN_DIR whose ``argus.db`` cannot be a run ledger: a folder of that name, a
    damaged file, a foreign SQLite file (the core's ``LedgerError``, exit 7; they were
    served, every page an error).  A directory without one, or with one still being
    created (no tables yet), is served: its run may start later."""
    if not run_dir.exists():
        raise ConfigError(f"{run_dir}: no such run directory")
    path = run_dir / LEDGER_FILE
    if path.is_dir():
        raise LedgerError(f"{path}: is a directory, not a ledger file; pass the run "
                          f"directory, the folder holding argus.db")
    if path.is_file():
        tables = ledger_tables(path)
        if tables and "runs" not in tables:
            raise LedgerError(f"{path} cannot be used: not an Argus ledger (it has no runs "
                              f"table)")


def check_lab(lab_path: Path) -> Path:
    """The lab ledger ``--lab`` names (a lab folder or its lab.db), refused unless it is
    one: missing, damaged or a SQLite file without the lab's tables (a ConfigError or the
    core's LedgerError; a text file or a foreign database was taken)."""
    lab_db = lab_path / "lab.db" if lab_path.is_dir() else lab_path
    if not lab_db.is_file():
        raise ConfigError(f"--lab {lab_path}: no lab ledger (lab.db) there")
    tables = ledger_tables(lab_db, "a lab ledger")
    if tables and not any(t.startswith("lab_") for t in tables):
        raise LedgerError(f"--lab {lab_db} cannot be used: not a lab ledger (it has no "
                          f"lab_ tables)")
    return lab_db


@click.command("serve")
@click.argument("run_dirs", nargs=-1, required=True,
                type=click.Path(path_type=Path, file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback needs --token for reads too.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port (0: any free port, printed at start).")
@click.option("--token", "token_specs", multiple=True, metavar="[HOLDER=]REF",
              help="A secret reference ($env:NAME or $file:PATH) whose value unlocks the "
                   "controls; HOLDER (default 'operator') is the name each action records. "
                   "Repeat for several people.")
@click.option("--lab", "lab_path", type=click.Path(path_type=Path),
              help="A lab folder ([plugins.lab] dir) or its lab.db: show its deploy-gate "
                   "verdicts beside each run.")
@click.option("--poll", "poll_s", default=1.0, show_default=True,
              type=FiniteFloat(0.05, 60.0), help="Seconds between ledger polls.")
def serve(run_dirs: tuple[Path, ...], host: str, port: int, token_specs: tuple[str, ...],
          lab_path: Path | None, poll_s: float) -> None:
    """A local web dashboard over RUN_DIR... (live over server-sent events): trading
    state, equity and drawdown, positions, working orders, fills, risk events, signals,
    strategy versions, thoughts and lab verdicts; kill, kill and flatten, resume, promote
    and roll back behind --token, each recorded with who and why."""
    import uvicorn

    from argus_dashboard.app import create_app
    from argus_dashboard.app import run_dirs as keyed
    from argus_dashboard.controls import Tokens

    for run_dir in run_dirs:
        check_run_dir(run_dir)
    lab_db = None if lab_path is None else check_lab(lab_path)
    tokens = Tokens(token_specs)
    reads_need_token = not is_loopback(host)
    if reads_need_token and not tokens.enabled:
        raise ConfigError(f"--host {host} listens beyond this machine: give --token too "
                          f"(it then guards the pages as well as the controls)")
    sock = bind(host, port)
    runs = keyed(run_dirs, lab_db)
    # On loopback the pages are open: only requests that name this machine are answered
    # (a page on a DNS name rebound to 127.0.0.1 names that name).
    allowed = loopback_hosts(host) if not reads_need_token else None
    app = create_app(runs, tokens, poll_s=poll_s, reads_need_token=reads_need_token,
                     allowed_hosts=allowed)
    shown_host = f"[{host}]" if ":" in host else host
    click.echo(f"argus serve: http://{shown_host}:{sock.getsockname()[1]}/ "
               f"({len(runs)} run{'s' if len(runs) != 1 else ''}; controls "
               f"{'for ' + ', '.join(tokens.holders) if tokens.enabled else 'off (no --token)'})")
    # No access log: a page opened with ?token= would otherwise write it to the log.
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its graceful shutdown
        click.echo("argus serve: stopped")
