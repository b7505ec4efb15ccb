"""`argus ... | head`: a reader that closes the pipe early ends the command quietly (exit 0),
not with "error: Broken pipe"."""

from __future__ import annotations

import subprocess
import sys


def test_a_closed_pipe_is_not_an_error() -> None:
    code = ("import click, sys\n"
            "from argus_core.cli import cli\n"
            "@cli.command('flood')\n"
            "def flood():\n"
            "    for k in range(200000):\n"
            "        click.echo(f'line {k} ' + 'x' * 60)\n"
            "sys.argv = ['argus', 'flood']\n"
            "cli(prog_name='argus')\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # as `head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 0, err
    assert "Broken pipe" not in err and "error" not in err.lower(), err
