"""Search spaces: named real, integer and categorical parameters and their unit-cube encoding.

An analysis describes the parameters the optimiser may tune once, as a :class:`SearchSpace` next
to its public function. The optimiser only ever sees the *encoded* form, a float array with one
column per parameter:

* :class:`Real` — ``(value - low) / (high - low)`` in [0, 1] (or the same on ``log(value)`` when
  ``log=True``);
* :class:`Integer` — the centre of the value's equal-width bin: ``(value - low + 0.5) / n`` with
  ``n = high - low + 1``, so every integer owns the same share of [0, 1] and a uniform design
  samples the integers uniformly; decoding takes ``low + floor(u * n)``;
* :class:`Categorical` — the index of the choice, ``0 … k - 1`` (not scaled: the mixed GP kernel
  only compares categories for equality).

This module knows nothing about images, atoms or torch; it uses numpy and scipy only.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ParameterError

__all__ = ["Real", "Integer", "Categorical", "SearchSpace"]


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ParameterError(
            f"a search-space parameter needs a non-empty string name, got {name!r}"
        )
    return name


def _finite_number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterError(f"{what} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ParameterError(f"{what} must be finite, got {value!r}")
    return value


@dataclass(frozen=True)
class Real:
    """A continuous parameter in ``[low, high]``.

    Parameters
    ----------
    name
        Parameter name, as passed to the objective.
    low, high
        Inclusive bounds (in the parameter's own unit), ``low < high``.
    log
        Search uniformly in ``log(value)`` (requires ``low > 0``); use for scale-like parameters
        spanning decades (e.g. a detection threshold from 0.001 to 0.5).
    default
        The value an analysis uses when it is not optimised; ``None`` means the centre of the
        range (the geometric centre when ``log=True``).
    """

    name: str
    low: float
    high: float
    log: bool = False
    default: float | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        low = _finite_number(self.low, f"Real {self.name!r}: low")
        high = _finite_number(self.high, f"Real {self.name!r}: high")
        if not low < high:
            raise ParameterError(
                f"Real {self.name!r}: low ({low:g}) must be smaller than high ({high:g}); to fix "
                "a parameter, leave it out of the search space and pass it to the objective"
            )
        if self.log and low <= 0:
            raise ParameterError(f"Real {self.name!r}: log=True needs low > 0, got {low:g}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "log", bool(self.log))
        if self.default is not None:
            object.__setattr__(self, "default", self.check(self.default))

    # -- encoding -------------------------------------------------------------------------
    def check(self, value: Any) -> float:
        """Validate one value and return it as a float."""
        v = _finite_number(value, f"parameter {self.name!r}")
        tol = 1e-9 * (self.high - self.low)
        if v < self.low - tol or v > self.high + tol:
            raise ParameterError(
                f"parameter {self.name!r} = {v:g} is outside its range [{self.low:g}, "
                f"{self.high:g}]"
            )
        return min(max(v, self.low), self.high)

    def _encode(self, values: np.ndarray) -> np.ndarray:
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            return (np.log(values) - lo) / (hi - lo)
        return (values - self.low) / (self.high - self.low)

    def _decode(self, u: np.ndarray) -> list[float]:
        u = np.clip(u, 0.0, 1.0)
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            v = np.exp(lo + u * (hi - lo))
        else:
            v = self.low + u * (self.high - self.low)
        return [float(x) for x in np.clip(v, self.low, self.high)]

    def _centre(self) -> float:
        if self.default is not None:
            return self.default
        if self.log:
            return math.sqrt(self.low * self.high)
        return 0.5 * (self.low + self.high)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "real",
            "name": self.name,
            "low": self.low,
            "high": self.high,
            "log": self.log,
            "default": self.default,
        }


@dataclass(frozen=True)
class Integer:
    """An integer parameter in ``{low, low + 1, …, high}`` (both inclusive).

    Parameters
    ----------
    name
        Parameter name, as passed to the objective.
    low, high
        Inclusive integer bounds, ``low < high``.
    default
        The value used when the parameter is not optimised; ``None`` means the middle value
        (rounded down).
    """

    name: str
    low: int
    high: int
    default: int | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        low = self._as_int(self.low, "low")
        high = self._as_int(self.high, "high")
        if not low < high:
            raise ParameterError(
                f"Integer {self.name!r}: low ({low}) must be smaller than high ({high}); to fix "
                "a parameter, leave it out of the search space and pass it to the objective"
            )
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        if self.default is not None:
            object.__setattr__(self, "default", self.check(self.default))

    def _as_int(self, value: Any, what: str) -> int:
        v = _finite_number(value, f"Integer {self.name!r}: {what}")
        if v != round(v):
            raise ParameterError(
                f"Integer {self.name!r}: {what} must be a whole number, got {value!r}"
            )
        return int(round(v))

    @property
    def n_values(self) -> int:
        return self.high - self.low + 1

    def check(self, value: Any) -> int:
        """Validate one value and return it as a Python int."""
        v = _finite_number(value, f"parameter {self.name!r}")
        if abs(v - round(v)) > 1e-9:
            raise ParameterError(f"parameter {self.name!r} must be a whole number, got {value!r}")
        v = int(round(v))
        if v < self.low or v > self.high:
            raise ParameterError(
                f"parameter {self.name!r} = {v} is outside its range [{self.low}, {self.high}]"
            )
        return v

    def _encode(self, values: np.ndarray) -> np.ndarray:
        return (values - self.low + 0.5) / self.n_values

    def _index(self, u: np.ndarray) -> np.ndarray:
        return np.clip(np.floor(np.asarray(u) * self.n_values), 0, self.n_values - 1)

    def _decode(self, u: np.ndarray) -> list[int]:
        return [int(self.low + i) for i in self._index(u)]

    def _snap(self, u: np.ndarray) -> np.ndarray:
        return (self._index(u) + 0.5) / self.n_values

    def _centre(self) -> int:
        if self.default is not None:
            return self.default
        return (self.low + self.high) // 2

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "integer",
            "name": self.name,
            "low": self.low,
            "high": self.high,
            "default": self.default,
        }


@dataclass(frozen=True)
class Categorical:
    """A parameter taking one of a few unordered values (strings, numbers, ``True``/``False``).

    Parameters
    ----------
    name
        Parameter name, as passed to the objective.
    choices
        The allowed values (at least one, no repeats); they are passed to the objective as given.
    default
        The value used when the parameter is not optimised; ``None`` means the first choice.
        (A choice that is itself ``None`` can therefore not be the explicit default; list it first.)
    """

    name: str
    choices: tuple[Any, ...]
    default: Any = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        if isinstance(self.choices, str | bytes) or not isinstance(self.choices, Iterable):
            raise ParameterError(
                f"Categorical {self.name!r}: choices must be a list of values, got {self.choices!r}"
            )
        choices = tuple(self.choices)
        if not choices:
            raise ParameterError(f"Categorical {self.name!r} needs at least one choice")
        for i, c in enumerate(choices):
            if any(_same(c, d) for d in choices[:i]):
                raise ParameterError(f"Categorical {self.name!r}: choice {c!r} is repeated")
        object.__setattr__(self, "choices", choices)
        if self.default is not None:
            object.__setattr__(self, "default", self.check(self.default))

    @property
    def n_values(self) -> int:
        return len(self.choices)

    def index(self, value: Any) -> int:
        """Position of *value* in :attr:`choices` (``ParameterError`` if absent)."""
        for i, c in enumerate(self.choices):
            if _same(value, c):
                return i
        raise ParameterError(
            f"parameter {self.name!r} = {value!r} is not one of {list(self.choices)!r}"
        )

    def check(self, value: Any) -> Any:
        """Validate one value and return the matching entry of :attr:`choices`."""
        return self.choices[self.index(value)]

    def _encode(self, values: Sequence[Any]) -> np.ndarray:
        return np.array([self.index(v) for v in values], dtype=float)

    def _decode(self, idx: np.ndarray) -> list[Any]:
        i = np.clip(np.rint(np.asarray(idx, dtype=float)), 0, self.n_values - 1).astype(int)
        return [self.choices[k] for k in i]

    def _centre(self) -> Any:
        return self.choices[0] if self.default is None else self.default

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "categorical",
            "name": self.name,
            "choices": list(self.choices),
            "default": self.default,
        }


def _same(a: Any, b: Any) -> bool:
    """Equality that keeps ``True``/``1`` and ``False``/``0`` apart and never raises."""
    if isinstance(a, bool | np.bool_) != isinstance(b, bool | np.bool_):
        return False
    try:
        return bool(a == b)
    except Exception:  # e.g. arrays compared element-wise
        return a is b


Dimension = Real | Integer | Categorical


@dataclass(frozen=True, init=False)
class SearchSpace:
    """An ordered set of named parameters (:class:`Real`, :class:`Integer`, :class:`Categorical`).

    Parameters
    ----------
    dimensions
        The parameters, in the order of the encoded columns. Names must be unique.

    Examples
    --------
    >>> space = SearchSpace([Real("threshold", 0.01, 0.5, log=True), Integer("num_sigma", 3, 15),
    ...                      Categorical("method", ["log", "dog"])])
    >>> X = space.encode([{"threshold": 0.1, "num_sigma": 5, "method": "dog"}])
    >>> space.decode(X)[0]["method"]
    'dog'
    """

    dimensions: tuple[Dimension, ...] = field()

    def __init__(self, dimensions: Iterable[Dimension]) -> None:
        if isinstance(dimensions, SearchSpace):
            dimensions = dimensions.dimensions
        if isinstance(dimensions, Real | Integer | Categorical):
            dimensions = [dimensions]
        dims = tuple(dimensions)
        if not dims:
            raise ParameterError("a search space needs at least one parameter")
        seen: set[str] = set()
        for d in dims:
            if not isinstance(d, Real | Integer | Categorical):
                raise ParameterError(
                    f"search-space entries must be Real, Integer or Categorical, got {d!r}"
                )
            if d.name in seen:
                raise ParameterError(f"parameter name {d.name!r} appears twice in the search space")
            seen.add(d.name)
        object.__setattr__(self, "dimensions", dims)

    # -- description ----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.dimensions)

    def __iter__(self) -> Iterator[Dimension]:
        return iter(self.dimensions)

    def __getitem__(self, name: str) -> Dimension:
        for d in self.dimensions:
            if d.name == name:
                return d
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        """Parameter names in column order."""
        return [d.name for d in self.dimensions]

    @property
    def real_dims(self) -> list[int]:
        return [i for i, d in enumerate(self.dimensions) if isinstance(d, Real)]

    @property
    def int_dims(self) -> list[int]:
        return [i for i, d in enumerate(self.dimensions) if isinstance(d, Integer)]

    @property
    def cat_dims(self) -> list[int]:
        return [i for i, d in enumerate(self.dimensions) if isinstance(d, Categorical)]

    @property
    def bounds(self) -> np.ndarray:
        """Bounds of the encoded columns, shape ``(2, d)``: [0, 1]; [0, k - 1] for categoricals."""
        b = np.zeros((2, len(self)))
        b[1] = 1.0
        for i in self.cat_dims:
            b[1, i] = self.dimensions[i].n_values - 1
        return b

    @property
    def cardinality(self) -> int | None:
        """Number of distinct parameter sets, or ``None`` when a :class:`Real` makes it infinite."""
        if self.real_dims:
            return None
        return math.prod(d.n_values for d in self.dimensions)

    def to_dict(self) -> list[dict[str, Any]]:
        """A JSON-friendly description (one dict per parameter)."""
        return [d.to_dict() for d in self.dimensions]

    # -- values ---------------------------------------------------------------------------
    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Check one parameter set and return it with canonical Python types.

        Raises
        ------
        ParameterError
            When a parameter is missing, unknown, of the wrong type or out of range.
        """
        if not isinstance(params, Mapping):
            raise ParameterError(f"a parameter set must be a dict, got {type(params).__name__}")
        missing = [n for n in self.names if n not in params]
        if missing:
            raise ParameterError(f"parameter set {dict(params)!r} lacks {missing}")
        unknown = [k for k in params if k not in self.names]
        if unknown:
            raise ParameterError(
                f"unknown parameter(s) {unknown}; the search space has {self.names}"
            )
        return {d.name: d.check(params[d.name]) for d in self.dimensions}

    def default(self, **overrides: Any) -> dict[str, Any]:
        """The default parameter set (each parameter's ``default`` or the centre of its range).

        Keyword arguments override single values, e.g. ``space.default(threshold=0.1)``.
        """
        values = {d.name: d._centre() for d in self.dimensions}
        unknown = [k for k in overrides if k not in values]
        if unknown:
            raise ParameterError(
                f"unknown parameter(s) {unknown}; the search space has {self.names}"
            )
        values.update(overrides)
        return self.validate(values)

    def encode(self, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Encode parameter sets to an ``(n, d)`` float array (see the module docstring).

        A single dict gives a ``(1, d)`` array.
        """
        rows = [params] if isinstance(params, Mapping) else list(params)
        checked = [self.validate(p) for p in rows]
        X = np.empty((len(checked), len(self)))
        for j, d in enumerate(self.dimensions):
            col = [p[d.name] for p in checked]
            if isinstance(d, Categorical):
                X[:, j] = d._encode(col)
            else:
                X[:, j] = d._encode(np.asarray(col, dtype=float))
        return X

    def decode(self, X: np.ndarray) -> list[dict[str, Any]]:
        """Decode an ``(n, d)`` (or ``(d,)``) encoded array to parameter sets.

        Values outside the encoded bounds are clipped, integers are taken from their bin
        (``low + floor(u * n)``), categorical indices are rounded.
        """
        X = self._as_2d(X)
        cols = [d._decode(X[:, j]) for j, d in enumerate(self.dimensions)]
        return [
            {d.name: cols[j][i] for j, d in enumerate(self.dimensions)} for i in range(X.shape[0])
        ]

    def snap(self, X: np.ndarray) -> np.ndarray:
        """Canonical encoded form: clipped reals, integers at bin centres, integral categories.

        ``decode(snap(X)) == decode(X)``, and two rows decode to the same parameter set exactly
        when their snapped rows are equal (for reals: up to float rounding).
        """
        X = np.array(self._as_2d(X), dtype=float, copy=True)
        for j, d in enumerate(self.dimensions):
            if isinstance(d, Real):
                X[:, j] = np.clip(X[:, j], 0.0, 1.0)
            elif isinstance(d, Integer):
                X[:, j] = d._snap(X[:, j])
            else:
                X[:, j] = np.clip(np.rint(X[:, j]), 0, d.n_values - 1)
        return X

    def from_unit(self, U: np.ndarray) -> np.ndarray:
        """Map points of the unit cube ``[0, 1)^d`` to the encoded form (categories by bin)."""
        U = np.array(self._as_2d(U), dtype=float, copy=True)
        for j in self.cat_dims:
            k = self.dimensions[j].n_values
            U[:, j] = np.clip(np.floor(U[:, j] * k), 0, k - 1)
        return self.snap(U)

    def sobol_encoded(self, n: int, seed: int | np.random.Generator | None = 0) -> np.ndarray:
        """*n* scrambled Sobol points in the encoded form, shape ``(n, d)``."""
        return self.from_unit(_SobolStream(len(self), seed).draw(n))

    def sobol(self, n: int, seed: int | np.random.Generator | None = 0) -> list[dict[str, Any]]:
        """A scrambled, seeded Sobol (quasi-random) design of *n* parameter sets.

        In a discrete (integer/categorical) space the design can contain repeats; the optimiser
        skips them.
        """
        if int(n) < 0:
            raise ParameterError(f"n must be >= 0, got {n}")
        return self.decode(self.sobol_encoded(int(n), seed))

    def enumerate_encoded(self) -> np.ndarray:
        """All parameter sets of a finite (Real-free) space, encoded: ``(cardinality, d)``."""
        if self.cardinality is None:
            raise ParameterError("a space with Real parameters cannot be enumerated")
        axes = []
        for d in self.dimensions:
            if isinstance(d, Integer):
                axes.append((np.arange(d.n_values) + 0.5) / d.n_values)
            else:
                axes.append(np.arange(d.n_values, dtype=float))
        grids = np.meshgrid(*axes, indexing="ij")
        return np.stack([g.ravel() for g in grids], axis=1)

    def keys(self, X: np.ndarray) -> list[tuple]:
        """Hashable identity of each encoded row, used to skip duplicate evaluations.

        Reals are compared after rounding to 1e-9 of their (encoded) range.
        """
        S = self.snap(X)
        S[:, self.real_dims] = np.round(S[:, self.real_dims], 9)
        return [tuple(row) for row in S.tolist()]

    def _as_2d(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != len(self):
            raise ParameterError(
                f"encoded parameters must have shape (n, {len(self)}), got {X.shape}"
            )
        if not np.all(np.isfinite(X)):
            raise ParameterError("encoded parameters contain NaN or infinite values")
        return X

    def __repr__(self) -> str:
        inner = ", ".join(repr(d) for d in self.dimensions)
        return f"SearchSpace([{inner}])"


class _SobolStream:
    """A seeded scrambled Sobol sequence on ``[0, 1)^d`` that can be drawn from repeatedly."""

    def __init__(self, d: int, seed: int | np.random.Generator | None) -> None:
        from scipy.stats import qmc

        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        try:
            self._engine = qmc.Sobol(d, scramble=True, rng=rng)
        except TypeError:  # scipy < 1.15
            self._engine = qmc.Sobol(d, scramble=True, seed=rng)

    def draw(self, n: int) -> np.ndarray:
        if n <= 0:
            return np.empty((0, self._engine.d))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*balance properties.*")
            return self._engine.random(n)
