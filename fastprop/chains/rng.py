"""Counter-based random numbers: every draw is a pure function of (seed, chain, draw).

The generator is Philox4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel random
numbers: as easy as 1, 2, 3", SC 2011), written once as integer-only Numba code
so that it compiles unchanged for the CPU and CUDA targets (DESIGN §4).

Stream layout (the randomness contract)
---------------------------------------
Chain ``c`` under seed ``s`` owns the sequence of 64-bit words ``w_0, w_1, …``:
block ``b`` is one Philox call with key ``(s mod 2³², s >> 32)`` and counter
``(b mod 2³², b >> 32, c mod 2³², c >> 32)``; its four 32-bit outputs
``r₀..r₃`` give ``w_{2b} = r₀·2³² + r₁`` and ``w_{2b+1} = r₂·2³² + r₃``.
Samplers read a chain's words strictly in order, so every number a chain uses
depends only on (seed, chain, position in the sequence): not on threads,
batching, target or on how the chain range is split. Blocks are computed 32 at
a time (independent lanes that the compiler vectorises); that is only how the
same sequence is produced faster.

Derived variates
----------------
* Uniform: ``u = (⌊w / 2¹¹⌋ + ½) · 2⁻⁵³`` from one word, in the open interval
  (0, 1) on a grid of step 2⁻⁵³.
* Standard normal: the 256-layer ziggurat of Marsaglia & Tsang (2000), "The
  ziggurat method for generating random variables", J. Stat. Softw. 5(8), with
  52-bit layer abscissae as in NumPy: one word in ≈ 99 % of draws (8 bits layer,
  1 bit sign, 52 bits abscissa); the wedges and the tail (Marsaglia 1964) read
  further words. Exact in law up to the 2⁻⁵² grid of its uniforms.
* Gamma(a): Marsaglia & Tsang (2000), "A simple method for generating gamma
  variables", ACM TOMS 26(3), with the boost ``U^{1/a}`` for a < 1; χ²_k is
  2·Gamma(k/2); Binomial(n, ½) counts set bits among n stream bits.

State
-----
A stream is a ``uint64`` array of length ``STREAM_SIZE`` (a local array on
CUDA): ``[position, next block, key₀, key₁, chain, -, -, -, 64 buffered words]``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

STREAM_SIZE = 8 + 64
_LANES = 32
_BUF = 8

_M32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_S11 = np.uint64(11)
_S9 = np.uint64(9)
_S8 = np.uint64(8)
_ONE = np.uint64(1)
_M8 = np.uint64(0xFF)
_M52 = np.uint64((1 << 52) - 1)
_PHILOX_M0 = np.uint64(0xD2511F53)
_PHILOX_M1 = np.uint64(0xCD9E8D57)
_PHILOX_W0 = np.uint64(0x9E3779B9)
_PHILOX_W1 = np.uint64(0xBB67AE85)
_TWO_M53 = 2.0**-53


@njit(cache=True, inline="always")
def _round(c0, c1, c2, c3, k0, k1):
    p0 = _PHILOX_M0 * c0
    p1 = _PHILOX_M1 * c2
    return (
        ((p1 >> _S32) ^ c1 ^ k0) & _M32,
        p1 & _M32,
        ((p0 >> _S32) ^ c3 ^ k1) & _M32,
        p0 & _M32,
    )


@njit(cache=True)
def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Philox4x32 with 10 rounds on counter (c0..c3) and key (k0, k1), each a
    32-bit value; returns the four 32-bit outputs as ``np.uint64``."""
    c0 = np.uint64(c0)
    c1 = np.uint64(c1)
    c2 = np.uint64(c2)
    c3 = np.uint64(c3)
    k0 = np.uint64(k0)
    k1 = np.uint64(k1)
    for _ in range(9):
        c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
        k0 = (k0 + _PHILOX_W0) & _M32
        k1 = (k1 + _PHILOX_W1) & _M32
    return _round(c0, c1, c2, c3, k0, k1)


@njit(cache=True)
def stream_init(st, seed, chain):
    """Point stream ``st`` at the start of chain ``chain`` under ``seed``."""
    s = np.uint64(seed)
    st[0] = 64  # position in the buffer: empty
    st[1] = 0  # next block
    st[2] = s & _M32
    st[3] = s >> _S32
    st[4] = np.uint64(chain)


@njit(cache=True)
def _refill(st):
    """Compute the next 32 blocks (64 words) into the buffer. Each block's ten
    rounds run in registers and the 32 independent blocks vectorise."""
    b0 = st[1]
    c = st[4]
    chi = c >> _S32
    clo = c & _M32
    key0 = st[2]
    key1 = st[3]
    for lane in range(_LANES):
        b = b0 + np.uint64(lane)
        x0 = b & _M32
        x1 = b >> _S32
        x2 = clo
        x3 = chi
        k0 = key0
        k1 = key1
        for _ in range(10):
            p0 = _PHILOX_M0 * x0
            p1 = _PHILOX_M1 * x2
            x0, x1, x2, x3 = (
                ((p1 >> _S32) ^ x1 ^ k0) & _M32,
                p1 & _M32,
                ((p0 >> _S32) ^ x3 ^ k1) & _M32,
                p0 & _M32,
            )
            k0 = (k0 + _PHILOX_W0) & _M32
            k1 = (k1 + _PHILOX_W1) & _M32
        st[_BUF + 2 * lane] = (x0 << _S32) | x1
        st[_BUF + 2 * lane + 1] = (x2 << _S32) | x3
    st[1] = b0 + np.uint64(_LANES)
    st[0] = 0


@njit(cache=True, inline="always")
def next_word(st):
    """The chain's next 64-bit word."""
    if st[0] >= 64:
        _refill(st)
    w = st[_BUF + st[0]]
    st[0] += _ONE
    return w


@njit(cache=True, inline="always")
def next_uniform(st):
    """A uniform in (0, 1): (⌊w / 2¹¹⌋ + ½) · 2⁻⁵³, exactly."""
    return (float(np.int64(next_word(st) >> _S11)) + 0.5) * _TWO_M53


def _ziggurat_tables():
    """Layer tables of the 256-layer ziggurat for exp(−x²/2) (Marsaglia & Tsang
    2000, §3) with 52-bit abscissae: ``k[i]`` the acceptance bound, ``w[i]`` the
    scale and ``f[i] = exp(−x_i²/2)``."""
    r = 3.6541528853610088
    v = 0.00492867323399
    m = 2.0**52
    k = np.zeros(256, np.uint64)
    w = np.zeros(256)
    f = np.zeros(256)
    q = v / math.exp(-0.5 * r * r)
    k[0] = np.uint64((r / q) * m)
    k[1] = 0
    w[0] = q / m
    w[255] = r / m
    f[0] = 1.0
    f[255] = math.exp(-0.5 * r * r)
    dn = tn = r
    for i in range(254, 0, -1):
        dn = math.sqrt(-2.0 * math.log(v / dn + math.exp(-0.5 * dn * dn)))
        k[i + 1] = np.uint64((dn / tn) * m)
        tn = dn
        f[i] = math.exp(-0.5 * dn * dn)
        w[i] = dn / m
    return k, w, f, r


_ZK, _ZW, _ZF, _ZR = _ziggurat_tables()
_ZK = _ZK.astype(np.int64)


@njit(cache=True, inline="always")
def _zig_layer(w):
    i = np.int64(w & _M8)
    rabs = np.int64((w >> _S9) & _M52)
    # the sign as a factor ±1, not a branch: a coin flip mispredicts half the time
    sign = 1.0 - 2.0 * float(np.int64((w >> _S8) & _ONE))
    return i, rabs, float(rabs) * _ZW[i] * sign


@njit(cache=True)
def _normal_rejected(st, w):
    """The ziggurat's slow path, entered with a word whose abscissa fell outside
    its layer's rectangle: wedge test or tail, then fresh words until accepted."""
    while True:
        i, rabs, x = _zig_layer(w)
        if rabs < _ZK[i]:
            return x
        if i == 0:
            # the base layer's tail beyond r (Marsaglia 1964)
            while True:
                xx = -math.log(next_uniform(st)) / _ZR
                yy = -math.log(next_uniform(st))
                if yy + yy > xx * xx:
                    return -(_ZR + xx) if x < 0.0 else _ZR + xx
        if (_ZF[i - 1] - _ZF[i]) * next_uniform(st) + _ZF[i] < math.exp(-0.5 * x * x):
            return x
        w = next_word(st)


@njit(cache=True, inline="always")
def next_normal(st):
    """A standard normal by the ziggurat (see the module notes)."""
    w = next_word(st)
    i, rabs, x = _zig_layer(w)
    if rabs < _ZK[i]:
        return x
    return _normal_rejected(st, w)


@njit(cache=True)
def _gamma_core(st, shape):
    """Marsaglia & Tsang's (2000) accepted Gamma(shape, 1) variate, shape ≥ 1; each
    trial reads one normal and one uniform."""
    dd = shape - 1.0 / 3.0
    cc = 1.0 / math.sqrt(9.0 * dd)
    while True:
        x = next_normal(st)
        v = 1.0 + cc * x
        if v <= 0.0:
            continue
        v = v * v * v
        u = next_uniform(st)
        x2 = x * x
        if u < 1.0 - 0.0331 * x2 * x2 or math.log(u) < 0.5 * x2 + dd * (1.0 - v + math.log(v)):
            return dd * v


@njit(cache=True)
def gamma_variate(st, a):
    """A Gamma(a, 1) variate, a > 0 (Marsaglia & Tsang 2000); a < 1 is boosted:
    Gamma(a) = Gamma(a + 1) · U^{1/a}."""
    if a < 1.0:
        return _gamma_core(st, a + 1.0) * math.exp(math.log(next_uniform(st)) / a)
    return _gamma_core(st, a)


@njit(cache=True)
def log_gamma_variate(st, a):
    """log of the :func:`gamma_variate` drawn from the same numbers, without
    underflow for tiny a (where U^{1/a} would round to 0)."""
    if a < 1.0:
        return math.log(_gamma_core(st, a + 1.0)) + math.log(next_uniform(st)) / a
    return math.log(_gamma_core(st, a))


@njit(cache=True)
def chi2_variate(st, k):
    """A χ²_k variate as 2·Gamma(k/2); exactly 0 for k = 0 (reads nothing)."""
    if k <= 0:
        return 0.0
    return 2.0 * gamma_variate(st, 0.5 * k)


@njit(cache=True)
def binomial_half(st, n):
    """K ~ Binomial(n, ½): the set bits among the n lowest bits of ⌈n/64⌉ words."""
    count = 0
    left = n
    while left > 0:
        w = next_word(st)
        if left < 64:
            w &= (_ONE << np.uint64(left)) - _ONE
        while w:
            w &= w - _ONE
            count += 1
        left -= 64
    return count


@njit(cache=True)
def fill_normals(st, out, n):
    """``out[:n]`` ← n standard normals; the same numbers as n calls of
    :func:`next_normal`, with the buffer position kept in a register."""
    pos = np.int64(st[0])
    for i in range(n):
        if pos >= 64:
            _refill(st)
            pos = 0
        w = st[_BUF + pos]
        pos += 1
        j, rabs, x = _zig_layer(w)
        if rabs >= _ZK[j]:
            st[0] = pos
            x = _normal_rejected(st, w)
            pos = np.int64(st[0])
        out[i] = x
    st[0] = pos
