"""Shared fixtures: real Kraken bars (a slice of the bundled file)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from argus_ml.bars import BarColumns, read_ohlcvt_csv

# --import-mode=importlib puts a test module's folder on sys.path only when it imports the
# module, after this conftest loaded: the shared constants' folder goes on it here.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from ml_testdata import KRAKEN, TRAIN_END, TRAIN_START


@pytest.fixture(scope="session")
def kraken_bars() -> BarColumns:
    """About 3,000 hourly BTC/USD bars from 2022 (real data, with its gaps)."""
    return read_ohlcvt_csv(KRAKEN, start_s=1_640_995_200, end_s=1_640_995_200 + 3000 * 3600)


@pytest.fixture(scope="session")
def kraken_registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A registry with two models trained on the bundled Kraken bars through the CLI:
    ``(registry, refused model id, paper model id)``; the first was refused promotion by
    the gates, the second promoted to paper through them."""
    from argus_ml.cli import ml
    from click.testing import CliRunner

    d = tmp_path_factory.mktemp("kraken_ml")
    reg = d / "reg.db"
    cli = CliRunner()
    ids = []
    for cal in ("isotonic", "none"):
        out = cli.invoke(ml, ["train", "--bars", str(KRAKEN), "--start", str(TRAIN_START),
                              "--end", str(TRAIN_END), "--registry", str(reg), "--folds", "3",
                              "--embargo", "24", "--calibration", cal, "--name", cal])
        assert out.exit_code == 0, out.output
        ids.append(out.output.split()[1])
    refused, good = ids
    out = cli.invoke(ml, ["promote", "--registry", str(reg), refused, "--to", "paper"])
    assert out.exit_code != 0 and "Brier skill" in out.output, out.output
    out = cli.invoke(ml, ["promote", "--registry", str(reg), good, "--to", "paper",
                          "--reason", "gates passed on 2021 bars"])
    assert out.exit_code == 0, out.output
    return reg, refused, good
