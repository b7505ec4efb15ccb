"""API-Sign worked example and the durable, cross-process nonce."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from argus_venue_kraken.signing import NonceStore, api_sign

from argus_core.errors import ConfigError, VenueError


def test_api_sign_reproduces_kraken_worked_example(load):
    vec = load("kraken_test_vectors.json")["rest_api_sign"]
    got = api_sign(vec["uri_path"], vec["encoded_payload"], vec["nonce"], vec["private_key"])
    assert got == vec["expected_api_sign"]
    assert got == ("4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6"
                   "H8ndwLUQ==")


def test_api_sign_depends_on_every_input(load):
    vec = load("kraken_test_vectors.json")["rest_api_sign"]
    base = api_sign(vec["uri_path"], vec["encoded_payload"], vec["nonce"], vec["private_key"])
    assert api_sign("/0/private/Balance", vec["encoded_payload"], vec["nonce"],
                    vec["private_key"]) != base
    assert api_sign(vec["uri_path"], vec["encoded_payload"] + "&x=1", vec["nonce"],
                    vec["private_key"]) != base
    assert api_sign(vec["uri_path"], vec["encoded_payload"], "1616492376595",
                    vec["private_key"]) != base


def test_bad_secret_is_a_config_error_that_hides_the_secret():
    with pytest.raises(ConfigError) as info:
        api_sign("/0/private/Balance", "nonce=1", "1", "not*base64!")
    assert "not*base64!" not in str(info.value)


def test_nonce_strictly_increases_and_survives_restart(tmp_path: Path):
    path = tmp_path / "n" / "nonce"
    store = NonceStore(path, clock=lambda: 5_000)
    drawn = [store.next() for _ in range(5)]
    assert drawn == [5_000, 5_001, 5_002, 5_003, 5_004]
    # A restart whose clock went backwards still continues above the last nonce.
    restarted = NonceStore(path, clock=lambda: 10)
    assert restarted.next() == 5_005
    # A clock far ahead wins.
    assert NonceStore(path, clock=lambda: 9_999_999).next() == 9_999_999


def test_corrupt_nonce_file_is_reported(tmp_path: Path):
    path = tmp_path / "nonce"
    path.write_text("garbage")
    with pytest.raises(VenueError, match="corrupt"):
        NonceStore(path).next()


def _draw(args: tuple[str, int]) -> list[int]:
    path, n = args
    store = NonceStore(Path(path), clock=lambda: 1)  # identical clocks: only the lock separates
    return [store.next() for _ in range(n)]


def test_nonces_never_collide_between_processes(tmp_path: Path):
    path = str(tmp_path / "shared-nonce")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        results = pool.map(_draw, [(path, 150)] * 3)
    every = [n for seq in results for n in seq]
    assert len(set(every)) == len(every) == 450
    for seq in results:
        assert seq == sorted(seq) and len(set(seq)) == len(seq)
