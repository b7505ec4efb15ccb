"""The ``argus intel`` commands (entry point group ``argus.commands``: imported only when
one runs): ``serve RUN_DIR...`` starts the API on uvicorn; ``keys add|list|revoke``
manage its API keys (``add`` prints the new key once; the file keeps only its hash).
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path

import click

from argus_core import ConfigError, FiniteFloat, check_run_ledger

#: Where keys live unless ``--keys`` says otherwise.
DEFAULT_KEYS = Path("~/.argus/intel-keys.db")

_keys_opt = click.option("--keys", "keys_path", type=click.Path(dir_okay=False,
                                                                 path_type=Path),
                         default=str(DEFAULT_KEYS), show_default=True,
                         help="The API keys file (SQLite; hashes only).")


@click.group()
def intel() -> None:
    """Read-only intelligence API over run ledgers: serve it, manage its keys."""


@intel.command()
@click.argument("run_dirs", nargs=-1, required=True,
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on ('0.0.0.0': every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=8787, show_default=True,
              help="TCP port (0: any free port, printed at start; one in use is refused).")
@_keys_opt
@click.option("--data-dir", "data_dirs", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder the runs' relative data paths (bars_csv, ndjson) are relative "
                   "to: the folder of the run's config file (repeatable).")
def serve(run_dirs: tuple[Path, ...], host: str, port: int, keys_path: Path,
          data_dirs: tuple[Path, ...]) -> None:
    """Serve the API over RUN_DIRS (each holding an argus.db) until interrupted."""
    import logging

    import uvicorn

    from argus_intel.app import QueryHidden, create_app
    from argus_intel.keys import KeyStore

    for run_dir in run_dirs:  # before anything is said or made
        check_run_ledger(run_dir, "pass a directory `argus run` or `argus backtest` wrote")
    keys = KeyStore(keys_path.expanduser())
    live = [k for k in keys.list() if not k.revoked]
    if not live:
        click.echo(f"warning: {keys.path} has no live key; every request will be refused "
                   f"until `argus intel keys add NAME --keys {keys.path}`", err=True)
    app = create_app(run_dirs, keys, data_dirs=data_dirs)
    # Bound here, before anything is said: a port in use is one error line naming it (it
    # was "serving ..." and then uvicorn's traceback-free ERROR, exit 3), and --port 0
    # prints the port it got.
    sock = _listen(host, port)
    port = int(sock.getsockname()[1])
    click.echo(f"serving {len(run_dirs)} run(s) on http://{host}:{port}/v1 "
               f"(docs: http://{host}:{port}/docs)")
    config = uvicorn.Config(app, host=host, port=port, log_level="info")
    # After the Config (it sets up uvicorn's logging): the access log shows paths, never
    # query strings (a key put in a URL by mistake).
    logging.getLogger("uvicorn.access").addFilter(QueryHidden())
    uvicorn.Server(config).run(sockets=[sock])


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; an ``ArgusError`` naming the port when taken."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: cannot resolve it ({exc.strerror})") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        # The option's fault, with its code (ConfigError, exit 2; it was exit 1, a bug's).
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"--port {port}: port {port} on {host} is already in use; "
                              f"pick another (0: any free port)") from None
        raise ConfigError(f"--host {host} --port {port}: cannot listen there: "
                          f"{exc.strerror}") from None
    return sock


@intel.group()
def keys() -> None:
    """Manage API keys (stored hashed; a key is shown once, when added)."""


@keys.command("add")
@click.argument("name")
@click.option("--rate", default="5/s", show_default=True,
              help="Sustained request rate, e.g. 5/s or 300/min.")
@click.option("--burst", type=FiniteFloat(min=1), default=None,
              help="Requests allowed at once (default: the per-second rate, at least 1).")
@click.option("--quota", default="10000/day", show_default=True,
              help="Requests per UTC day, e.g. 10000/day; 'none' for no quota.")
@_keys_opt
def keys_add(name: str, rate: str, burst: float | None, quota: str, keys_path: Path) -> None:
    """Create a key called NAME and print it (once: only its hash is kept)."""
    from argus_intel.keys import KeyStore, parse_quota, parse_rate

    store = KeyStore(keys_path.expanduser())
    record, key = store.add(
        name, rate_per_s=parse_rate(rate), burst=burst,
        quota_per_day=None if quota.strip().lower() == "none" else parse_quota(quota))
    quota_text = "no quota" if record.quota_per_day is None else \
        f"{record.quota_per_day}/day"
    click.echo(f"key {record.key_id} ({record.name}): {record.rate_per_s:g}/s, burst "
               f"{record.burst:g}, {quota_text}", err=True)
    click.echo("store it now; it cannot be shown again:", err=True)
    click.echo(key)


@keys.command("list")
@_keys_opt
def keys_list(keys_path: Path) -> None:
    """List keys (ids, names, limits, revoked or not; never secrets)."""
    from argus_intel.keys import KeyStore

    if not keys_path.expanduser().exists():  # a listing makes no file (nor its folders)
        click.echo(f"no keys: {keys_path} does not exist yet (`argus intel keys add` makes "
                   f"it)", err=True)
        return
    for k in KeyStore(keys_path.expanduser()).list():
        quota = "none" if k.quota_per_day is None else f"{k.quota_per_day}/day"
        state = "revoked" if k.revoked else "live"
        click.echo(f"{k.key_id}  {k.name}  rate {k.rate_per_s:g}/s  burst {k.burst:g}  "
                   f"quota {quota}  {state}")


@keys.command("revoke")
@click.argument("key_id_or_name")
@_keys_opt
def keys_revoke(key_id_or_name: str, keys_path: Path) -> None:
    """Revoke a key by id, or every live key with that name (answers 403 from then on)."""
    from argus_intel.keys import KeyStore

    for k in KeyStore(keys_path.expanduser()).revoke(key_id_or_name):
        click.echo(f"revoked {k.key_id} ({k.name})")
