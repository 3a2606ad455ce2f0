r"""Where a model's values sit: the positions of its fields and the periods of its domain.

A model states its geometry once, as the optional ``geometry`` attribute of the
:class:`~fdassim.models.base.Model` protocol, and every localized analysis uses it: the
positions of the state's values become the coordinates of the analysis rows
(:class:`~fdassim.analysis.base.Rows`), the observations bring their own positions, and the
periods reach the analysis through :class:`~fdassim.analysis.base.AnalysisContext`, where
each localization takes them as its default (:meth:`Localization.on_domain
<fdassim.analysis.localization.Localization.on_domain>`). Lorenz-96 is a ring of ``n``
values: ``Geometry(periodic=(n,), positions={"x": arange(n)})``; distances on it are
:math:`\min(|\Delta|, n - |\Delta|)`.

Array fields give their positions here; the values of Firedrake ``Function`` fields take
theirs from the mesh (:class:`~fdassim.layout.Layout`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from .errors import ConfigError

__all__ = ["Geometry", "check_periods"]


def check_periods(periodic, key: str = "periodic") -> tuple[float | None, ...] | None:
    """``periodic`` as a tuple of positive finite lengths or ``None`` per axis (or ``None``).

    Raises
    ------
    ConfigError
        Naming ``key`` if ``periodic`` is not a sequence or an entry is not a positive finite
        length or ``None``.
    """
    if periodic is None:
        return None
    if isinstance(periodic, (str, bytes)):
        raise ConfigError(f"{key} must be a sequence of domain lengths (None for a non-periodic axis), "
                          f"or None; got {periodic!r}")
    try:
        periodic = tuple(periodic)
    except TypeError:
        raise ConfigError(f"{key} must be a sequence of domain lengths (None for a non-periodic "
                          f"axis), or None; got {periodic!r}") from None
    for j, p in enumerate(periodic):
        if p is not None and (isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating))
                              or not (math.isfinite(p) and p > 0)):
            raise ConfigError(f"{key}[{j}] must be a positive finite length or None, got {p!r}")
    return tuple(None if p is None else float(p) for p in periodic)


@dataclass(frozen=True, eq=False)
class Geometry:
    """The positions of a model's values and the periods of its domain.

    Parameters
    ----------
    periodic
        One entry per coordinate axis: the domain's length along a periodic axis, ``None``
        along a non-periodic one. Its length is the number of dimensions ``d``.
    positions
        ``{field: (n_f, d) array}``: the position of each value of the model's array fields
        (a vector is taken as ``(n_f, 1)``). Function fields need none: their nodes are on
        the mesh.

    Raises
    ------
    ConfigError
        If ``periodic`` is empty or has a bad length, or a position array is not finite or
        has another number of dimensions.

    Examples
    --------
    >>> ring = Geometry(periodic=(40,), positions={"x": np.arange(40)})
    >>> ring.dim, ring.periodic, ring.positions["x"].shape
    (1, (40.0,), (40, 1))
    """

    periodic: tuple[float | None, ...]
    positions: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        periodic = check_periods(self.periodic, "Geometry.periodic")
        if not periodic:
            raise ConfigError("Geometry.periodic needs one entry per coordinate axis (None for a "
                              "non-periodic axis), e.g. (None, None) for a plane")
        object.__setattr__(self, "periodic", periodic)
        if not isinstance(self.positions, Mapping):
            raise ConfigError(f"Geometry.positions must map field names to (n, d) arrays, got {self.positions!r}")
        positions = {}
        for name, p in self.positions.items():
            p = np.asarray(p, dtype=float)
            p = p.reshape(-1, 1) if p.ndim == 1 else p
            if p.ndim != 2 or p.shape[1] != len(periodic):
                raise ConfigError(f"Geometry.positions[{name!r}] must be (n, {len(periodic)}) for a "
                                  f"{len(periodic)}-D domain, got shape {np.shape(self.positions[name])}")
            if not np.all(np.isfinite(p)):
                raise ConfigError(f"Geometry.positions[{name!r}] has NaN or Inf values")
            p.setflags(write=False)
            positions[name] = p
        object.__setattr__(self, "positions", positions)

    @property
    def dim(self) -> int:
        """Number of coordinate axes."""
        return len(self.periodic)
