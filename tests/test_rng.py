"""The counter-based generator: Random123 known answers, stream layout, variates' laws."""

import numpy as np
import pytest
from numba import njit
from scipy import stats

from fastprop.chains import rng

# Random123 kat_vectors for Philox4x32-10: (counter, key, output)
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize("ctr,key,expected", KAT)
def test_philox_known_answers(ctr, key, expected):
    assert tuple(int(v) for v in rng.philox4x32_10(*ctr, *key)) == expected


@njit
def _words(seed, chain, n):
    st = np.empty(rng.STREAM_SIZE, np.uint64)
    rng.stream_init(st, seed, chain)
    out = np.empty(n, np.uint64)
    for i in range(n):
        out[i] = rng.next_word(st)
    return out


@njit
def _normals(seed, chain, sizes):
    st = np.empty(rng.STREAM_SIZE, np.uint64)
    rng.stream_init(st, seed, chain)
    total = 0
    for s in sizes:
        total += s
    out = np.empty(total)
    pos = 0
    for s in sizes:
        rng.fill_normals(st, out[pos:], s)
        pos += s
    return out


@njit
def _one_by_one(seed, chain, n):
    st = np.empty(rng.STREAM_SIZE, np.uint64)
    rng.stream_init(st, seed, chain)
    out = np.empty(n)
    for i in range(n):
        out[i] = rng.next_normal(st)
    return out


@pytest.mark.parametrize("seed,chain", [(0, 0), (5, 9), (2**64 - 1, 2**40 + 3)])
def test_stream_is_the_documented_philox_sequence(seed, chain):
    """Word 2b, 2b+1 of a chain = the two halves of Philox block b (lanes computed side by side)."""
    n = 150
    got = [int(w) for w in _words(np.uint64(seed), np.uint64(chain), n)]
    k = (seed & 0xFFFFFFFF, seed >> 32)
    want = []
    for b in range((n + 1) // 2):
        r = [int(v) for v in rng.philox4x32_10(b & 0xFFFFFFFF, b >> 32, chain & 0xFFFFFFFF, chain >> 32, *k)]
        want += [(r[0] << 32) | r[1], (r[2] << 32) | r[3]]
    assert got == want[:n]


def test_fill_normals_is_the_same_sequence_however_split():
    a = _normals(3, 11, np.array([7, 64, 1, 300, 5000]))
    b = _one_by_one(3, 11, a.size)
    assert np.array_equal(a, b)


def test_normals_law():
    z = _normals(1, 2, np.array([2_000_000]))
    assert stats.kstest(z, "norm").pvalue > 1e-3
    n = z.size
    # the ziggurat's tail beyond r = 3.654… and the far tail at 4.5: frequencies within 4 SE
    for t in (rng._ZR, 4.5):
        p = stats.norm.sf(t)
        hits = np.count_nonzero(np.abs(z) > t)
        assert abs(hits - 2 * n * p) < 4 * np.sqrt(2 * n * p)
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.var() - 1) < 4 * np.sqrt(2 / n)


@njit
def _chi2(seed, k, n):
    st = np.empty(rng.STREAM_SIZE, np.uint64)
    rng.stream_init(st, seed, 0)
    out = np.empty(n)
    for i in range(n):
        out[i] = rng.chi2_variate(st, k)
    return out


@njit
def _binom(seed, m, n):
    st = np.empty(rng.STREAM_SIZE, np.uint64)
    rng.stream_init(st, seed, 0)
    out = np.empty(n)
    for i in range(n):
        out[i] = rng.binomial_half(st, m)
    return out


@pytest.mark.parametrize("k", [1, 2, 5, 10, 31])
def test_chi2_law(k):
    g = _chi2(7, k, 200_000)
    assert stats.kstest(g, "chi2", args=(k,)).pvalue > 1e-3
    assert abs(g.mean() - k) < 4 * np.sqrt(2 * k / g.size)


def test_chi2_zero_degrees_is_exactly_zero():
    assert np.all(_chi2(1, 0, 10) == 0.0)


@pytest.mark.parametrize("m", [1, 10, 64, 100, 129])
def test_binomial_half_law(m):
    k = _binom(4, m, 200_000)
    assert k.min() >= 0 and k.max() <= m
    observed = np.bincount(k.astype(int), minlength=m + 1)
    expected = stats.binom.pmf(np.arange(m + 1), m, 0.5) * k.size
    keep = expected > 5
    chi = ((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum()
    assert stats.chi2.sf(chi, keep.sum() - 1) > 1e-3
