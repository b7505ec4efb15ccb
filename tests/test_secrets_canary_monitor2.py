"""Canary sweep of the monitor plugin and of ``argus backtest`` (kit:
``test_secrets_canary.py``; the leaky plugin and config: ``test_secrets_canary_core.py``).

* Monitor: ``argus -vvv run`` of a replay whose plugin reveals every canary and leaks it
  every way a careless client does (log lines, a fenced ``on_fill`` error stored as a
  risk event), with ``[plugins.monitor]`` serving; then ``/metrics``, ``/health``, a 404
  and a refused ``Host``, each asked with canaries in the query string, the path and an
  ``Authorization`` header, as a scraper misconfigured with a token would.  Scanned:
  every answer (status, headers, body), the monitor's log lines at DEBUG (its request
  log) as the CLI's formatter writes them, the run's stdout/stderr and run folder.
* ``argus backtest --set`` with a credential pasted inline into a secret field (refused:
  secrets are references; held) and into a plain field (a whole number, a decimal): the
  type error describes a long text that is not written like a number ("a text of 56
  characters") instead of printing it back (it was never revealed and has no key shape,
  so redaction cannot catch it).
"""

from __future__ import annotations

import json
import logging
import socket
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_secrets_canary import CANARIES, canary, collect, leaks, plant
from test_secrets_canary_core import leaky_plugin, not_short, run_cli, write_config

from argus_core.logs import RedactingFormatter
from argus_core.secrets import forget_all

argus_monitor = pytest.importorskip("argus_monitor")


@pytest.fixture(autouse=True)
def _forget() -> Iterator[None]:
    forget_all()
    yield
    forget_all()
    argus_monitor.stop_all()


class Lines(logging.Handler):
    """Log lines as the CLI writes them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answer_text(resp: httpx.Response) -> str:
    headers = "\n".join(f"{k}: {v}" for k, v in resp.headers.items())
    return f"{resp.status_code}\n{headers}\n\n{resp.text}"


def test_monitor_answers_and_logs_hold_no_canary(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    refs = plant(tmp_path, monkeypatch)
    port = free_port()
    config = write_config(tmp_path, refs)
    text = config.read_text().replace("plugins = []", 'plugins = ["monitor"]', 1)
    config.write_text(text + f"\n[plugins.monitor]\nport = {port}\n")
    run_dir = tmp_path / "run"
    code, out, err = run_cli(["-vvv", "--traceback", "run", "--config", str(config),
                              "--run-dir", str(run_dir), "--no-progress"], leaky_plugin())
    assert code in (0, 6), err[-2000:]
    assert "auth failed" in out + err  # the plugin echoed its secrets (redacted)
    lines, logger = Lines(), logging.getLogger("argus_monitor")
    logger.addHandler(lines)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    answers: dict[str, str] = {}
    pasted = [canary(n) for n in ("kraken_key", "pm_api_secret", "spaces", "password_regex",
                                  "telegram", "anthropic")]
    try:
        base = f"http://127.0.0.1:{port}"
        for path in ("/metrics", "/health", "/nothing"):
            for value in pasted:
                q = urllib.parse.quote(value, safe="")
                for name, url, headers in (
                        ("query", f"{base}{path}?token={q}&api_key={q}", {}),
                        ("path", f"{base}{path}/{q}", {}),
                        ("header", f"{base}{path}", {"Authorization": f"Bearer {value}"}),
                        ("host", f"{base}{path}?k={q}", {"Host": "evil.example"})):
                    resp = httpx.get(url, headers=headers, timeout=10)
                    answers[f"{path} {name} {value[:4]}"] = answer_text(resp)
    finally:
        logger.removeHandler(lines)
        logger.setLevel(old)
    assert answers["/metrics query " + pasted[0][:4]].startswith("200")
    assert "argus_risk_events" in answers["/metrics query " + pasted[0][:4]]
    assert any("GET /metrics?token=" in line for line in lines.lines)  # its request log
    artifacts = {f"answer {k}": v for k, v in answers.items()}
    artifacts |= {"monitor log": "\n".join(lines.lines), "stdout": out, "stderr": err}
    artifacts |= {f"run/{k}": v for k, v in collect(run_dir).items()}
    found = not_short(leaks(artifacts))
    assert not found, "secrets leaked:\n" + "\n".join(map(str, found))


PASTED = ["kraken_key", "pm_api_secret", "password_regex", "spaces", "kalshi_key_id"]


def backtest_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str, value: str
                 ) -> str:
    """``argus backtest --set KEY=VALUE`` (refused); what it printed."""
    refs = plant(tmp_path, monkeypatch)
    config = write_config(tmp_path, refs)
    setting = f"{key}=[{json.dumps(value)}]" if key.endswith("secrets") else f"{key}={value}"
    code, out, err = run_cli(["backtest", "--config", str(config), "--run-dir",
                              str(tmp_path / "run"), "--no-progress", "--set", setting],
                             leaky_plugin())
    assert code != 0, out[-500:]
    return out + err


@pytest.mark.parametrize("name", PASTED)
def test_backtest_set_refuses_an_inline_secret_without_echoing_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    # The key itself where a reference belongs: refused, not printed back.
    printed = backtest_set(tmp_path, monkeypatch, "plugins.leaky.secrets", canary(name))
    assert "inline secret values are refused" in printed
    found = leaks({"--set secrets": printed}, [CANARIES[name]])
    assert not found, "secrets leaked:\n" + "\n".join(map(str, found))


@pytest.mark.parametrize("key", ["plugins.example.fast", "run.starting_cash"])
@pytest.mark.parametrize("name", PASTED)
def test_backtest_set_with_a_credential_in_a_plain_setting_does_not_echo_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, key: str) -> None:
    printed = backtest_set(tmp_path, monkeypatch, key, canary(name))
    assert "@" in printed  # refused, naming the setting
    found = leaks({f"--set {key}": printed}, [CANARIES[name]])
    assert not found, "secrets leaked:\n" + "\n".join(map(str, found))
