"""Activations as data: φ, φ', φ'', kinks, quadrature features and closed forms.

An :class:`Activation` bundles plain Numba-compilable Python functions; the
mean-field kernels in :mod:`fastprop.meanfield` are specialised per activation
by compiling these functions into them.

Conventions (DESIGN §1): ``h`` is a pre-activation; for the Gaussian
expectations the pre-activation is ``h = √q z`` with ``z ~ N(0, 1)``.

What each activation supplies
-----------------------------
``eval3(h) -> (φ(h), φ'(h), φ''(h))``
    One call that shares work between the three (``tanh`` needs one ``expm1``).
    φ'' is the ordinary derivative away from kinks; a kink's jump in φ' is
    recorded separately (``kinks`` and ``slope_jumps``) and enters the
    distributional φ'' as a Dirac mass.
``breaks``
    Points in ``h`` where φ is not analytic (kinks, exact) or where it bends
    (graded feature points of smooth activations). ``corners`` are the breaks
    where φ' or φ'' jumps (the kinks, and e.g. elu's 0, where only φ'' jumps):
    they are always panel boundaries, and where a conditional mean smooths them
    over a tiny width (the correlation map near c = ±1) panels are graded
    around them. The quadrature places panel
    boundaries at ``breaks/√q``, which keeps composite Gauss–Legendre accurate
    at any q, including large q where φ(√q z) is nearly a step or a kink.
``gauss_mean(m, s) -> (E φ(m + s Z), E φ'(m + s Z))`` (optional)
    Closed-form one-dimensional Gaussian expectations with s > 0. When present,
    the two-dimensional correlation integrals need only one quadrature.
``strip`` (optional, 0 = not declared)
    Half-width a of a strip |Im h| < a around the real axis in which φ is
    analytic (the distance to its nearest complex singularity: tanh π/2,
    sigmoid, softplus and swish π). It lets the two-dimensional correlation
    integrals use a lattice (trapezoidal) rule whose error e^{−2πa/Δ} is known
    in advance, with φ evaluated once per lattice point.
``odd`` (optional)
    φ(−h) = −φ(h). The lattice rule then sums half of its lattice (the
    correlation integrands are even in u₁).
``kernel(q, c) -> (E φ(u₁)φ(u₂), E φ'(u₁)φ'(u₂))`` (optional)
    Closed form of the whole two-dimensional integral with
    Var u₁ = Var u₂ = q and Corr(u₁, u₂) = c (relu: arc-cosine kernel; erf:
    arcsine kernel; linear).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from types import BuiltinFunctionType, FunctionType, ModuleType

import numpy as np
from numba import njit

from .special import exp_times_lower_tail, norm_cdf, norm_pdf

__all__ = ["ACTIVATIONS", "Activation", "activation", "register_activation"]

_GRADED = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


def _symmetric(points):
    return tuple(sorted({0.0, *points, *(-p for p in points)}))


@dataclass(frozen=True, eq=False)
class Activation:
    """A scalar nonlinearity φ with what the mean-field and chain kernels need.

    Build your own with :func:`register_activation`; the built-ins are listed
    in :data:`ACTIVATIONS` and obtained with :func:`activation`.
    """

    name: str
    formula: str
    eval3: Callable = field(repr=False)
    breaks: tuple = ()
    kinks: tuple = ()
    slope_jumps: tuple = ()
    corners: tuple = ()
    gauss_mean: Callable | None = field(default=None, repr=False)
    kernel: Callable | None = field(default=None, repr=False)
    homogeneous: bool = False
    strip: float = 0.0
    odd: bool = False
    method_note: str = ""

    @functools.cached_property
    def fingerprint(self) -> str:
        """What this activation computes, as a hex digest: its name, its numbers
        (breaks, kinks, strip, …) and the source (or code) of its functions and of
        every function and constant they use, closures included.

        Compiled kernels are cached under it (never under the name alone, so an
        ``Activation`` built with ``dataclasses.replace`` or re-registered under
        the same name gets kernels of its own), and results record it, so results
        of different activations of one name refuse to merge. It is the same in
        every process and on every machine for the same code.
        """
        h = hashlib.sha256()
        seen: set = set()
        local: list = []
        for f in fields(self):
            _digest(getattr(self, f.name), h, seen, local)
        self.__dict__["portable"] = not local
        return h.hexdigest()[:16]

    @property
    def portable(self) -> bool:
        """Whether :attr:`fingerprint` is the same in every process: true unless a
        function captures an object that can only be known by its identity. Portable
        activations have their compiled kernels cached on disk (:mod:`fastprop.run.compile`)."""
        if "portable" not in self.__dict__:
            _ = self.fingerprint
        return self.__dict__["portable"]

    def phi(self, h):
        """φ(h), evaluated element-wise on arrays (compiled)."""
        return _vectorised(self)(np.asarray(h, dtype=np.float64), 0)

    def dphi(self, h):
        """φ'(h) element-wise (at a kink itself: one of the one-sided slopes)."""
        return _vectorised(self)(np.asarray(h, dtype=np.float64), 1)

    def d2phi(self, h):
        """φ''(h) element-wise, without the Dirac masses at kinks."""
        return _vectorised(self)(np.asarray(h, dtype=np.float64), 2)


_FIXED_MODULES = ("math", "cmath", "numpy", "numba", "scipy")
"""Modules whose attributes a φ may use by name (``math.tanh``): their contents are
fixed by the versions in the kernel cache's key. Any other module a φ reaches into
(``helpers.SCALE``) has the attributes it uses hashed by value."""


def _digest(value, h, seen, local):
    """Feed what ``value`` computes into the hash ``h``: functions by their code as
    loaded (and their source), the options of a Numba dispatcher, and everything they
    reference, attributes of user modules included; numbers and arrays by value.
    Anything known only by its identity in this process is appended to ``local``."""
    py = getattr(value, "py_func", value)  # a Numba dispatcher: its Python function
    if py is not value and hasattr(value, "targetoptions"):
        h.update(repr(sorted(value.targetoptions.items())).encode())  # fastmath, error_model, …
    if isinstance(py, FunctionType):
        if id(py) in seen:
            return
        seen.add(id(py))
        _digest_code(py.__code__, h)
        try:
            h.update(inspect.getsource(py).encode())  # docs and layout too; the code above is what runs
        except (OSError, TypeError):  # no source file (exec): the code alone
            pass
        _digest(py.__defaults__, h, seen, local)
        _digest(tuple(sorted((py.__kwdefaults__ or {}).items())), h, seen, local)
        for cell in py.__closure__ or ():
            try:
                _digest(cell.cell_contents, h, seen, local)
            except ValueError:  # an empty cell
                pass
        names = _referenced_names(py.__code__)
        for name in names:
            if name in py.__globals__:
                h.update(name.encode())
                target = py.__globals__[name]
                _digest(target, h, seen, local)
                if isinstance(target, ModuleType) and target.__name__.split(".")[0] not in _FIXED_MODULES:
                    for attr in names:  # helpers.SCALE: the attributes this code may use
                        if hasattr(target, attr):
                            h.update(f"{name}.{attr}".encode())
                            _digest(getattr(target, attr), h, seen, local)
    elif isinstance(py, BuiltinFunctionType):
        h.update(f"builtin {py.__module__}.{py.__qualname__}".encode())
    elif isinstance(py, np.ufunc):
        h.update(f"ufunc {py.__name__}".encode())
    elif isinstance(py, ModuleType):
        h.update(f"module {py.__name__}".encode())
    elif isinstance(py, (tuple, list)):
        h.update(b"(")
        for v in py:
            _digest(v, h, seen, local)
        h.update(b")")
    elif py is None or isinstance(py, (bool, int, float, complex, str, bytes, np.generic)):
        h.update(f"{type(py).__name__} {py!r}".encode())
    elif isinstance(py, np.ndarray):
        h.update(repr((py.dtype.str, py.shape)).encode() + py.tobytes())
    else:  # anything else is known by its identity: safe, though only within this process
        h.update(f"{type(py).__qualname__}@{id(py)}".encode())
        local.append(py)


def _digest_code(code, h):
    """Hash a code object as it runs: bytecode, names, and constants (nested code
    objects, e.g. lambdas, by the same rule, never by their address)."""
    h.update(code.co_code)
    h.update(repr((code.co_names, code.co_varnames, code.co_freevars)).encode())
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            _digest_code(const, h)
        else:
            h.update(f"{type(const).__name__} {const!r}".encode())


def _referenced_names(code):
    """Global (and attribute) names used by a code object and the code objects nested in it."""
    names = set(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            names |= set(_referenced_names(const))
    return sorted(names)


_VECTORISED: dict[str, Callable] = {}


def _vectorised(act):
    fn = _VECTORISED.get(act.fingerprint)
    if fn is None:
        ev = act.eval3

        @njit
        def apply(h, k):
            out = np.empty(h.shape)
            flat = h.ravel()
            res = out.ravel()
            for i in range(flat.size):
                v = ev(flat[i])
                res[i] = v[0] if k == 0 else (v[1] if k == 1 else v[2])
            return out

        fn = _VECTORISED[act.fingerprint] = apply
    return fn


# ---------------------------------------------------------------------------
# Built-in activations. Each scalar function below is the only place its
# formula is written.
# ---------------------------------------------------------------------------


@njit(cache=True)
def linear_eval3(h):
    return h, 1.0, 0.0


@njit(cache=True)
def linear_gauss_mean(m, s):
    return m, 1.0


@njit(cache=True)
def linear_kernel(q, c):
    return q * c, 1.0


@njit(cache=True)
def _relu_mean(m, s):
    """E[(m + sZ)₊] = mΦ(m/s) + sϕ(m/s)."""
    t = m / s
    return m * norm_cdf(t) + s * norm_pdf(t)


@njit(cache=True)
def relu_eval3(h):
    if h > 0.0:
        return h, 1.0, 0.0
    return 0.0, 0.0, 0.0


@njit(cache=True)
def relu_gauss_mean(m, s):
    return _relu_mean(m, s), norm_cdf(m / s)


@njit(cache=True)
def relu_kernel(q, c):
    """Arc-cosine kernel of degree 1 (Cho & Saul 2009):
    E[φ(u₁)φ(u₂)] = q (√(1−c²) + (π − arccos c) c)/(2π),
    E[φ'(u₁)φ'(u₂)] = (π − arccos c)/(2π)."""
    theta = math.acos(c)
    sine = math.sqrt(max(0.0, (1.0 - c) * (1.0 + c)))  # no cancellation near c = ±1
    return q * (sine + (math.pi - theta) * c) / (2.0 * math.pi), (math.pi - theta) / (2.0 * math.pi)


LEAKY_SLOPE = 0.01


@njit(cache=True)
def leaky_relu_eval3(h):
    if h > 0.0:
        return h, 1.0, 0.0
    return LEAKY_SLOPE * h, LEAKY_SLOPE, 0.0


@njit(cache=True)
def leaky_relu_gauss_mean(m, s):
    a = LEAKY_SLOPE
    return a * m + (1.0 - a) * _relu_mean(m, s), a + (1.0 - a) * norm_cdf(m / s)


@njit(cache=True)
def abs_eval3(h):
    if h > 0.0:
        return h, 1.0, 0.0
    return -h, -1.0, 0.0


@njit(cache=True)
def abs_gauss_mean(m, s):
    # |x| = 2 x₊ − x
    return 2.0 * _relu_mean(m, s) - m, 2.0 * norm_cdf(m / s) - 1.0


@njit(cache=True)
def tanh_eval3(h):
    a = abs(h)
    if a < 0.5:
        e = math.expm1(-2.0 * a)  # tanh a = −e/(2 + e): no cancellation near 0
        t = -e / (2.0 + e)
        x = 1.0 + e
    else:
        x = math.exp(-2.0 * a)
        t = (1.0 - x) / (1.0 + x)
    d = 4.0 * x / ((1.0 + x) * (1.0 + x))  # sech²h, relatively exact in the tails
    if h < 0.0:
        t = -t
    return t, d, -2.0 * t * d


@njit(cache=True)
def hard_tanh_eval3(h):
    if h > 1.0:
        return 1.0, 0.0, 0.0
    if h < -1.0:
        return -1.0, 0.0, 0.0
    return h, 1.0, 0.0


@njit(cache=True)
def hard_tanh_gauss_mean(m, s):
    # clip(x, −1, 1) = −1 + (x+1)₊ − (x−1)₊
    return (
        -1.0 + _relu_mean(m + 1.0, s) - _relu_mean(m - 1.0, s),
        norm_cdf((m + 1.0) / s) - norm_cdf((m - 1.0) / s),
    )


ERF_SCALE = math.sqrt(math.pi) / 2.0


@njit(cache=True)
def erf_eval3(h):
    g = math.exp(-0.25 * math.pi * h * h)
    return math.erf(ERF_SCALE * h), g, -0.5 * math.pi * h * g


@njit(cache=True)
def erf_gauss_mean(m, s):
    """E erf(a(m+sZ)) = erf(am/√(1+2a²s²)); E exp(−a²(m+sZ)²) = exp(−a²m²/v)/√v, v = 1+2a²s²."""
    a2 = ERF_SCALE * ERF_SCALE
    v = 1.0 + 2.0 * a2 * s * s
    return math.erf(ERF_SCALE * m / math.sqrt(v)), math.exp(-a2 * m * m / v) / math.sqrt(v)


@njit(cache=True)
def erf_kernel(q, c):
    """Arcsine kernel (Williams 1998) for φ(h) = erf(ah), a = √π/2:
    E[φ(u₁)φ(u₂)] = (2/π) arcsin(2a²qc/(1 + 2a²q)),
    E[φ'(u₁)φ'(u₂)] = 1/√((1 + 2a²q)² − (2a²qc)²)."""
    k = 2.0 * ERF_SCALE * ERF_SCALE * q
    # (1 + k)² − (kc)² = 1 + 2k + k²(1 − c)(1 + c): no cancellation near c = ±1, where
    # arcsin's slope is large; arcsin(r) = atan2(kc, √(1 − r²)(1 + k)) then stays accurate
    d = math.sqrt(1.0 + 2.0 * k + k * k * ((1.0 - c) * (1.0 + c)))
    return 2.0 / math.pi * math.atan2(k * c, d), 1.0 / d


@njit(cache=True)
def sigmoid_eval3(h):
    e = math.exp(-abs(h))
    s = 1.0 / (1.0 + e)  # σ(|h|)
    d = e / ((1.0 + e) * (1.0 + e))  # σ'(h), even
    t = -math.expm1(-abs(h)) / (1.0 + e)  # 1 − 2σ(−|h|) = 2σ(|h|) − 1, exact near 0
    if h < 0.0:
        return e / (1.0 + e), d, d * t
    return s, d, -d * t


@njit(cache=True)
def softplus_eval3(h):
    e = math.exp(-abs(h))
    p = math.log1p(e) + max(h, 0.0)
    sig, d, _ = sigmoid_eval3(h)
    return p, sig, d


@njit(cache=True)
def elu_eval3(h):
    if h > 0.0:
        return h, 1.0, 0.0
    e = math.exp(h)
    return math.expm1(h), e, e


@njit(cache=True)
def elu_gauss_mean(m, s):
    # x₊ + (eˣ − 1)·1{x<0}
    lower = exp_times_lower_tail(m, s)
    return _relu_mean(m, s) + lower - norm_cdf(-m / s), norm_cdf(m / s) + lower


SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717


@njit(cache=True)
def selu_eval3(h):
    if h > 0.0:
        return SELU_LAMBDA * h, SELU_LAMBDA, 0.0
    e = SELU_LAMBDA * SELU_ALPHA * math.exp(h)
    return SELU_LAMBDA * SELU_ALPHA * math.expm1(h), e, e


@njit(cache=True)
def selu_gauss_mean(m, s):
    lam, alpha = SELU_LAMBDA, SELU_ALPHA
    lower = exp_times_lower_tail(m, s)
    return (
        lam * (_relu_mean(m, s) + alpha * (lower - norm_cdf(-m / s))),
        lam * (norm_cdf(m / s) + alpha * lower),
    )


@njit(cache=True)
def gelu_eval3(h):
    p = norm_pdf(h)
    return h * norm_cdf(h), norm_cdf(h) + h * p, (2.0 - h * h) * p


@njit(cache=True)
def gelu_gauss_mean(m, s):
    """With X ~ N(m, s²), v = 1 + s², t = m/√v:
    E[XΦ(X)] = mΦ(t) + s²ϕ(t)/√v,  E[Φ(X) + Xϕ(X)] = Φ(t) + mϕ(t)/v^{3/2}."""
    v = 1.0 + s * s
    r = math.sqrt(v)
    t = m / r
    p = norm_pdf(t)
    return m * norm_cdf(t) + s * s * p / r, norm_cdf(t) + m * p / (v * r)


@njit(cache=True)
def swish_eval3(h):
    sig, d, d2 = sigmoid_eval3(h)
    return h * sig, sig + h * d, 2.0 * d + h * d2


_LATTICE_NOTE = (
    "graded Gauss–Legendre for 1-D moments; correlation integrals by the lattice (trapezoid) "
    "rule for 0.2 ≤ |c| and √(q(1−c²)) not tiny, graded Gauss–Legendre in z₁ and z₂ otherwise"
)

_BUILTIN_SPECS = {
    "linear": dict(
        formula="φ(h) = h",
        eval3=linear_eval3,
        gauss_mean=linear_gauss_mean,
        kernel=linear_kernel,
        homogeneous=True,
        method_note="closed form (E φ(u₁)φ(u₂) = qc)",
    ),
    "relu": dict(
        formula="φ(h) = max(h, 0)",
        eval3=relu_eval3,
        breaks=(0.0,),
        gauss_mean=relu_gauss_mean,
        kernel=relu_kernel,
        homogeneous=True,
        method_note="arc-cosine kernel (closed form); 1-D moments by kink-split Gauss–Legendre",
    ),
    "leaky_relu": dict(
        formula=f"φ(h) = h for h > 0, {LEAKY_SLOPE}·h otherwise",
        eval3=leaky_relu_eval3,
        breaks=(0.0,),
        gauss_mean=leaky_relu_gauss_mean,
        homogeneous=True,
        method_note="kink-split Gauss–Legendre over z₁, closed-form conditional mean over z₂",
    ),
    "abs": dict(
        formula="φ(h) = |h|",
        eval3=abs_eval3,
        breaks=(0.0,),
        gauss_mean=abs_gauss_mean,
        homogeneous=True,
        method_note="kink-split Gauss–Legendre over z₁, closed-form conditional mean over z₂",
    ),
    "tanh": dict(
        formula="φ(h) = tanh(h)",
        eval3=tanh_eval3,
        breaks=_symmetric(_GRADED),
        strip=math.pi / 2,
        odd=True,
        method_note=_LATTICE_NOTE,
    ),
    "hard_tanh": dict(
        formula="φ(h) = max(−1, min(1, h))",
        eval3=hard_tanh_eval3,
        breaks=(-1.0, 1.0),
        gauss_mean=hard_tanh_gauss_mean,
        method_note="kink-split Gauss–Legendre over z₁, closed-form conditional mean over z₂",
    ),
    "erf": dict(
        formula="φ(h) = erf(√π h / 2)",
        eval3=erf_eval3,
        breaks=_symmetric(_GRADED[:-1]),
        gauss_mean=erf_gauss_mean,
        kernel=erf_kernel,
        method_note="arcsine kernel (closed form); 1-D moments by graded Gauss–Legendre",
    ),
    "sigmoid": dict(
        formula="φ(h) = 1/(1 + e^{−h})",
        eval3=sigmoid_eval3,
        breaks=_symmetric(tuple(2.0 * g for g in _GRADED)),
        strip=math.pi,
        method_note=_LATTICE_NOTE,
    ),
    "softplus": dict(
        formula="φ(h) = log(1 + e^{h})",
        eval3=softplus_eval3,
        breaks=_symmetric(_GRADED + (32.0,)),
        strip=math.pi,
        method_note=_LATTICE_NOTE,
    ),
    "elu": dict(
        formula="φ(h) = h for h > 0, e^{h} − 1 otherwise (α = 1)",
        eval3=elu_eval3,
        breaks=tuple(sorted({0.0, *(-g for g in _GRADED), -32.0})),
        gauss_mean=elu_gauss_mean,
        method_note="kink-split graded Gauss–Legendre over z₁, closed-form conditional mean over z₂",
    ),
    "selu": dict(
        formula=f"φ(h) = λh for h > 0, λα(e^h − 1) otherwise (λ = {SELU_LAMBDA}, α = {SELU_ALPHA})",
        eval3=selu_eval3,
        breaks=tuple(sorted({0.0, *(-g for g in _GRADED), -32.0})),
        gauss_mean=selu_gauss_mean,
        method_note="kink-split graded Gauss–Legendre over z₁, closed-form conditional mean over z₂",
    ),
    "gelu": dict(
        formula="φ(h) = h Φ(h)",
        eval3=gelu_eval3,
        breaks=_symmetric(_GRADED[:-1]),
        gauss_mean=gelu_gauss_mean,
        method_note="graded Gauss–Legendre over z₁, closed-form conditional mean over z₂",
    ),
    "swish": dict(
        formula="φ(h) = h/(1 + e^{−h})",
        eval3=swish_eval3,
        breaks=_symmetric(_GRADED + (32.0,)),
        strip=math.pi,
        method_note=_LATTICE_NOTE,
    ),
}

ACTIVATIONS: tuple = tuple(_BUILTIN_SPECS)
"""Names of the built-in activations."""

_REGISTRY: dict[str, Activation] = {}


def _kink_data(eval3, kinks, order=1):
    """Jumps of φ' (``order`` 1) or φ'' (2) across each point, from the compiled eval3."""
    jumps = []
    for k in kinks:
        right = eval3(float(np.nextafter(k, np.inf)))[order]
        left = eval3(float(np.nextafter(k, -np.inf)))[order]
        jumps.append(float(right - left))
    return tuple(jumps)


def _make(name, eval3, breaks=(), kinks=None, **kw):
    breaks = tuple(sorted({float(b) for b in breaks}))
    if kinks is None:
        # A break is a kink when φ' jumps there; smooth feature points have no jump.
        kinks = tuple(b for b, j in zip(breaks, _kink_data(eval3, breaks), strict=True) if abs(j) > 1e-9)
    kinks = tuple(float(k) for k in kinks)
    curvature_jumps = _kink_data(eval3, breaks, order=2)
    corners = tuple(b for b, j in zip(breaks, curvature_jumps, strict=True) if b in kinks or abs(j) > 1e-9)
    return Activation(
        name=name,
        eval3=eval3,
        breaks=breaks,
        kinks=kinks,
        slope_jumps=_kink_data(eval3, kinks),
        corners=corners,
        **kw,
    )


def activation(name) -> Activation:
    """Return the :class:`Activation` called ``name`` (built-in or registered).

    An :class:`Activation` passed in is returned unchanged.
    """
    if isinstance(name, Activation):
        return name
    if not isinstance(name, str):
        raise TypeError(f"activation must be a name (str) or an Activation, got {type(name).__name__}")
    act = _REGISTRY.get(name)
    if act is None:
        spec = _BUILTIN_SPECS.get(name)
        if spec is None:
            known = ", ".join(sorted(set(ACTIVATIONS) | set(_REGISTRY)))
            raise ValueError(f"unknown activation {name!r}; known activations: {known}")
        act = _REGISTRY[name] = _make(name, **spec)
    return act


def _unique_name(py, digest_of):
    """``py`` itself, or — for a function whose qualified name is not unique (a lambda,
    a closure) — a copy named after a digest of what ``digest_of`` computes.

    Numba names compiled code after the function's module and qualified name plus a
    counter that starts afresh in every process. Kernels cached on disk by different
    processes can therefore embed two *different* closures under one name, and a
    process that loads both links one in place of the other (a silently wrong φ or
    panel rule). Named by content, two functions share a name only if they compute
    the same thing."""
    if "<locals>" not in py.__qualname__ and "<lambda>" not in py.__qualname__:
        return py
    h = hashlib.sha256()
    _digest(digest_of, h, set(), [])
    copy = FunctionType(py.__code__, py.__globals__, py.__name__, py.__defaults__, py.__closure__)
    copy.__kwdefaults__ = py.__kwdefaults__
    copy.__qualname__ = f"{py.__qualname__.replace('<', '_').replace('>', '_')}_{h.hexdigest()[:20]}"
    return copy


def unique_njit(py, digest_of=None, **options):
    """``njit(**options)`` of ``py`` under a name unique to what it computes (:func:`_unique_name`)."""
    return njit(**options)(_unique_name(py, py if digest_of is None else digest_of))


def _as_njit(fn):
    """A Numba dispatcher for a scalar function: as given, compiled, or (for a
    builtin such as ``math.tanh`` or a NumPy ufunc such as ``np.tanh``) wrapped;
    lambdas and closures are compiled under names unique to their content."""
    if hasattr(fn, "py_func"):
        if _unique_name(fn.py_func, fn) is fn.py_func:
            return fn
        return unique_njit(fn.py_func, fn, **fn.targetoptions)
    if isinstance(fn, (BuiltinFunctionType, np.ufunc)):
        builtin = fn
        return unique_njit(lambda h: builtin(h))
    return unique_njit(fn)


_PROBES = (-2.7, -1.3, -0.45, 0.35, 0.8, 1.9, 3.1)
"""Points where a registered φ, φ', φ'' are checked against each other."""


def _check_derivatives(eval3, breaks):
    """φ, φ', φ'' return real floats, and φ' and φ'' match central differences of
    φ and φ' (relative 1e-4: a check for a wrong or swapped derivative, not a
    precision test) at points of ``_PROBES`` away from the breaks; points where
    φ is not finite are skipped."""
    for h in _PROBES:
        values = eval3(h)
        for label, v in zip(("phi", "dphi", "d2phi"), values, strict=True):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise TypeError(f"{label} must return a real number (float), got {type(v).__name__} at h = {h}")
        if any(abs(h - b) < 0.05 for b in breaks) or not all(math.isfinite(v) for v in values):
            continue
        step = 1e-5 * (1.0 + abs(h))
        up, down = eval3(h + step), eval3(h - step)
        for k, label, of in ((1, "dphi", "phi"), (2, "d2phi", "dphi")):
            fd = (up[k - 1] - down[k - 1]) / (2.0 * step)
            if math.isfinite(fd) and abs(fd - values[k]) > 1e-4 * (1.0 + abs(fd) + abs(values[k])):
                raise ValueError(
                    f"{label} is not the derivative of {of}: at h = {h}, {label}(h) = {values[k]!r} but the "
                    f"central difference of {of} gives {fd!r} (declare kinks where {of} has a corner)"
                )


def register_activation(
    name,
    phi,
    dphi,
    d2phi,
    *,
    kinks=(),
    features=(),
    strip=0.0,
    odd=False,
    formula="user-defined",
    overwrite=False,
) -> Activation:
    """Register a user activation from Numba-compilable scalar functions.

    Parameters
    ----------
    name : str
        The name under which :func:`activation` and every ``activation=``
        argument will find it.
    phi, dphi, d2phi : callable
        Plain Python functions ``float -> float`` (or Numba ``@njit``
        dispatchers) for φ, φ' and φ'' away from kinks. They may use ``math``
        and NumPy scalar functions that Numba supports. They must return real
        numbers, and φ', φ'' are checked against central differences of φ, φ'
        at a few points (a ``ValueError`` names the first mismatch).
    kinks : sequence of float
        Points where φ' jumps (φ must be continuous). Quadrature panels are
        split there and the jump enters E[φφ''] as a Dirac mass.
    features : sequence of float
        Extra points in h where φ bends sharply (e.g. ``(-4, -2, -1, 0, 1, 2, 4)``
        for a saturating activation); they keep the quadrature accurate when q
        is large. Without any, only the Gaussian's own panels are used.
    strip : float
        If φ is analytic in the strip |Im h| < ``strip`` (and grows at most
        polynomially there), say so: the correlation integrals then use the
        much faster lattice rule (tanh: π/2, the distance from the real axis to
        its poles ±iπ/2). 0 (the default) keeps the Gauss–Legendre rules.
        Must be 0 when there are kinks.
    odd : bool
        φ is odd (φ(−h) = −φ(h)); halves the work of the lattice rule. Checked
        at a few points.
    formula : str
        Shown in ``repr`` and the docs.
    overwrite : bool
        Replace an earlier registration of the same name (built-ins cannot be
        replaced).

    Example
    -------
    >>> import math, fastprop as fp
    >>> fp.register_activation("cube_tanh", lambda h: math.tanh(h) ** 3,
    ...     lambda h: 3 * math.tanh(h) ** 2 * (1 - math.tanh(h) ** 2),
    ...     lambda h: 6 * math.tanh(h) * (1 - math.tanh(h) ** 2) ** 2
    ...               - 6 * math.tanh(h) ** 3 * (1 - math.tanh(h) ** 2),
    ...     features=(-4, -2, -1, 0, 1, 2, 4))  # doctest: +ELLIPSIS
    Activation(name='cube_tanh', ...)
    """
    if not isinstance(name, str) or not name:
        raise TypeError("name must be a non-empty str")
    if name in _BUILTIN_SPECS:
        raise ValueError(f"name {name!r} is a built-in activation and cannot be replaced")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"name {name!r}: an activation of that name is registered; pass overwrite=True to replace it")
    for label, fn in (("phi", phi), ("dphi", dphi), ("d2phi", d2phi)):
        if not callable(fn):
            raise TypeError(f"{label} must be callable")
    kinks = tuple(float(k) for k in kinks)
    features = tuple(float(f) for f in features)
    if not all(math.isfinite(v) for v in kinks + features):
        raise ValueError("kinks and features must be finite numbers")
    strip = float(strip)
    if not (math.isfinite(strip) and strip >= 0.0):
        raise ValueError(f"strip must be a finite number ≥ 0, got {strip}")
    if strip > 0.0 and kinks:
        raise ValueError("strip must be 0 for an activation with kinks (φ is not analytic there)")
    f0, f1, f2 = (_as_njit(fn) for fn in (phi, dphi, d2phi))

    def eval3(h):
        return f0(h), f1(h), f2(h)

    eval3 = unique_njit(eval3, (name, eval3))

    try:
        eval3(0.5)
    except Exception as exc:  # numba typing errors are many classes
        raise TypeError(f"phi, dphi and d2phi must be Numba-compilable scalar functions: {exc}") from exc
    _check_derivatives(eval3, kinks + features)
    if odd:
        for h in (0.1, 0.7, 1.3, 2.9, 11.0, *features):
            if abs(f0(-h) + f0(h)) > 1e-12 * (1.0 + abs(f0(h))):
                raise ValueError(f"odd=True but phi(-{h}) != -phi({h})")
    act = _make(name, eval3, breaks=kinks + features, kinks=kinks, formula=formula, strip=strip, odd=bool(odd))
    _REGISTRY[name] = act
    return act
