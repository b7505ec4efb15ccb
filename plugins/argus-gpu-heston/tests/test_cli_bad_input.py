"""``argus heston ...`` refuses bad numbers as the core's commands do: a usage error
naming the command and the option (exit 2), or one ``error:`` line with the class's exit
code, never a traceback.  Each test failed before its fix: ``--max-nfev 0`` was SciPy's
ValueError traceback (exit 1), ``--paths 10^12`` a MemoryError traceback, ``--steps 10^8``
ran for hours, ``--threshold nan``/``-1`` and ``--top -3`` were taken (nothing or
everything flagged; all rows but three shown), a zero-quantity leg was priced.
"""

from __future__ import annotations

import pytest
from argus_test_helpers import invoke_argus
from click.testing import Result

MODEL = ["--s0", "100", "--t", "1", "--v0", "0.04", "--kappa", "2", "--theta", "0.04",
         "--sigma", "0.3", "--rho", "-0.7"]


def _usage(result: Result, command: str, said: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    last = result.output.strip().splitlines()[-1]
    assert last == f"Error: argus heston {command}: {said}", last


@pytest.mark.parametrize(("args", "said"), [
    (["--max-nfev", "0"], "Invalid value for '--max-nfev': 0 is not in the range x>=1."),
    (["--max-nfev", "-1"], "Invalid value for '--max-nfev': -1 is not in the range x>=1."),
    (["--top", "-3"], "Invalid value for '--top': -3 is not in the range x>=0."),
    (["--threshold", "nan"], "Invalid value for '--threshold': 'nan' is not a finite number"),
    (["--threshold", "inf"], "Invalid value for '--threshold': 'inf' is not a finite number"),
    (["--threshold", "-1"], "Invalid value for '--threshold': -1.0 is not in the range x>0."),
    (["--threshold", "0"], "Invalid value for '--threshold': 0.0 is not in the range x>0."),
    (["--chain", "."], "Invalid value for '--chain': File '.' is a directory."),
])
def test_calibrate_refuses_bad_numbers_when_parsed(args: list[str], said: str) -> None:
    _usage(invoke_argus(["heston", "calibrate", *args]), "calibrate", said)


@pytest.mark.parametrize(("args", "said"), [
    (["--paths", "1000000000000"], "Invalid value for '--paths': 1000000000000 is not in "
                                   "the range 2<=x<=2147483648."),
    (["--paths", "-5"], "Invalid value for '--paths': -5 is not in the range "
                        "2<=x<=2147483648."),
    (["--steps", "100000000"], "Invalid value for '--steps': 100000000 is not in the range "
                               "1<=x<=1000000."),
    (["--steps", "0"], "Invalid value for '--steps': 0 is not in the range 1<=x<=1000000."),
])
@pytest.mark.parametrize("command", ["price", "pop"])
def test_monte_carlo_sizes_are_bounded(command: str, args: list[str], said: str) -> None:
    extra = ["--strike", "100"] if command == "price" else ["--premium", "1",
                                                            "--put-spread", "95:90"]
    _usage(invoke_argus(["heston", command, *MODEL, *extra, "--method", "mc"][
        : None if command == "price" else -2] + args), command, said)


def test_a_zero_quantity_leg_is_refused() -> None:
    result = invoke_argus(["heston", "pop", *MODEL, "--premium", "1", "--leg", "put:95:0"])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "error: cannot read the legs (--leg put:95:0: a leg's quantity cannot be 0)" \
        in result.output


def test_running_out_of_memory_is_one_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from argus_gpu_heston.pricer import HestonPricer

    def too_big(*_args: object, **_kwargs: object) -> None:
        raise MemoryError("Allocation failed (probably too large).")

    monkeypatch.setattr(HestonPricer, "price", too_big)
    result = invoke_argus(["heston", "price", *MODEL, "--strike", "100", "--method", "mc"])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert result.output.strip().splitlines()[-1] == (
        "error: not enough memory for this many Monte Carlo paths; lower --paths")
