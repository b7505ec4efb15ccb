"""Branch-free log and sin/cos(2 pi w) for Numba loops that LLVM can vectorise.

Why hand-written: Numba lowers ``math.log``/``math.sin`` to scalar libm calls, which stop
LLVM's loop vectoriser; the vector versions would come from Intel SVML, which the PyPI
llvmlite wheels are not built with (``llvmlite.binding.targets.has_svml()`` is False).
These are pure arithmetic on IEEE bit patterns (no calls, no branches, no tables), so a
loop over lanes that uses them becomes AVX2/AVX-512 code.

* ``log64``/``log32`` are FreeBSD/musl's ``__ieee754_log``/``logf`` (fdlibm polynomials
  Lg1..Lg7), error below 1 ulp, for positive normal finite arguments.  Anything else
  (0, negatives, inf, NaN, subnormals) gives an unspecified finite or NaN value instead of
  the IEEE special value: the kernels only call them on positive normals, or on values
  that a select discards.
* ``sincos2pi64``/``sincos2pi32`` return (sin 2 pi w, cos 2 pi w) for 0 < w < 1 (what
  Box-Muller needs; GPUs use ``sincospi``): the argument reduction to r in [-1/4, 1/4]
  and a quadrant is exact, then Taylor polynomials of sin(pi r), cos(pi r) truncated
  well below half an ulp (degree 17/16 in float64, 9/10 in float32).

Numba's on-disk cache keys a function on its own file only: after editing this module,
delete ``backends/__pycache__/cpu_numba.*.nb[ci]`` so the kernels that inline it rebuild.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

_F32 = np.float32

# fdlibm e_log.c (hex words in comments)
_LN2_HI = 6.93147180369123816490e-01  # 3fe62e42 fee00000
_LN2_LO = 1.90821492927058770002e-10  # 3dea39ef 35793c76
_LG1 = 6.666666666666735130e-01  # 3FE55555 55555593
_LG2 = 3.999999999940941908e-01  # 3FD99999 9997FA04
_LG3 = 2.857142874366239149e-01  # 3FD24924 94229359
_LG4 = 2.222219843214978396e-01  # 3FCC71C5 1D8E78AF
_LG5 = 1.818357216161805012e-01  # 3FC74664 96CB03DE
_LG6 = 1.531383769920937332e-01  # 3FC39A09 D078C69F
_LG7 = 1.479819860511658591e-01  # 3FC2F112 DF3E5244
# musl e_logf.c
_LN2_HI_F = _F32(6.9313812256e-01)  # 0x3f317180
_LN2_LO_F = _F32(9.0580006145e-06)  # 0x3717f7d1
_LG1_F = _F32(float.fromhex("0xaaaaaa.0p-24"))
_LG2_F = _F32(float.fromhex("0xccce13.0p-25"))
_LG3_F = _F32(float.fromhex("0x91e9ee.0p-25"))
_LG4_F = _F32(float.fromhex("0xf89e26.0p-26"))
_HALF_F = _F32(0.5)
_ONE_F = _F32(1.0)
_TWO_F = _F32(2.0)


def _taylor(odd: bool, count: int) -> tuple[float, ...]:
    """Coefficients of sin(pi r)/r (odd) or cos(pi r) in powers of r^2."""
    out = []
    for n in range(count):
        p = 2 * n + (1 if odd else 0)
        out.append((-1) ** n * math.pi ** p / math.factorial(p))
    return tuple(out)


(_S1, _S3, _S5, _S7, _S9, _S11, _S13, _S15, _S17) = _taylor(True, 9)
(_C0, _C2, _C4, _C6, _C8, _C10, _C12, _C14, _C16) = _taylor(False, 9)
(_S1F, _S3F, _S5F, _S7F, _S9F) = (_F32(c) for c in _taylor(True, 5))
(_C0F, _C2F, _C4F, _C6F, _C8F, _C10F) = (_F32(c) for c in _taylor(False, 6))


@intrinsic
def f64_bits(typingctx, x):
    """The IEEE bits of a float64 as an int64 (a bitcast, no conversion)."""
    if x != types.float64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def f64_from_bits(typingctx, i):
    """The float64 whose IEEE bits are the int64 ``i``."""
    if i != types.int64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def f32_bits(typingctx, x):
    """The IEEE bits of a float32, zero-extended to an int64."""
    if x != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return builder.zext(builder.bitcast(args[0], ir.IntType(32)), ir.IntType(64))

    return types.int64(types.float32), codegen


@intrinsic
def f32_from_bits(typingctx, i):
    """The float32 whose IEEE bits are the low 32 bits of the int64 ``i``."""
    if i != types.int64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(builder.trunc(args[0], ir.IntType(32)), ir.FloatType())

    return types.float32(types.int64), codegen


@njit(inline="always", cache=True, error_model="numpy")
def log64(x: float) -> float:
    """Natural log of a positive normal float64 (fdlibm, < 1 ulp)."""
    # An intrinsic's typingctx is supplied by numba's compiler; the stub sees it as a parameter.
    ix: int = f64_bits(x)  # type: ignore[call-arg]
    hx = (ix >> 32) + (0x3FF00000 - 0x3FE6A09E)
    k = (hx >> 20) - 0x3FF
    hx = (hx & 0x000FFFFF) + 0x3FE6A09E
    f = f64_from_bits((hx << 32) | (ix & 0xFFFFFFFF)) - 1.0  # mantissa in [sqrt2/2, sqrt2)
    hfsq = 0.5 * f * f
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    r = t2 + t1
    dk = np.float64(k)
    return s * (hfsq + r) + dk * _LN2_LO - hfsq + f + dk * _LN2_HI


@njit(inline="always", cache=True, error_model="numpy")
def log32(x: np.float32) -> np.float32:
    """Natural log of a positive normal float32 (musl logf, < 1 ulp)."""
    ix = f32_bits(x) + (0x3F800000 - 0x3F3504F3)  # type: ignore[call-arg]  # see log64
    k = (ix >> 23) - 0x7F
    ix = (ix & 0x007FFFFF) + 0x3F3504F3
    f = f32_from_bits(ix) - _ONE_F
    s = f / (_TWO_F + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2_F + w * _LG4_F)
    t2 = z * (_LG1_F + w * _LG3_F)
    r = t2 + t1
    hfsq = _HALF_F * f * f
    dk = np.float32(k)
    return s * (hfsq + r) + dk * _LN2_LO_F - hfsq + f + dk * _LN2_HI_F


@njit(inline="always", cache=True, error_model="numpy")
def sincos2pi64(w: float) -> tuple[float, float]:
    """(sin 2 pi w, cos 2 pi w) for 0 < w < 1 in float64, branch-free."""
    x = w + w
    q = math.floor(x + x + 0.5)  # nearest quarter turn, 0..4
    r = x - 0.5 * np.float64(q)  # exact, in [-1/4, 1/4]
    r2 = r * r
    sp = r * (_S1 + r2 * (_S3 + r2 * (_S5 + r2 * (_S7 + r2 * (_S9 + r2 * (
        _S11 + r2 * (_S13 + r2 * (_S15 + r2 * _S17))))))))
    cp = _C0 + r2 * (_C2 + r2 * (_C4 + r2 * (_C6 + r2 * (_C8 + r2 * (
        _C10 + r2 * (_C12 + r2 * (_C14 + r2 * _C16)))))))
    odd = (q & 1) != 0
    s = cp if odd else sp
    c = sp if odd else cp
    s = -s if (q & 2) != 0 else s
    c = -c if ((q + 1) & 2) != 0 else c
    return s, c


@njit(inline="always", cache=True, error_model="numpy")
def sincos2pi32(w: np.float32) -> tuple[np.float32, np.float32]:
    """(sin 2 pi w, cos 2 pi w) for 0 < w < 1 in float32, branch-free."""
    x = w + w
    q = math.floor(x + x + _HALF_F)
    r = x - _HALF_F * np.float32(q)
    r2 = r * r
    sp = r * (_S1F + r2 * (_S3F + r2 * (_S5F + r2 * (_S7F + r2 * _S9F))))
    cp = _C0F + r2 * (_C2F + r2 * (_C4F + r2 * (_C6F + r2 * (_C8F + r2 * _C10F))))
    odd = (q & 1) != 0
    s = cp if odd else sp
    c = sp if odd else cp
    s = -s if (q & 2) != 0 else s
    c = -c if ((q + 1) & 2) != 0 else c
    return s, c


@njit(cache=True, error_model="numpy")
def log64_array(x: np.ndarray) -> np.ndarray:
    """:func:`log64` over an array (for tests and reuse)."""
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = log64(x[i])
    return out


@njit(cache=True, error_model="numpy")
def log32_array(x: np.ndarray) -> np.ndarray:
    """:func:`log32` over a float32 array (for tests and reuse)."""
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = log32(x[i])
    return out


@njit(cache=True, error_model="numpy")
def sincos2pi64_array(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sincos2pi64` over an array."""
    s = np.empty_like(w)
    c = np.empty_like(w)
    for i in range(w.size):
        s[i], c[i] = sincos2pi64(w[i])
    return s, c


@njit(cache=True, error_model="numpy")
def sincos2pi32_array(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sincos2pi32` over a float32 array."""
    s = np.empty_like(w)
    c = np.empty_like(w)
    for i in range(w.size):
        s[i], c[i] = sincos2pi32(w[i])
    return s, c
