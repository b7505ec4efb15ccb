"""What every Monte Carlo backend shares: the simulation spec, step constants and statistics.

The backends (CUDA, OpenCL, Numba) differ only in where the kernel runs; the scheme
constants are computed here once, in float64, and handed to each kernel in the
kernel's precision.
"""

from __future__ import annotations

import math
from importlib import resources
from typing import Protocol

import attrs
import numpy as np
from numpy.typing import NDArray

from argus_gpu_heston.errors import HestonParameterError
from argus_gpu_heston.params import HestonParams

SCHEMES = {"qe": 1, "euler": 2}
DTYPES = {"float32": np.float32, "float64": np.float64}
#: Names of the step constants, in the order of the kernels' CONSTS_ARGS.
CONST_NAMES = ("mu_dt", "kappa_dt", "theta", "sigma_sqdt", "sqdt", "half_dt", "rho", "rho_bar",
               "ex", "c1", "c2", "qk0", "qk1", "qk2", "qk3", "qk4", "a_m", "rho_sqdt", "cvar_dt")
#: Price estimators: the simulated payoff, or its expectation given the variance path.
ESTIMATORS = ("conditional", "plain")
BLOCK = 256  # work-group size of the GPU kernels (a power of two for the tree reduction)


@attrs.frozen
class SimSpec:
    """One simulation: sizes, scheme, precision, the seed's Philox key and step constants."""

    n_pairs: int
    n_steps: int
    v0: float
    consts: tuple[float, ...]
    scheme: int
    antithetic: bool
    dtype: type
    key0: int
    key1: int
    #: price kernels: average E[payoff | variance path] (a Black-Scholes formula per path)
    #: instead of the simulated payoff; the paths kernel ignores it
    conditional: bool = True

    @property
    def n_paths(self) -> int:
        """Paths simulated: two per pair."""
        return 2 * self.n_pairs


class MCBackend(Protocol):
    """A place the kernel runs: the same two entry points on every backend."""

    name: str
    device: str

    def price_sums(self, spec: SimSpec, s0: float, strike: float, disc: float, mu_t: float,
                   is_call: bool) -> NDArray[np.float64]:
        """[sum y, sum y^2, sum c, sum c^2, sum y c] over pairs (y payoff, c control)."""

    def paths(self, spec: SimSpec, s0: float) -> tuple[NDArray, NDArray, NDArray]:
        """Terminal, running-minimum and running-maximum price of every path."""


def kernel_source() -> str:
    """The shared CUDA/OpenCL kernel text."""
    return resources.files("argus_gpu_heston.kernels").joinpath("heston_mc.cl").read_text()


def _is_int(value: object) -> bool:
    """An integer, not a bool (True is an int to Python, but never a seed or a count)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def seed_key(seed: int) -> tuple[int, int]:
    """Philox key words from a 64-bit seed."""
    if not _is_int(seed) or seed < 0 or seed >= 2 ** 64:
        raise HestonParameterError(f"seed must be an integer in [0, 2^64), got {seed!r}")
    seed = int(seed)
    return seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF


def step_constants(params: HestonParams, t: float, n_steps: int, mu: float) -> tuple[float, ...]:
    """Per-step constants of both schemes (Andersen 2008, gamma1 = gamma2 = 1/2)."""
    _, kappa, theta, sigma, rho = params.as_tuple()
    dt = t / n_steps
    ex = math.exp(-kappa * dt)
    one_m_ex = -math.expm1(-kappa * dt)
    c1 = sigma * sigma * ex * one_m_ex / kappa
    c2 = theta * sigma * sigma * one_m_ex * one_m_ex / (2.0 * kappa)
    g1 = g2 = 0.5
    qk0 = -rho * kappa * theta * dt / sigma
    qk1 = g1 * dt * (kappa * rho / sigma - 0.5) - rho / sigma
    qk2 = g2 * dt * (kappa * rho / sigma - 0.5) + rho / sigma
    qk3 = g1 * dt * (1.0 - rho * rho)
    qk4 = g2 * dt * (1.0 - rho * rho)
    a_m = qk2 + 0.5 * qk4
    consts = dict(mu_dt=mu * dt, kappa_dt=kappa * dt, theta=theta, sigma_sqdt=sigma * math.sqrt(dt),
                  sqdt=math.sqrt(dt), half_dt=0.5 * dt, rho=rho,
                  rho_bar=math.sqrt(1.0 - rho * rho), ex=ex, c1=c1, c2=c2, qk0=qk0, qk1=qk1,
                  qk2=qk2, qk3=qk3, qk4=qk4, a_m=a_m, rho_sqdt=rho * math.sqrt(dt),
                  cvar_dt=(1.0 - rho * rho) * dt)
    return tuple(consts[n] for n in CONST_NAMES)


def make_spec(params: HestonParams, t: float, mu: float, paths: int, steps: int, scheme: str,
              dtype: str, seed: int, antithetic: bool, conditional: bool = True) -> SimSpec:
    """Validate the simulation settings and build a :class:`SimSpec`."""
    if scheme not in SCHEMES:
        raise HestonParameterError(f"scheme must be one of {sorted(SCHEMES)}, got {scheme!r}")
    if dtype not in DTYPES:
        raise HestonParameterError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    if isinstance(paths, bool) or int(paths) != paths or paths < 2:
        raise HestonParameterError(f"paths must be an integer >= 2, got {paths!r}")
    if isinstance(steps, bool) or int(steps) != steps or steps < 1 or steps >= 2 ** 32:
        raise HestonParameterError(f"steps must be an integer in [1, 2^32), got {steps!r}")
    key0, key1 = seed_key(seed)
    return SimSpec(n_pairs=(int(paths) + 1) // 2, n_steps=int(steps), v0=params.v0,
                   consts=step_constants(params, t, int(steps), mu), scheme=SCHEMES[scheme],
                   antithetic=bool(antithetic), dtype=DTYPES[dtype], key0=key0, key1=key1,
                   conditional=bool(conditional))


@attrs.frozen
class McEstimate:
    """A Monte Carlo estimate with its standard error."""

    value: float
    stderr: float


def combine_sums(sums: NDArray[np.float64], n_pairs: int, control_variate: bool) -> McEstimate:
    """Price and standard error from the kernels' sums, with the optimal control coefficient.

    The control c = S_T/F - 1 has mean exactly 0 under both schemes (each step is an
    exact martingale), so beta* = cov(y, c)/var(c) removes the part of the payoff
    variance that is linear in S_T.  beta is estimated from the same sample; its bias
    is O(1/n), far below the standard error at any useful n.  A single pair's standard
    error is ``inf``: 0 would read as an exact price.  So is that of a sample with no
    spread left beyond rounding (no path reached a far strike, or every path ended on
    the same side of it, where the payoff is linear in the control): its error exists
    but this sample cannot measure it.
    """
    sy, syy, sc, scc, syc = (float(x) for x in sums)
    n = float(n_pairs)
    if n_pairs < 2:  # one pair has no spread to measure: its error is unknown, not 0
        return McEstimate(sy / n, math.inf)
    mean_y, mean_c = sy / n, sc / n
    var_y = max(syy / n - mean_y * mean_y, 0.0)
    # sum y^2 / n - mean^2 loses ~eps x (sum y^2 / n) to rounding (more in float32
    # kernels): a variance below this floor is no measurement
    floor = _UNMEASURED_VARIANCE * syy / n
    if not control_variate or n < 3:
        return McEstimate(mean_y, _stderr(var_y, n - 1.0, floor))
    var_c = max(scc / n - mean_c * mean_c, 0.0)
    cov = syc / n - mean_y * mean_c
    beta = cov / var_c if var_c > 0 else 0.0
    value = mean_y - beta * mean_c
    var_res = max(var_y - 2.0 * beta * cov + beta * beta * var_c, 0.0)
    return McEstimate(value, _stderr(var_res, n - 2.0, floor))


#: Relative to the mean square payoff: sample variances at or below it are rounding.
_UNMEASURED_VARIANCE = 1e-12


def _stderr(variance: float, dof: float, floor: float) -> float:
    """sqrt(variance / dof), or inf where the variance is not above the rounding floor."""
    if variance <= floor:
        return math.inf
    return math.sqrt(variance / dof)
