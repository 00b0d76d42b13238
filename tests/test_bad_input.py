"""Random bad values, types and shapes at every public function (DESIGN §6).

Each case replaces one argument of an otherwise valid, tiny call by values drawn
from a strategy of things that argument must refuse, and asserts a ValueError or
TypeError whose message names the argument. Validation comes before any work, so
no example compiles or computes anything.
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastprop as fp
from fastprop import checkpoint

NAN_INF = st.sampled_from([math.nan, math.inf, -math.inf])
JUNK = st.one_of(
    st.text(max_size=5), st.none(), st.booleans(), st.complex_numbers(allow_nan=False, min_magnitude=1e-3),
    st.just({}), st.just(object()),
)  # fmt: skip
HUGE = st.sampled_from([10**400, -(10**400)])


def negative():
    return st.floats(max_value=-1e-300, allow_nan=False, allow_infinity=False)


def bad_sigma_scalar():
    return st.one_of(negative(), NAN_INF, JUNK, HUGE, st.lists(st.floats(0, 2), min_size=2, max_size=3))


def bad_sigma_axis(matrix=True):
    """Bad axes; a 2-D array too where only 1-D axes are allowed (edge_of_chaos takes any shape)."""
    return st.one_of(
        negative().map(lambda v: [1.0, v]), NAN_INF.map(lambda v: [v]), JUNK, HUGE, st.just([]),
        st.just([[1.0, 2.0], [3.0, 4.0]] if matrix else [["a"]]), st.just(["a", "b"]),
    )  # fmt: skip


def bad_count(low):
    return st.one_of(
        st.integers(max_value=low - 1), st.floats(allow_nan=True), JUNK.filter(lambda v: not isinstance(v, bool)),
        st.booleans(), st.just([3]),
    )  # fmt: skip


def bad_choice(allowed):
    return st.one_of(st.text(max_size=8).filter(lambda s: s not in allowed), st.integers(), st.none())


def _raises_naming(call, name):
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    assert name in str(info.value), (name, str(info.value))


SMALL = dict(width=3, depth=2, n_chains=5, target="cpu")
CASES = {
    # (function of the bad value, name the message must contain, strategy)
    "length_map q": (lambda v: fp.length_map(v, 1.0, 0.0), "q", st.one_of(negative(), NAN_INF, JUNK, HUGE)),
    "length_map sigma_w": (lambda v: fp.length_map(1.0, v, 0.0), "sigma_w", st.one_of(negative(), NAN_INF, JUNK, HUGE)),
    "length_map sigma_b": (lambda v: fp.length_map(1.0, 1.0, v), "sigma_b", st.one_of(negative(), NAN_INF, JUNK)),
    "length_map activation": (lambda v: fp.length_map(1.0, 1.0, 0.0, v), "activation",
                              bad_choice(fp.ACTIVATIONS)),
    "correlation_map c": (
        lambda v: fp.correlation_map(v, 1.5, 0.1),
        "c",
        st.one_of(st.floats(min_value=1.0000001, allow_nan=False), st.floats(max_value=-1.0000001), NAN_INF, JUNK),
    ),
    "correlation_map q": (lambda v: fp.correlation_map(0.5, 1.5, 0.1, q=v), "q",
                          st.one_of(st.floats(max_value=0.0), NAN_INF, st.text(max_size=3))),
    "correlation_map broadcast": (lambda v: fp.correlation_map([0.1, 0.2], v, 0.1), "broadcast",
                                  st.lists(st.floats(0.5, 2.0), min_size=3, max_size=4)),
    "meanfield_grid sigma_w": (lambda v: fp.meanfield_grid("tanh", v, [0.0]), "sigma_w", bad_sigma_axis()),
    "meanfield_grid sigma_b": (lambda v: fp.meanfield_grid("tanh", [1.0], v), "sigma_b", bad_sigma_axis()),
    "meanfield_grid target": (lambda v: fp.meanfield_grid("tanh", [1.0], [0.0], target=v), "target",
                              bad_choice(fp.TARGETS)),
    "edge_of_chaos sigma_b": (lambda v: fp.edge_of_chaos("tanh", v), "sigma_b", bad_sigma_axis(matrix=False)),
    "edge_of_chaos sigma_w_range": (lambda v: fp.edge_of_chaos("tanh", 0.1, sigma_w_range=v), "sigma_w_range",
                                    st.one_of(st.just((2.0, 1.0)), st.just((0.0, 1.0)), st.just((1.0,)), JUNK)),
    "simulate width": (lambda v: fp.simulate_chains(**{**SMALL, "width": v}), "width", bad_count(1)),
    "simulate depth": (lambda v: fp.simulate_chains(**{**SMALL, "depth": v}), "depth", bad_count(0)),
    "simulate n_chains": (lambda v: fp.simulate_chains(**{**SMALL, "n_chains": v}), "n_chains", bad_count(1)),
    "simulate seed": (lambda v: fp.simulate_chains(**SMALL, seed=v), "seed",
                      st.one_of(bad_count(0), st.integers(min_value=2**64))),
    "simulate first_chain": (lambda v: fp.simulate_chains(**SMALL, first_chain=v), "first_chain", bad_count(0)),
    "simulate sigma_w": (lambda v: fp.simulate_chains(**SMALL, sigma_w=v), "sigma_w", bad_sigma_scalar()),
    "simulate sigma_b": (lambda v: fp.simulate_chains(**SMALL, sigma_b=v), "sigma_b", bad_sigma_scalar()),
    "simulate activation": (lambda v: fp.simulate_chains(**SMALL, activation=v), "activation",
                            bad_choice(fp.ACTIVATIONS)),
    "simulate weights": (lambda v: fp.simulate_chains(**SMALL, weights=v), "weights",
                         bad_choice(("gaussian", "orthogonal"))),
    "simulate method": (lambda v: fp.simulate_chains(**SMALL, method=v), "method",
                        bad_choice(("auto", "dense", "invariant"))),
    "simulate target": (lambda v: fp.simulate_chains(**{**SMALL, "target": v}), "target", bad_choice(fp.TARGETS)),
    "simulate dtype": (lambda v: fp.simulate_chains(**SMALL, dtype=v), "dtype",
                       bad_choice(("float64", "float32", "f8", "f4", "d", "f", "double", "single", "float",
                                   "float_", "longlong")).filter(lambda v: v is not None)),  # None: float64
    "simulate layers": (lambda v: fp.simulate_chains(**SMALL, layers=v), "layers",
                        st.one_of(st.integers(min_value=3), st.integers(max_value=-4), st.floats(),
                                  st.just([]), st.just(["1"]), st.just([True]))),
    "simulate thresholds": (lambda v: fp.simulate_chains(**SMALL, thresholds=v), "thresholds",
                            st.one_of(st.floats(max_value=0.0), NAN_INF, st.just(()), JUNK)),
    "simulate x0": (lambda v: fp.simulate_chains(**SMALL, x0=v), "x0",
                    st.one_of(st.just([1.0, 2.0]), st.just([1.0, math.nan, 0.0]),
                              JUNK.filter(lambda v: v is not None))),
    "simulate batch_size": (lambda v: fp.simulate_chains(**SMALL, batch_size=v), "batch_size",
                           bad_count(1).filter(lambda v: v is not None)),  # None: sized by time
    "run_chains n_chains": (lambda v: checkpoint.run_chains("unused.npz", v, **SMALL_RUN), "n_chains",
                            st.one_of(st.integers(max_value=0), st.floats(), st.booleans(), st.text(max_size=3))),
    "run_chains thresholds": (lambda v: checkpoint.run_chains("unused.npz", 10, thresholds=v, **SMALL_RUN),
                              "thresholds", st.one_of(st.just(()), st.floats(max_value=0.0), NAN_INF)),
    "run_chains target_rel_error": (
        lambda v: checkpoint.run_chains("unused.npz", target_rel_error=v, **SMALL_RUN), "target_rel_error",
        st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0), NAN_INF, st.text(max_size=3)),
    ),
    "activation name": (fp.activation, "activation", st.one_of(st.integers(), st.none(), st.floats())),
    "register name": (lambda v: fp.register_activation(v, math.sin, math.cos, math.sin), "name",
                      st.one_of(st.just(""), st.integers(), st.none(), st.sampled_from(fp.ACTIVATIONS))),
}  # fmt: skip
SMALL_RUN = dict(width=3, depth=2, target="cpu")


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_values_are_refused_naming_the_parameter(case, tmp_path, monkeypatch):
    call, name, strategy = CASES[case]
    monkeypatch.chdir(tmp_path)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(value=strategy)
    def check(value):
        _raises_naming(lambda: call(value), name)

    check()


@pytest.fixture(scope="module")
def result():
    return fp.simulate_chains(3, 4, 200, layers=[2, 4], target="cpu", seed=1)


RESULT_CASES = {
    "t": (lambda r, v: r.tail_probability(v), st.one_of(st.floats(max_value=0.0), NAN_INF, JUNK)),
    "side": (lambda r, v: r.tail_probability(10.0, side=v), bad_choice(("upper", "lower"))),
    "layer": (lambda r, v: r.tail_probability(10.0, layer=v),
              st.one_of(st.integers(min_value=5), st.integers(max_value=-3), st.sampled_from([0, 1, 3]),
                        st.floats(), st.text(max_size=2))),
    "level": (lambda r, v: r.tail_probability(10.0, level=v),
              st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0), NAN_INF, JUNK)),
    "interval": (lambda r, v: r.tail_probability(10.0, interval=v), bad_choice(("wilson", "clopper-pearson"))),
    "q": (lambda r, v: r.quantile(v), st.one_of(st.floats(min_value=1.0000001), st.floats(max_value=-1e-9), NAN_INF,
                                                st.text(max_size=3))),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(RESULT_CASES))
def test_result_methods_refuse_bad_values_naming_the_parameter(name, result):
    call, strategy = RESULT_CASES[name]

    @settings(max_examples=40, deadline=None)
    @given(value=strategy)
    def check(value):
        _raises_naming(lambda: call(result, value), name)

    check()


def test_mismatched_broadcast_and_arrays_of_sigma():
    with pytest.raises(ValueError, match="single number"):
        fp.simulate_chains(3, 2, 5, sigma_w=[1, 2])
    with pytest.raises(ValueError, match="sigma_w must be finite"):
        fp.length_map(1, 10**400, 0)
    with pytest.raises(ValueError, match="got -5"):
        fp.simulate_chains(3, 2, 5, layers=[-5])
    with pytest.raises(TypeError, match="sigma_w"):
        fp.simulate_chains(3, 2, 5, sigma_w=True)
    assert checkpoint._request(np.int64(1000), None, ("upper", 10.0), 10)["n_chains"] == 1000
