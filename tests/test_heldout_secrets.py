"""Held-out audit: secrets never reach logs, the ledger, error messages or tracebacks.

Was (each test below failed before its fix):

* ``redact`` knew shapes only: a revealed Kraken API key (56 base64 characters), a
  Polymarket L2 secret (44) or passphrase (64 hex), a private key without ``0x``, a
  Telegram bot token in the Bot API's URL, a PEM private key (64-character lines) and
  credentials in JSON, dict reprs, query strings and headers (``{"api_key": "..."}``,
  ``?api_key=...``, ``Authorization: Bearer ...``) all passed through.  Now every value
  ``Secret.reveal`` reads is remembered and replaced whatever its shape, and the shapes
  cover those forms;
* ``argus`` printed an error's message as is (``error: ... for url
  'https://.../bot<token>/getMe'``), ``--traceback`` and any unexpected exception printed
  Python's raw traceback, and so did a thread's uncaught exception;
* ``argus kill --reason`` stored its text in the ledger unredacted;
* an empty ``$env:`` variable or key file was handed to the client as the key; a key file
  that is not UTF-8 was a ``UnicodeDecodeError`` traceback; ``$env:MY-KEY`` (not a variable
  name) was accepted and then "not set"; a relative ``$file:`` was read from the shell's
  working directory, unlike every other path in a config.

Held (pinned here): ``repr`` of every venue's, Telegram's and the orchestrator's settings
shows references only; ``runs.config_json`` holds references only; inline secrets are
refused without echoing them; Kalshi's signer hides its key.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from argus_core.cli import cli
from argus_core.config import canonical_json, load_config, parse_config, plugin_settings
from argus_core.errors import ConfigError, VenueError
from argus_core.ledger import Ledger
from argus_core.secrets import Secret, find_key_shaped, forget_all, redact

KRAKEN_KEY = "Xq3pR8vLmN2bK7wZt4yHc9sDfGj1aE6uIo5Pn0QxVrTl8MkJhBgCfA2d"  # 56 chars
PM_SECRET = "dGhpc2lzYXNlY3JldGZvcnRlc3RzMTIzNDU2Nzg5MA=="  # 44 chars
PM_PASSPHRASE = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
BARE_EVM_KEY = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
TELEGRAM_TOKEN = "7014462853:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"
PEM = ("-----BEGIN RSA PRIVATE KEY-----\n"
       "MIIEowIBAAKCAQEAyP4k1L0c5y7aYx1qzj7q5e2QmZ1mB3h9Q0eFvN3kD8rTg2sH\n"
       "b7Jc0yR2uLq1nV5wX8pZ3oA6tE9iK4mU7cS2dF1gH0jN5lO8qP3rT6vW9xY2zA4\n"
       "-----END RSA PRIVATE KEY-----")


@pytest.fixture(autouse=True)
def _forget() -> Iterator[None]:
    forget_all()
    yield
    forget_all()


def reveal(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> str:
    """Set ``$env:name`` to ``value`` and reveal it as a client would."""
    monkeypatch.setenv(name, value)
    return Secret(f"$env:{name}").reveal()


# -- redact: revealed values, whatever their shape ------------------------------------------
@pytest.mark.parametrize("value", [KRAKEN_KEY, PM_SECRET, PM_PASSPHRASE, BARE_EVM_KEY])
def test_a_revealed_secret_is_redacted_whatever_its_shape(
        monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    reveal(monkeypatch, "ARGUS_TEST_SECRET", value)
    for text in (f"GET /private?nonce=1 failed: {value}", f"{{'k': '{value}'}}",
                 f"headers={{'API-Key': '{value}'}}", f"...{value}\n"):
        assert value not in redact(text), text
        assert "[REDACTED]" in redact(text)
    assert value in find_key_shaped(f"prompt text {value} more")


def test_a_revealed_pem_key_is_redacted_whole_and_line_by_line(tmp_path: Path) -> None:
    key_file = tmp_path / "kalshi.pem"
    key_file.write_text(PEM + "\n")
    assert Secret(f"$file:{key_file}").reveal() == PEM
    line = PEM.splitlines()[1]
    assert line not in redact(f"ValueError: bad key line {line!r}")
    assert "PRIVATE KEY" not in redact(f"key={PEM!r}")


@pytest.mark.parametrize("text", [
    f"HTTPStatusError: Client error '401 Unauthorized' for url "
    f"'https://api.telegram.org/bot{TELEGRAM_TOKEN}/getMe'",
    PEM, PEM[:120],  # a PEM key whole, and cut short (a truncated repr)
    '{"api_key": "abcd1234efgh5678", "nonce": 1}',
    "{'api_secret': 'abcd1234efgh5678'}",
    "https://venue.example/v1/orders?api_key=abcd1234efgh5678&ts=1",
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc",
    "POLY_PASSPHRASE: 0123456789abcdef0123456789abcdef",
    "KALSHI-ACCESS-SIGNATURE: c2lnbmF0dXJlMTIzNDU2Nzg5MA==",
    '{"event": "subscribe", "token": "1Dwc4lzSwNWOAwkMdqhssNNFhs1ed606d1WcF3XfEMw"}',
])
def test_credential_shapes_never_revealed_here_are_redacted(text: str) -> None:
    secretish = [s for s in ("AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1", "MIIEowIBAAKCAQEA",
                             "abcd1234efgh5678", "eyJhbGciOiJIUzI1NiJ9", "0123456789abcdef",
                             "c2lnbmF0dXJl", "1Dwc4lzSwNWOAwkM") if s in text]
    assert secretish
    out = redact(text)
    assert "[REDACTED]" in out and not any(s in out for s in secretish), out
    assert find_key_shaped(text)


@pytest.mark.parametrize("text", [
    'api_key = "$env:KRAKEN_API_KEY"',  # a reference is no secret
    "sig = inspect.signature(fn)", "secret = os.environ[name]", 'sort_key = "timestamp"',
    "token_id=71321045679252212594626385532706912750332728571942532289631379312455583992563",
    "2024-01-01T10:00:00.123456+00:00 filled 0.5 BTC/USD at 43210.5",
    "password=[REDACTED]",
])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text
    assert not find_key_shaped(text)


# -- Secret references -----------------------------------------------------------------------
def test_an_empty_secret_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARGUS_EMPTY", "")
    with pytest.raises(ConfigError, match="ARGUS_EMPTY is empty"):
        Secret("$env:ARGUS_EMPTY").reveal()
    blank = tmp_path / "blank"
    blank.write_text("  \n")
    with pytest.raises(ConfigError, match="is empty"):
        Secret(f"$file:{blank}").reveal()


def test_a_binary_key_file_is_a_config_error(tmp_path: Path) -> None:
    binary = tmp_path / "key.der"
    binary.write_bytes(b"\x30\x82\x04\xa4\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        Secret(f"$file:{binary}").reveal()


@pytest.mark.parametrize("ref", ["$env:MY-KEY", "$env:1KEY", "$env: KEY"])
def test_an_env_reference_must_name_a_variable(ref: str) -> None:
    with pytest.raises(ConfigError, match="not an environment variable name"):
        Secret(ref)


def test_a_non_text_reference_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="references"):
        Secret(12345)  # type: ignore[arg-type]  # the bad input under test


def test_a_relative_file_secret_resolves_against_the_config_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from argus_telegram.config import TelegramSettings

    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "tg").write_text(TELEGRAM_TOKEN + "\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text("[plugins.telegram]\ntoken = \"$file:keys/tg\"\nchat_ids = [1]\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the shell is somewhere else
    settings = plugin_settings(load_config(cfg), "telegram", TelegramSettings)
    assert settings.token.reveal() == TELEGRAM_TOKEN
    # the stored config keeps the reference as written
    assert '"$file:keys/tg"' in canonical_json(load_config(cfg))


def test_an_inline_secret_is_refused_without_echoing_it(tmp_path: Path) -> None:
    from argus_venue_kraken.config import KrakenSettings

    config = parse_config({"plugins": {"kraken": {"api_key": KRAKEN_KEY}}}, tmp_path / "c.toml")
    with pytest.raises(ConfigError) as info:
        plugin_settings(config, "kraken", KrakenSettings)
    assert "inline secret values are refused" in str(info.value)
    assert KRAKEN_KEY not in str(info.value)


def test_a_secret_in_the_wrong_setting_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"argus": {"seed": "sk-ant-api03-" + "x" * 40}})
    assert "sk-ant-api03" not in str(info.value) and "argus.seed" in str(info.value)


def test_settings_reprs_and_the_stored_config_hold_references_only(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from argus_orchestrator.config import OrchestratorSettings
    from argus_telegram.config import TelegramSettings
    from argus_venue_kalshi.config import KalshiSettings
    from argus_venue_kraken.config import KrakenSettings
    from argus_venue_polymarket.config import PolymarketSettings

    values = {"K_KEY": KRAKEN_KEY, "K_SEC": PM_SECRET * 2, "PM_PK": "0x" + BARE_EVM_KEY,
              "PM_KEY": "0b7d1d5b-4bb2-4c55-9c2b-2d1c3b0b6e11", "PM_SEC": PM_SECRET,
              "PM_PASS": PM_PASSPHRASE, "KA_ID": "a952bcbe-ec3b-4b5b-b8f9-11dae589608c",
              "TG": TELEGRAM_TOKEN, "ANTHROPIC": "sk-ant-api03-" + "y" * 40}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    pem = tmp_path / "k.pem"
    pem.write_text(PEM)
    tables = {
        "kraken": (KrakenSettings, {"api_key": "$env:K_KEY", "api_secret": "$env:K_SEC"}),
        "polymarket": (PolymarketSettings, {"private_key": "$env:PM_PK", "api_key": "$env:PM_KEY",
                                            "api_secret": "$env:PM_SEC",
                                            "api_passphrase": "$env:PM_PASS"}),
        "kalshi": (KalshiSettings, {"api_key_id": "$env:KA_ID", "private_key": f"$file:{pem}"}),
        "telegram": (TelegramSettings, {"token": "$env:TG", "chat_ids": [1]}),
        "orchestrator": (OrchestratorSettings, {"api_key": "$env:ANTHROPIC"}),
    }
    config = parse_config({"plugins": {n: t for n, (_, t) in tables.items()}},
                          tmp_path / "c.toml")
    shown = canonical_json(config)
    for name, (cls, _) in tables.items():
        settings = plugin_settings(config, name, cls)
        shown += repr(settings) + str(settings)
    for value in [*values.values(), PEM.splitlines()[1]]:
        assert value not in shown
    assert "$env:K_SEC" in shown


def test_kalshis_signer_hides_its_key(tmp_path: Path) -> None:
    from argus_venue_kalshi import signing
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    signer = signing.Signer("key-id", signing.load_private_key(pem))
    assert "PRIVATE" not in repr(signer) and pem.splitlines()[1] not in repr(signer)


# -- the CLI: messages, tracebacks, logs, threads, the ledger --------------------------------
def _register(command: click.Command) -> Iterator[None]:
    cli.add_command(command)
    try:
        yield
    finally:
        cli.commands.pop(command.name or "", None)


@click.command("_leak")
@click.option("--how", type=click.Choice(["argus", "crash", "log", "thread", "venue"]))
def _leak(how: str) -> None:
    """Fail (or log) with a revealed secret in the text, the way a venue client does."""
    token = Secret("$env:ARGUS_TEST_TG").reveal()
    url = f"https://api.telegram.org/bot{token}/getMe"
    if how == "argus":
        raise ConfigError(f"[plugins.telegram] token: refused at {url}")
    if how == "venue":
        raise VenueError(f"POST /0/private/AddOrder failed: {Secret('$env:ARGUS_TEST_K').reveal()}")
    if how == "crash":
        raise RuntimeError(f"Client error '404 Not Found' for url '{url}'")
    if how == "log":
        logging.getLogger("argus_core.x").debug("request headers: API-Key %s",
                                                Secret("$env:ARGUS_TEST_K").reveal())
        logging.getLogger("httpx").debug("HTTP Request: GET %s", url)
        return
    thread = threading.Thread(target=lambda: (_ for _ in ()).throw(RuntimeError(url)))
    thread.start()
    thread.join()


@pytest.fixture
def leak(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ARGUS_TEST_TG", TELEGRAM_TOKEN)
    monkeypatch.setenv("ARGUS_TEST_K", KRAKEN_KEY)
    yield from _register(_leak)


@pytest.mark.usefixtures("leak")
@pytest.mark.parametrize(("how", "flags", "code"), [
    ("argus", [], 2), ("argus", ["--traceback"], 2), ("venue", [], 5),
    ("venue", ["--traceback"], 5), ("crash", [], 1), ("crash", ["--traceback"], 1),
    ("log", ["-vvv"], 0), ("log", ["-vvv", "--log-json"], 0), ("thread", [], 0),
])
def test_nothing_the_cli_prints_shows_a_secret(how: str, flags: list[str], code: int) -> None:
    import sys

    saved = sys.excepthook, threading.excepthook
    try:
        result = CliRunner().invoke(cli, [*flags, "_leak", "--how", how])
    finally:
        sys.excepthook, threading.excepthook = saved
    shown = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code == code, shown
    assert TELEGRAM_TOKEN not in shown and KRAKEN_KEY not in shown, shown
    assert "[REDACTED]" in shown, shown
    if how == "crash":  # a bug: the traceback is shown, redacted, and the exit code is 1
        assert "Traceback" in shown and "unexpected RuntimeError" in shown
    if "--traceback" in flags:
        assert "Traceback" in shown


def test_a_kill_reason_is_redacted_before_the_ledger_stores_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = reveal(monkeypatch, "ARGUS_TEST_K", KRAKEN_KEY)
    run_dir = tmp_path / "run"
    Ledger.in_dir(run_dir).close()
    result = CliRunner().invoke(cli, ["kill", "--run-dir", str(run_dir),
                                      "--reason", f"rotated key {key}"])
    assert result.exit_code == 0, result.output
    with Ledger.in_dir(run_dir) as ledger:
        stored = ledger.get_control("trading_state") or ""
    assert key not in stored and "[REDACTED]" in json.loads(stored)["reason"]


def test_free_text_the_ledger_stores_is_redacted(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    key = reveal(monkeypatch, "ARGUS_TEST_K", KRAKEN_KEY)
    with Ledger.in_dir(tmp_path / "run") as ledger:
        ledger.record_risk_event(1, "venue", "order_unknown",
                                 f"the venue adapter failed with HTTPError: {key}")
        reasons = [r["reason"] for r in ledger.query("select reason from risk_events")]
    assert key not in reasons[0]
