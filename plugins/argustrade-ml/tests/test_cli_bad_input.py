"""``argus ml`` refuses bad input as the core's commands do: one ``error:`` line naming
what and where, no traceback, the exit code of the error's class; what the command line
itself gets wrong is a usage error (exit 2) naming the command and the option.  Each
test failed before its fix: every refusal was click's ``Error: ...``, exit 1 (``--start``
after ``--end`` said "no bars to label"; an unknown ``--features`` name was found after
the bars were read), a damaged registry exited 7 without naming the file, ``--edge nan``
was taken, and ``--report-dir FILE`` failed after the model was registered.
"""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest
from argus_test_helpers import error_line
from click.testing import CliRunner, Result
from ml_testdata import KRAKEN, TRAIN_START

from argus_core.cli import cli

START, END = TRAIN_START, TRAIN_START + 600 * 3600  # 600 hourly bars
WINDOW = ["--bars", str(KRAKEN), "--start", str(START), "--end", str(END)]


def _invoke(args: list[str]) -> Result:
    return CliRunner().invoke(cli, ["ml", *args], prog_name="argus")


def _usage(result: Result, command: str, said: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith(f"Error: argus ml {command}: {said}"), last


@pytest.fixture
def inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of bad inputs: a directory, a text file, a damaged and a foreign ledger."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x\n")
    (tmp_path / "damaged.db").write_text("not a database")
    return tmp_path


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A registry holding one model trained on 600 bundled bars: (path, model id)."""
    path = tmp_path_factory.mktemp("ml_bad_input") / "reg.db"
    out = CliRunner().invoke(cli, ["ml", "train", *WINDOW, "--registry", str(path),
                                   "--folds", "2", "--features", "ret_1,vol_24"])
    assert out.exit_code == 0, out.output
    return path, out.output.split()[1]


# -- dataset and train: the bars, the window, the features --------------------------------
@pytest.mark.parametrize("command", ["dataset", "train"])
@pytest.mark.parametrize(("args", "option", "said"), [
    (["--start", str(END), "--end", str(START)], "--end",
     f"{START} is not after --start {END} (unix seconds; --end is exclusive)"),
    (["--start", str(START), "--end", str(START)], "--end", f"{START} is not after --start"),
    (["--features", "ret_1,nope"], "--features", "no feature named 'nope'; known: ["),
    (["--features", "ret_1@9"], "--features", "no feature ret_1@9; known: ["),
    (["--features", ","], "--features", "no feature named ''"),
    (["--horizon", "0"], "--horizon", "0 is not in the range x>=1"),
    (["--start", "2021-01-01"], "--start", "'2021-01-01' is not a valid integer"),
], ids=["backwards", "empty", "unknown", "unknown-version", "blank", "horizon", "date"])
def test_a_bad_window_or_feature_is_a_usage_error(inputs: Path, command: str,
                                                   args: list[str], option: str,
                                                   said: str) -> None:
    out = ["--out", "ds"] if command == "dataset" else ["--registry", "reg.db"]
    result = _invoke([command, "--bars", str(KRAKEN), *args, *out])
    _usage(result, command, f"Invalid value for '{option}': {said}")
    assert not (inputs / "ds").exists() and not (inputs / "reg.db").exists()


@pytest.mark.parametrize("command", ["dataset", "train"])
@pytest.mark.parametrize(("bars", "code", "said"), [
    ("missing.csv", 2, "Invalid value for '--bars': File 'missing.csv' does not exist."),
    ("adir", 2, "Invalid value for '--bars': File 'adir' is a directory."),
    ("afile", 4, "afile line 1: 1 columns; a Kraken OHLCVT row has 6 or 7"),
])
def test_bad_bars_say_which_file(inputs: Path, command: str, bars: str, code: int,
                                 said: str) -> None:
    out = ["--out", "ds"] if command == "dataset" else ["--registry", "reg.db"]
    result = _invoke([command, "--bars", bars, *out])
    if code == 2:
        _usage(result, command, said)
    else:
        assert error_line(result, code).startswith(said)


@pytest.mark.parametrize("command", ["dataset", "train"])
def test_a_window_without_bars_names_the_file_and_its_span(inputs: Path,
                                                           command: str) -> None:
    out = ["--out", "ds"] if command == "dataset" else ["--registry", "reg.db"]
    line = error_line(_invoke([command, "--bars", str(KRAKEN), "--start", "9999999999",
                                *out]), 4)
    assert line == (f"{KRAKEN}: no bars in the window --start 9999999999, --end (none) (unix "
                    f"seconds); its bars close from 2013-10-06 22:00 UTC to 2023-01-07 "
                    f"10:00 UTC"), line
    short = error_line(_invoke([command, "--bars", str(KRAKEN), "--start", str(START),
                                 "--end", str(START + 5 * 3600), *out]), 4)
    assert short.startswith(f"{KRAKEN}: no rows have every feature and a label"), short


def test_dataset_out_and_train_report_dir_that_are_files(inputs: Path) -> None:
    _usage(_invoke(["dataset", *WINDOW, "--out", "afile"]), "dataset",
           "Invalid value for '--out': Directory 'afile' is a file.")
    _usage(_invoke(["train", *WINDOW, "--registry", "reg.db", "--report-dir", "afile"]),
           "train", "Invalid value for '--report-dir': Directory 'afile' is a file.")
    assert not (inputs / "reg.db").exists()  # refused before a model was registered


# -- the registry ----------------------------------------------------------------------------
READERS = [["models"], ["evaluate", "m1"], ["promote", "m1", "--to", "paper"],
           ["demote", "m1", "--reason", "r"]]


@pytest.mark.parametrize("args", READERS, ids=[a[0] for a in READERS])
@pytest.mark.parametrize(("where", "code", "said"), [
    ("missing.db", 2, "Invalid value for '--registry': File 'missing.db' does not exist."),
    ("adir", 2, "Invalid value for '--registry': File 'adir' is a directory."),
    ("damaged.db", 7, "damaged.db cannot be used: NotADBError: file is not a database"),
])
def test_a_registry_that_is_not_one_is_one_line(inputs: Path, args: list[str], where: str,
                                                code: int, said: str) -> None:
    result = _invoke([args[0], "--registry", where, *args[1:]])
    if code == 2:
        _usage(result, args[0], said)
    else:
        assert error_line(result, code).startswith(said)


def test_train_into_a_damaged_registry_names_it(inputs: Path) -> None:
    line = error_line(_invoke(["train", *WINDOW, "--folds", "2", "--features", "ret_1",
                                "--registry", "damaged.db"]), 7)
    assert line.startswith("damaged.db cannot be used: "), line


@pytest.mark.parametrize("args", READERS[1:], ids=[a[0] for a in READERS[1:]])
def test_an_unknown_model_id_is_a_usage_error_naming_the_models(
        registry: tuple[Path, str], args: list[str]) -> None:
    path, model_id = registry
    result = _invoke([args[0], "--registry", str(path), *args[1:]])
    _usage(result, args[0], f"Invalid value for 'MODEL_ID': no model 'm1' in {path} "
                            f"(models: {model_id})")


def test_a_foreign_sqlite_file_is_no_registry(inputs: Path) -> None:
    """Another program's SQLite file: refused by the core's ledger, untouched (exit 7)."""
    con = apsw.Connection(str(inputs / "empty.db"))  # a SQLite file, not a registry
    con.execute("create table t (x)")
    con.close()
    line = error_line(_invoke(["evaluate", "--registry", "empty.db", "m1"]), 7)
    assert "empty.db: not an Argus ledger" in line and "nothing was changed" in line, line


@pytest.mark.parametrize("command", ["evaluate", "promote"])
@pytest.mark.parametrize(("option", "value", "said"), [
    ("--edge", "nan", "'nan' is not a finite number"),
    ("--edge", "-1", "-1.0 is not in the range 0.0<=x<1.0"),
    ("--half-spread", "0.5", "0.5 is not in the range 0.0<=x<0.5"),
    ("--fee-rate", "inf", "inf is not in the range 0.0<=x<1.0"),
    ("--fee-rate", "abc", "'abc' is not a valid number"),
])
def test_gate_numbers_out_of_range_are_usage_errors(registry: tuple[Path, str],
                                                    command: str, option: str, value: str,
                                                    said: str) -> None:
    path, model_id = registry
    to = ["--to", "paper"] if command == "promote" else []
    result = _invoke([command, "--registry", str(path), model_id, *to, option, value])
    _usage(result, command, f"Invalid value for '{option}': {said}")


@pytest.mark.parametrize(("value", "said"), [
    ("nan", "'nan' is not a finite number"),  # was the model validator's traceback, exit 1
    ("0", "0.0 is not in the range 0.0<x<=1.0"),
])
def test_a_drift_quantile_out_of_range_is_a_usage_error(inputs: Path, value: str,
                                                        said: str) -> None:
    result = _invoke(["train", *WINDOW, "--registry", "reg.db", "--drift-quantile", value])
    _usage(result, "train", f"Invalid value for '--drift-quantile': {said}")
    assert not (inputs / "reg.db").exists()


def test_a_refused_promotion_is_a_data_error_line(registry: tuple[Path, str]) -> None:
    """The gates refuse this small model: the refusal's one line, exit 4 (was Error:, 1)."""
    path, model_id = registry
    line = error_line(_invoke(["promote", "--registry", str(path), model_id, "--to",
                                "paper"]), 4)
    assert line.startswith(f"model {model_id} not promoted to paper: "), line


def test_the_group_on_its_own_prints_the_same_line(inputs: Path) -> None:
    from argus_ml.cli import ml

    result = CliRunner().invoke(ml, ["models", "--registry", "damaged.db"])
    assert error_line(result, 7).startswith("damaged.db cannot be used")
