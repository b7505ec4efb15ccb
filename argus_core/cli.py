"""The ``argus`` command line.

Exit codes are stable and listed in :data:`EXIT_CODES` (shown by ``argus --help``).
Every refusal prints one line through :func:`fail`, ``error: <message>`` on stderr;
``--traceback`` shows the Python traceback too.  User text (messages, paths, plugin
names, venue data) is never read as rich markup: both consoles have markup off.

Nothing the CLI prints about a failure shows a secret: messages and tracebacks pass
through :func:`argus_core.secrets.redact` (an exception from a venue client may echo a
URL or a request header).  A file or folder that cannot be read or written exits 1 with
its path and the reason, a damaged ledger 7, and anything unexpected (a bug) prints its
redacted traceback and exits 1.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import math
import os
import re
import sys
import traceback as tb
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from argus_core.discovery import BLOCK_ENV, COMMANDS_GROUP, blocked_plugins, command_entry_points
from argus_core.errors import ArgusError, ConfigError, LedgerError, PluginError, RiskHalted

if TYPE_CHECKING:
    from argus_core.config import Config
    from argus_core.ledger import Ledger

# The domain model, the ledger, pluggy, numpy and asyncio are imported by the commands
# that use them, not here: `argus --help` and a plugin's command pay only for click and rich.

def load_config(path: Path) -> Config:
    """:func:`argus_core.config.load_config`, imported on first use."""
    from argus_core.config import load_config as load

    return load(path)


class _Console:
    """A rich ``Console`` made on first use (importing rich.console costs ~50 ms that
    ``argus --help`` does not need)."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._console: Any = None

    def get(self) -> Any:
        """The rich ``Console`` itself (to hand to rich objects)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._kwargs)
            # rich exits 1 at a closed pipe, silently (a recorded kill read as failed):
            # stop writing there and raise, for ArgusGroup's exit 0 or a caller to go on.
            self._console.on_broken_pipe = lambda: _closed_pipe(self._console.file)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)


def _closed_pipe(stream: Any) -> NoReturn:
    """rich's ``on_broken_pipe``: the reader of ``stream`` has gone."""
    with suppress(OSError, ValueError):  # writes to it go nowhere from now on
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
    raise BrokenPipeError


# markup=False: "[run] scanners is empty" or a plugin named "x[extra]" prints as written.
console: Any = _Console(stderr=True, markup=False, highlight=False)
out: Any = _Console(markup=False)
#: Every exit code the CLI uses (8 and 9 come from argustrade-orchestrator's errors).
EXIT_CODES = {0: "success",
              1: "Argus error (also: a file or folder that cannot be read or written, or a "
                 "bug: its traceback is printed)",
              2: "config error or bad command-line usage",
              3: "plugin error (also: `argus plugins` found a broken plugin)", 4: "data error",
              5: "venue error", 6: "trading halted (a run that ends HALTED, after its summary)",
              7: "ledger error (also: another process is writing the run directory)",
              8: "sandbox error", 9: "orchestrator error", 130: "interrupted"}


def fail(message: str, exit_code: int) -> NoReturn:
    """Refuse: print ``error: <message>`` (verbatim, secrets redacted) on stderr and exit
    with ``exit_code``."""
    from rich.text import Text

    from argus_core.secrets import redact

    console.print(Text.assemble(("error:", "bold red"), " ", redact(message)), soft_wrap=True)
    raise SystemExit(exit_code)


def _print_traceback(exc: BaseException) -> None:
    """The traceback of ``exc`` (with its causes) on stderr, secrets redacted: an
    exception from a venue client may carry a signed URL or a header in its message."""
    from argus_core.secrets import redact

    click.echo(redact("".join(tb.format_exception(exc))).rstrip("\n"), err=True)


def _is_ledger_error(exc: BaseException) -> bool:
    # apsw is imported by the commands that open a ledger, never here (start-up cost).
    apsw = sys.modules.get("apsw")
    return apsw is not None and isinstance(exc, apsw.Error)


@contextmanager
def _ledger_of(run_dir: Path) -> Iterator[None]:
    """SQLite refusing ``run_dir``'s ledger (a damaged or foreign file) is a
    ``LedgerError`` naming the file (exit 7), not an apsw traceback."""
    try:
        yield
    except Exception as exc:
        import apsw

        # Another process held the write lock past the 5 s wait (a BusyError raised after
        # the ledger opened: a write; the ledger's own busy refusal passes as it is).
        if isinstance(exc, apsw.BusyError):
            raise LedgerError(f"{run_dir / 'argus.db'} is busy: another process held its write "
                              f"lock for over 5 s; nothing was written, try again") from exc
        if _is_ledger_error(exc):
            raise LedgerError(f"{run_dir / 'argus.db'} cannot be used: {type(exc).__name__}: "
                              f"{exc} (a damaged file, or not an Argus ledger)") from exc
        raise


def _os_error_message(exc: OSError) -> str:
    """``<path>: <reason>`` for a file or folder the command could not use."""
    paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    reason = exc.strerror or str(exc)
    return f"{paths}: {reason}" if paths else reason


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class Seconds(click.ParamType):
    """A finite number of seconds in (0, 1e9]: ``nan``, ``inf``, ``-1`` and 0 are usage
    errors (``--duration -1`` recorded anyway, ``nan`` forever)."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        """``value`` as seconds, or a usage error naming the option."""
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not (math.isfinite(seconds) and 0 < seconds <= 1e9):
            self.fail(f"{value!r} is not a number of seconds in (0, 1e9]", param, ctx)
        return seconds


class FiniteFloat(click.FloatRange):
    """click's ``FloatRange`` refusing ``nan`` and the infinities, a usage error naming
    the option: ``nan`` passes every range check (``--drift-quantile nan`` reached the
    model's validator as a traceback) and ``inf`` an open-ended one.  For plugin
    commands' number options."""

    name = "number"  # "'abc' is not a valid number." (click's range type says "float range")

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        """``value`` as a finite float in the range, or a usage error naming the option."""
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


#: Run directories: an existing file is a usage error, not a FileExistsError traceback.
RUN_DIR = click.Path(file_okay=False, path_type=Path)
#: Counts such as --max-events: 0 ran every event, -5 too.
COUNT = click.IntRange(min=1)


class ArgusGroup(click.Group):
    """A click group that turns ArgusErrors into one-line messages and stable exit codes,
    and adds the sub-commands plugins declare (entry-point group ``argus.commands``),
    importing a plugin's command only when it runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *command_entry_points()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        ep = command_entry_points().get(cmd_name)
        if ep is None and blocked_plugins() and cmd_name in {
                e.name for e in md.entry_points(group=COMMANDS_GROUP)}:
            raise click.UsageError(f"No such command {cmd_name!r}: its plugin is blocked by "
                                   f"{BLOCK_ENV} (now {os.environ[BLOCK_ENV]!r}); remove it "
                                   f"from that variable or unset it to use the command", ctx)
        return None if ep is None else _load_command(ep)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        with _usage_says_where():
            return super().parse_args(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Two sections, the core's and the plugins'; a plugin's line is its
        distribution's summary, so listing them imports no plugin code."""
        eps = command_entry_points()  # one scan of installed metadata (tens of ms)
        limit = formatter.width - 6 - max(map(len, {*self.commands, *eps}), default=0)
        own = [(n, c.get_short_help_str(limit)) for n, c in sorted(self.commands.items())
               if not c.hidden]
        theirs = [(n, _summary(ep, limit)) for n, ep in sorted(eps.items())
                  if n not in self.commands]
        for title, rows in (("Commands", own), ("Plugin commands", theirs)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with _usage_says_where():
                return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit,
                click.exceptions.Abort):
            raise  # usage errors (exit 2) and --help/--version: click prints them
        except ArgusError as exc:
            if ctx.meta.get("argus.traceback"):
                _print_traceback(exc)
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except BrokenPipeError:  # `argus ... | head` closed the pipe: the reader has enough
            with suppress(OSError, ValueError):  # no error at exit's flush either
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except OSError as exc:  # a run dir, an output file or a folder that cannot be used
            if ctx.meta.get("argus.traceback"):
                _print_traceback(exc)
            fail(_os_error_message(exc), ArgusError.exit_code)
        except Exception as exc:
            if _is_ledger_error(exc):  # SQLite refused the ledger file (damaged, foreign)
                if ctx.meta.get("argus.traceback"):
                    _print_traceback(exc)
                fail(f"the ledger cannot be used: {type(exc).__name__}: {exc} (a damaged "
                     f"file, or not an Argus ledger)", LedgerError.exit_code)
            # A bug: the traceback helps whoever reports it; secrets are redacted from it.
            _print_traceback(exc)
            fail(f"unexpected {type(exc).__name__}: {exc} (a bug in Argus or a plugin; the "
                 f"traceback above shows where)", ArgusError.exit_code)


class PluginCommand(click.Command):
    """Base of a plugin's command (``cls=PluginCommand``; :class:`PluginGroup` for a
    group): under ``argus`` the core prints an ``ArgusError`` as one ``error:`` line with
    its exit code; run on its own (a test's ``CliRunner``, a console script) the command
    does the same, redacted, instead of click's traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; on its own, an ``ArgusError`` is ``error: ...`` + its code."""
        if ctx.parent is not None:  # under `argus`: the core's handler (and --traceback)
            return super().invoke(ctx)
        try:
            return super().invoke(ctx)
        except ArgusError as exc:
            fail(str(exc), exc.exit_code)


class PluginGroup(PluginCommand, click.Group):
    """A plugin's command group: see :class:`PluginCommand`."""


@contextmanager
def _usage_says_where() -> Iterator[None]:
    """A usage error's line names the command it is about (``Error: argus run: No such
    option ...``): click's three lines stay, and exit 2, but a log that keeps only the
    last line still says where."""
    try:
        yield
    except click.UsageError as exc:
        where, said = exc.ctx.command_path if exc.ctx else None, exc.format_message()
        # A group run without a command shows its help (click >= 8.2): left as it is.
        help_only = getattr(click.exceptions, "NoArgsIsHelpError", ())
        if not where or said.startswith(f"{where}: ") or isinstance(exc, help_only):
            raise
        raise click.UsageError(f"{where}: {said}", exc.ctx) from exc


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """The core's version and each installed plugin distribution's, from metadata only."""
    if not value or ctx.resilient_parsing:
        return
    from argus_core.discovery import CORE_DISTRIBUTION, ENTRY_POINT_GROUP

    click.echo(f"argus {md.version(CORE_DISTRIBUTION)}")
    dists = {ep.dist.name: ep.dist.version for ep in md.entry_points(group=ENTRY_POINT_GROUP)
             if ep.dist is not None and ep.dist.name != CORE_DISTRIBUTION}
    for name, version in sorted(dists.items()):
        click.echo(f"  {name} {version}")
    ctx.exit(0)


@click.group(cls=ArgusGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog="\b\nExit codes:\n" + "\n".join(f"  {code:<4} {what}"
                                                    for code, what in EXIT_CODES.items()))
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_print_version, help="Show the core's and plugins' versions.")
@click.option("--traceback", is_flag=True, help="Show Python tracebacks on errors.")
@click.option("-v", "--verbose", count=True,
              help="-v Argus's decisions (INFO), -vv Argus's DEBUG, -vvv everyone's DEBUG.")
@click.option("--log-json", is_flag=True, envvar="ARGUS_LOG_JSON",
              help="Log JSON lines to stderr (ts, level, logger, message, run_id).")
@click.pass_context
def cli(ctx: click.Context, traceback: bool, verbose: int, log_json: bool) -> None:
    """Argus: one loop for replay, paper and live trading, driven by plugins.

    \b
    Start here:
      argus demo                         offline demo on bundled Kraken BTC/USD bars
      argus plugins                      what is installed and what it registers
      argus run --config C --run-dir D   run (or resume) a config; live needs --live
      argus report D                     write D/report.html with plots and metrics
    """
    from argus_core.logs import configure

    ctx.meta["argus.traceback"] = traceback
    configure(verbose, log_json)


# -- plugins -------------------------------------------------------------------------
@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="Load only the plugins this config names.")
def plugins_cmd(as_json: bool, config_path: Path | None) -> None:
    """List every loaded plugin: name, distribution, version, hooks and registrations."""
    from argus_core.plugins import PluginHost

    host = PluginHost()
    host.load(load_config(config_path).argus.plugins if config_path else None, tolerant=True)
    rows = host.info()
    if as_json:
        out.print_json(json.dumps(
            [{"name": r.name, "distribution": r.distribution, "version": r.version,
              "hooks": list(r.hooks), "registered": r.registered, "error": None}
             for r in rows]
            + [{"name": name, "error": why} for name, why in host.broken.items()]))
    else:
        from rich.table import Table
        from rich.text import Text

        table = Table("plugin", "distribution", "version", "hooks", "registered")
        for r in rows:
            table.add_row(r.name, r.distribution or "-", r.version or "-", ", ".join(r.hooks),
                          "; ".join(f"{k}: {', '.join(v)}" for k, v in r.registered.items()))
        for name, why in host.broken.items():
            table.add_row(Text(name, style="red"), "-", "-", Text("BROKEN", style="red"), why)
        out.print(table)
    if blocked := blocked_plugins():  # on stderr: --json's output stays one document
        console.print(f"not loaded, blocked by {BLOCK_ENV}: {', '.join(sorted(blocked))}")
    if host.broken:  # listed, but a broken plugin is still an error for scripts
        fail("plugin(s) failed to load: " + "; ".join(f"{name} ({why})" for name, why
                                                       in host.broken.items()),
             PluginError.exit_code)


# -- run / demo / backtest ----------------------------------------------------------
@contextmanager
def _progress(label: str, enabled: bool) -> Iterator[Any]:
    """A progress bar's ``update(n, total=None)``, or ``None`` when nothing would show:
    disabled, or stderr is not a terminal (rich draws no live bar into a file or a pipe,
    so a script, CI or a benchmark would only pay for the bar's total, an extra pass
    over the replayed file)."""
    if not enabled or not console.is_terminal:
        yield None
        return
    import rich.progress as rp

    # Percentage and ETA fill in once ``bar(n, total)`` gives a total; a count until then.
    with rp.Progress(rp.SpinnerColumn(), rp.TextColumn("{task.description}", style="bold",
                                                       markup=False),
                     rp.BarColumn(), rp.TaskProgressColumn(),
                     rp.TextColumn("{task.completed:,} events"), rp.TimeElapsedColumn(),
                     rp.TextColumn("eta"), rp.TimeRemainingColumn(),
                     console=console.get(), transient=True) as progress:
        task = progress.add_task(label, total=None)
        yield lambda n, total=None: progress.update(task, completed=n, total=total)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (``docker stop``, systemd, Kubernetes) stops a run as Ctrl-C does: drained,
    its row ``stopped``, shutdown hooks run, resumable (Python's default ends the process
    at once, the row left ``running``).  Main thread only (where signals are handled)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    def on_term(_signum: int, frame: Any) -> None:
        # What Ctrl-C would run now: asyncio's handler (the main task cancelled: a drained
        # stop) inside a run, else KeyboardInterrupt.  Not raise_signal(SIGINT): a job
        # started in the background by a script (`argus run ... &`, nohup) has SIGINT
        # ignored, so the run never stopped.
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):
            handler(signal.SIGINT, frame)
        else:
            signal.default_int_handler(signal.SIGINT, frame)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(config: Config, run_dir: Path, *, live: bool, show_progress: bool,
         max_events: int | None = None, made: list[Path] | None = None) -> Any:
    """Run ``config`` in ``run_dir`` (``made``: the folders the command made for it, itself
    first; None: those missing now).  A start refused (a bad config, a held lock, live
    refused, an error before the first event, a replay of nothing) leaves the directory
    as it found it: only a run that did work leaves a trace."""
    from argus_core.errors import DataError
    from argus_core.ledger import LEDGER_FILE
    from argus_core.runlock import undo_refused_start
    from argus_core.runner import Runner

    if made is None:
        made = [folder for folder in (run_dir, *run_dir.parents) if not folder.exists()]
    found = None if run_dir in made or not run_dir.is_dir() else {*os.listdir(run_dir)}
    with _progress(f"{config.argus.mode} {run_dir.name}", show_progress) as bar:
        try:
            runner = Runner(config, run_dir, live_confirmed=live, progress=bar,
                            max_events=max_events)
        except BaseException:
            undo_refused_start(run_dir, found, made[1:])
            raise
        ran = False  # run_sync closes the ledger and gives the lock back; before it, we do
        try:
            if bar is not None:
                bar(0, min(filter(None, (max_events, runner.asm.venue.expected_events())),
                           default=None))
            ran = True
            with _sigterm_as_interrupt():
                summary = runner.run_sync()
            if summary.events == 0 and config.argus.mode == "replay":
                raise DataError(_nothing_replayed(config, runner.asm.venue))
            return summary
        except KeyboardInterrupt:
            # The loop has closed the ledger: say where it stopped, then exit 130.
            with suppress(BrokenPipeError):
                out.print(f"interrupted after event {runner.seq:,}, trading state "
                          f"{runner.trading_state.value}; the ledger in {run_dir} holds "
                          f"everything to its last commit, and the same command resumes it")
            raise
        except Exception:
            if not ran:
                runner.close()
            # Nothing done yet, and no ledger of an earlier run there (whose files a reader
            # may hold open): what it made goes.
            if runner.seq == 0 and not (runner.n_orders or runner.n_fills) \
                    and LEDGER_FILE not in (found or ()):
                undo_refused_start(run_dir, found, made[1:])
            raise


def _nothing_replayed(config: Config, venue: Any) -> str:
    """Why a replay had no events, with the window and the span of the data when the
    builtin replay venue read bars."""
    from argus_core.builtins.replay_venue import ReplayVenue, _to_epoch_s, iter_bars_csv

    path = venue.s.bars_csv if isinstance(venue, ReplayVenue) else None
    if path is None:
        return (f"the replay had no events: venue {config.run.venue!r} sent none (is its "
                f"recording empty?)")
    s, first, last = venue.s, None, None
    for bar in iter_bars_csv(path, venue.instrument_id, s.bar_seconds, warn_gaps=False):
        first, last = first or bar, bar
    when = [datetime.fromtimestamp(b.ts_ns // 10**9 - s.bar_seconds, UTC).strftime(
        "%Y-%m-%d %H:%M UTC") for b in (first, last) if b is not None]
    start, end = _to_epoch_s(s.start), _to_epoch_s(s.end)
    backwards = start is not None and end is not None and start >= end
    return (f"{path}: no bars in the replay window [plugins.replay] start = "
            f"{'(none)' if start is None else s.start}, end = {'(none)' if end is None else s.end}"
            f"{' (start is not before end)' if backwards else ''}; "
            + (f"the file's bars open from {when[0]} to {when[1]}" if when
               else "the file holds no bars"))


def _print_summary(summary: Any, metrics: dict[str, Any] | None = None) -> None:
    from rich.table import Table

    table = Table(title=f"Argus run {summary.run_id}", show_header=False)
    rows = [
        ("run directory", str(summary.run_dir)), ("mode", summary.mode),
        ("events", f"{summary.events:,}" + (f" (resumed after {summary.resumed_from:,})"
                                            if summary.resumed_from else "")),
        ("orders / fills", f"{summary.orders:,} / {summary.fills:,}"),
        ("fees paid", f"{summary.fees:,.2f}"),
        ("equity", f"{summary.starting_equity:,.2f} -> {summary.final_equity:,.2f} "
                   f"({summary.total_return:+.2%})"),
        ("trading state", summary.trading_state),
        ("speed", f"{summary.events / max(summary.elapsed_s, 1e-9):,.0f} events/s"),
    ]
    if metrics:
        from argus_core.metrics import annualisation_note

        rate = float(metrics.get("obs_per_year") or 0.0)
        rows += [("sharpe", f"{metrics['sharpe']:.2f} ({annualisation_note(rate)})"),
                 ("max drawdown", f"{metrics['max_drawdown']:.2%}"),
                 ("plays / win rate", f"{metrics['n_trades']:,} / {metrics['win_rate']:.1%}")]
    for k, v in rows:
        table.add_row(k, v)
    out.print(table)


RUNS = Path("argus-runs")


def _default_run_dir(prefix: str) -> Path:
    """A new folder ``argus-runs/<prefix>-<time>`` (``-2``, ``-3``... when one exists):
    created here, atomically, so two commands started in the same second never share it
    (the second was refused by the first's lock, exit 7)."""
    base = RUNS / f"{prefix}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        path = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise click.UsageError(f"no free run folder next to {base}: pass --run-dir")


@cli.command("run")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path),
              help="TOML config file.")
@click.option("--run-dir", type=RUN_DIR, required=True,
              help="Run directory (ledger argus.db); an existing one is resumed.")
@click.option("--live", is_flag=True, help="Confirm live trading when the config's mode is "
                                           "'live'. Never the default.")
@click.option("--max-events", type=COUNT, default=None, help="Stop after N events.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def run_cmd(config_path: Path, run_dir: Path, live: bool, max_events: int | None,
            no_progress: bool) -> None:
    """Run a config through the loop (replay, paper or live), resuming RUN_DIR if it exists."""
    config = load_config(config_path)
    with _ledger_of(run_dir):
        summary = _run(config, run_dir, live=live, show_progress=not no_progress,
                       max_events=max_events)
    with suppress(BrokenPipeError):  # nobody reads it (`| head`): the exit code still counts
        _print_summary(summary)
    _exit_if_halted(summary)


def _exit_if_halted(summary: Any) -> None:
    """A run that ended HALTED exits 6 (after its summary): scripts must not read it as ok."""
    if summary.trading_state == "halted":
        fail(f"trading in {summary.run_dir} is HALTED; "
             f"`argus resume --run-dir {summary.run_dir}` clears it", RiskHalted.exit_code)


@cli.command("demo")
@click.option("--run-dir", type=RUN_DIR, default=None,
              help="Where to write the run (default: argus-runs/demo-<time>).")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def demo_cmd(run_dir: Path | None, no_progress: bool) -> None:
    """Offline demo: `argus run` on the bundled examples/demo.toml, then `argus report`."""
    _backtest(load_config(_find_example("demo.toml")), run_dir, "demo", not no_progress)


def _backtest(config: Config, run_dir: Path | None, prefix: str, show_progress: bool) -> Any:
    """Replay ``config`` into ``run_dir`` (None: a new ``argus-runs/<prefix>-<time>``),
    write the report, print the summary."""
    from argus_core.report import write_report_data

    made = None  # by the command: the run folder, and argus-runs when it was not there
    if run_dir is None:
        made = [] if RUNS.exists() else [RUNS]
        run_dir = _default_run_dir(prefix)
        made.insert(0, run_dir)
    with _ledger_of(run_dir):
        summary = _run(config, run_dir, live=False, show_progress=show_progress, made=made)
        # The report's read of the run carries its metrics: the ledger is not read twice.
        report, data = write_report_data(run_dir, config)
    with suppress(BrokenPipeError):  # nobody reads it (`| head`): the exit code still counts
        _print_summary(summary, data.metrics)
        out.print(f"report: {report}")
    return summary


def _find_example(name: str) -> Path:
    # The copy inside an installed wheel first; a checkout's examples/ otherwise.
    for base in (Path(__file__).resolve().parent / "_examples", EXAMPLES):
        if (base / name).exists():
            return base / name
    raise ConfigError(f"bundled example {name} not found; run from a checkout installed with "
                      f"`pip install -e .`")


@cli.command("backtest")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path))
@click.option("--run-dir", type=RUN_DIR, default=None,
              help="Default: argus-runs/backtest-<time>.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a config value, e.g. --set plugins.example.fast=12 (repeatable).")
@click.option("--no-progress", is_flag=True)
def backtest_cmd(config_path: Path, run_dir: Path | None, sets: tuple[str, ...],
                 no_progress: bool) -> None:
    """Replay a config as a backtest, then write the report and print the metrics."""
    from argus_core.config import apply_overrides, parse_overrides

    config = apply_overrides(load_config(config_path), parse_overrides(sets), origin="--set")
    if config.argus.mode == "live":
        raise ConfigError(f"{config_path}: a backtest cannot run in mode 'live'")
    _exit_if_halted(_backtest(config, run_dir, "backtest", not no_progress))


@cli.command("report")
@click.argument("run_dir", type=RUN_DIR)
def report_cmd(run_dir: Path) -> None:
    """Write RUN_DIR/report.html: equity and drawdown plots, trades, metrics."""
    from argus_core.report import write_report

    with _ledger_of(run_dir):
        out.print(f"report: {write_report(run_dir)}")


# -- kill / resume -------------------------------------------------------------------
def _who() -> str:
    """Who ran the command, for the audit trail: ``cli:<login>``."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "cli"


def _control_ledger(run_dir: Path) -> Ledger:
    from argus_core.ledger import LEDGER_FILE, Ledger, check_run_ledger

    if not (run_dir / LEDGER_FILE).exists():
        raise LedgerError(f"{run_dir}: no {LEDGER_FILE}; is this a run directory?")
    if not os.access(run_dir, os.W_OK):  # SQLite would say "unable to open database file"
        raise LedgerError(f"{run_dir} is read-only (a read-only mount or folder): this "
                          f"command writes its ledger")
    with _ledger_of(run_dir):
        check_run_ledger(run_dir)  # an empty or foreign file: refused, never made a ledger
        return Ledger.in_dir(run_dir)


@cli.command("kill")
@click.option("--run-dir", required=True, type=RUN_DIR)
@click.option("--reason", default="killed by a person with `argus kill`")
@click.option("--flatten", is_flag=True,
              help="Also close every open position (reduce-only orders through the "
                   "execution engine), then stay HALTED.")
def kill_cmd(run_dir: Path, reason: str, flatten: bool) -> None:
    """HALT trading in a run: working orders are cancelled and nothing but reduce-only
    exits passes until `argus resume`; with --flatten every position is closed first.
    The running loop picks it up at its next commit or idle point, within about a second
    in a quiet market (a run started later, at its start).
    A run already HALTED (and flattening, for --flatten) is left as it is."""
    latch, changed = _request(run_dir, "flatten" if flatten else "kill", reason)
    flattening = "; flattening every position" if flatten else ""
    said = (f"trading HALTED ({latch['reason']}){flattening}" if changed else
            f"trading is already HALTED ({latch.get('reason', '')}"
            f"{'; flattening' if latch.get('flatten') else ''}); nothing changed")
    out.print(f"{run_dir}: {said}", soft_wrap=True)  # one line, however long the path
    _say_if_not_running(run_dir, "it is halted when it next starts; orders it left at a "
                                 "venue work there until then")


@cli.command("resume")
@click.option("--run-dir", required=True, type=RUN_DIR)
def resume_cmd(run_dir: Path) -> None:
    """Clear HALTED or REDUCING in a run: a person's decision, recorded in the ledger."""
    from argus_core.control import left_open_by_resume, left_open_text, request_trading_state

    with _control_ledger(run_dir) as ledger, _ledger_of(run_dir):  # and what a resume stops
        left = left_open_by_resume(ledger)
        _, changed = request_trading_state(ledger, "resume", "cleared by a person with "
                                           "`argus resume`", _who())
    said = "" if changed else " already; nothing changed"
    out.print(f"{run_dir}: trading ACTIVE{said}", soft_wrap=True)
    if changed and left:
        out.print(left_open_text(left, "`argus kill --flatten`"), soft_wrap=True)
    _say_if_not_running(run_dir, "it trades when it next starts")


def _say_if_not_running(run_dir: Path, then: str) -> None:
    """A person at the controls must know when no process acts on what they asked."""
    from argus_core.runlock import writer_pid

    if writer_pid(run_dir) is None:
        out.print(f"no process is running this run: {then}", soft_wrap=True)


def _request(run_dir: Path, action: str, reason: str) -> tuple[dict[str, Any], bool]:
    from argus_core.control import request_trading_state

    with _control_ledger(run_dir) as ledger, _ledger_of(run_dir):
        return request_trading_state(ledger, action, reason, _who())


# -- record / scan -------------------------------------------------------------------
@cli.command("record")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="NDJSON file to write (one serialised market event per line).")
@click.option("--duration", type=Seconds(), default=60.0, show_default=True,
              help="Seconds to record.")
@click.option("--max-events", type=COUNT, default=None, help="Stop after N events.")
def record_cmd(config_path: Path, out_path: Path, duration: float,
               max_events: int | None) -> None:
    """Record the configured venue's normalised stream to NDJSON for later replay."""
    import asyncio

    from argus_core.recorder import record

    config = load_config(config_path)
    with _sigterm_as_interrupt():  # `docker stop`: the venue closed, the file whole
        n = asyncio.run(record(config, out_path, duration_s=duration, max_events=max_events))
    if n == 0:  # a header-only file replays as a silent empty run
        fail(f"recorded no events in {duration:g} s to {out_path} (a recording there before "
             f"is left as it was): is the venue streaming, and are its instruments "
             f"configured?", 4)
    out.print(f"recorded {n:,} events to {out_path}")


@cli.command("scan")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path))
@click.option("--once", is_flag=True, help="One snapshot, one scan, then exit.")
@click.option("--json", "as_json", is_flag=True, help="Print opportunities as a JSON list.")
@click.option("--interval", type=Seconds(), default=5.0, show_default=True,
              help="Seconds between scans (continuous mode).")
@click.option("--max-scans", type=COUNT, default=None, help="Stop after N scans.")
def scan_cmd(config_path: Path, once: bool, as_json: bool, interval: float,
             max_scans: int | None) -> None:
    """Snapshot the configured venues and run the configured scanners."""
    import asyncio

    from argus_core.scan import run_scan

    config = load_config(config_path)
    asyncio.run(run_scan(config, once=once, as_json=as_json, interval_s=interval,
                         max_scans=max_scans, out=out.get()))


def _summary(ep: md.EntryPoint, limit: int) -> str:
    """``distribution: its summary``, shortened, read from installed metadata."""
    if ep.dist is None:
        return ep.value
    summary = re.sub(r"^Argus[^:]*:\s*", "", ep.dist.metadata["Summary"] or "")
    text = f"{ep.dist.name}: {summary}"
    # click's own shortener is deprecated from click 8.5: the same rule, on words.
    if len(text) <= limit:
        return text
    return text[:max(limit - 3, 0)].rsplit(" ", 1)[0].rstrip(",;:") + "..."


def _load_command(ep: md.EntryPoint) -> click.Command:
    """Import a plugin's command; a broken one is a PluginError naming it (exit 3)."""
    dist = ep.dist.name if ep.dist else "?"
    try:
        command = ep.load()
    except Exception as exc:
        raise PluginError(f"command {ep.name!r} of {dist} ({ep.value}) failed to import: "
                          f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(command, click.Command):
        raise PluginError(f"command {ep.name!r} of {dist}: {ep.value} is a "
                          f"{type(command).__name__}, not a click command")
    return command


def main() -> None:
    """Console entry point."""
    cli(prog_name="argus")


if __name__ == "__main__":
    main()
    sys.exit(0)
