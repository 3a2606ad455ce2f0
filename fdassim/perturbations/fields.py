r"""Correlated random fields evaluated at positions: gstools fields and Evensen's FFT fields.

Every generator here maps ``(positions, rng)`` to one draw of a zero-mean random field at
those positions. A field's value at a point depends only on the draw (the generator's state)
and the point, never on which other points are asked for, so a field evaluated at the nodes
a rank owns is the same however the mesh is split.

- :class:`RandomField`: a Gaussian random field with a Gaussian or exponential covariance
  (given standard deviation and length scales, anisotropic and rotated if wanted), drawn by
  gstools' randomization method; optionally conditioned on observations by kriging
  (:meth:`RandomField.conditioned`, gstools' ``CondSRF``), as for bed and friction ensembles.
- :class:`PseudoRandomField`: Evensen's (2003) pseudo-random field, a sum of Fourier modes
  with random phases on a regular grid (one FFT), interpolated to the positions.

Covariances (``r`` the distance scaled by the length scale(s), gstools' conventions):
Gaussian :math:`\sigma^2 \exp(-\tfrac{\pi}{4} r^2)`, exponential :math:`\sigma^2 \exp(-r)`.

References
----------
Müller, S., Schüler, L., Zech, A. and Heße, F. (2022). GSTools v1.3: a toolbox for
geostatistical modelling in Python. Geosci. Model Dev. 15, 3161-3182.
https://doi.org/10.5194/gmd-15-3161-2022

Evensen, G. (2003). The Ensemble Kalman Filter: theoretical formulation and practical
implementation. Ocean Dynamics 53, 343-367 (section 4.2 and appendix on pseudo-random fields).
https://doi.org/10.1007/s10236-003-0036-9
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..errors import ConfigError

__all__ = ["RandomField", "PseudoRandomField", "icesee_length"]


def _seed(rng: np.random.Generator) -> int:
    """A gstools seed drawn from ``rng`` (gstools seeds its own generator from an int)."""
    return int(rng.integers(1, 2**31 - 1))


@dataclass(frozen=True)
class RandomField:
    """A zero-mean Gaussian random field with a Gaussian or exponential covariance.

    Parameters
    ----------
    model
        ``"gaussian"`` or ``"exponential"``.
    std
        Standard deviation :math:`\\sigma`.
    length
        Length scale (gstools' ``len_scale``), one number or one per direction (anisotropy).
    angle
        Rotation of the main axis, in radians (2-D).
    modes
        Number of Fourier modes of the randomization method (more: closer to Gaussian).
    """

    model: Literal["gaussian", "exponential"] = "gaussian"
    std: float = 1.0
    length: float | tuple[float, ...] = 1.0
    angle: float = 0.0
    modes: int = 1000
    _srfs: dict = field(default_factory=dict, repr=False, compare=False)  # dimension -> gstools SRF

    def __post_init__(self):
        if self.model not in ("gaussian", "exponential"):
            raise ConfigError(f"model: {self.model!r} is not known; choose gaussian or exponential")
        lengths = np.atleast_1d(np.asarray(self.length, dtype=float))
        if not (np.isfinite(self.std) and self.std > 0):
            raise ConfigError(f"std: must be positive, got {self.std!r}")
        if not np.all(np.isfinite(lengths) & (lengths > 0)):
            raise ConfigError(f"length: must be positive, got {self.length!r}")
        if int(self.modes) != self.modes or self.modes < 1:
            raise ConfigError(f"modes: must be a positive integer, got {self.modes!r}")

    def covariance_model(self, dim: int):
        """The gstools covariance model in ``dim`` dimensions."""
        import gstools as gs

        cls = gs.Gaussian if self.model == "gaussian" else gs.Exponential
        length = self.length if np.ndim(self.length) == 0 else list(self.length)
        if np.ndim(length) and len(length) != dim:
            raise ConfigError(f"length: {len(length)} length scales for a {dim}-D domain")
        return cls(dim=dim, var=self.std ** 2, len_scale=length, angles=self.angle)

    def correlation(self, r: np.ndarray) -> np.ndarray:
        """The correlation at distance ``r`` (isotropic length), for checks."""
        h = np.asarray(r, dtype=float) / float(np.atleast_1d(self.length)[0])
        return np.exp(-np.pi / 4 * h ** 2) if self.model == "gaussian" else np.exp(-h)

    def sample(self, xy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One draw at the ``(n, d)`` positions ``xy``."""
        import gstools as gs

        xy = np.asarray(xy, dtype=float).reshape(len(xy), -1)
        d = xy.shape[1]
        if d not in self._srfs:  # built once: a call only redraws the modes from the seed
            self._srfs[d] = gs.SRF(self.covariance_model(d), mean=0.0, mode_no=int(self.modes))
        srf = self._srfs[d]
        return np.asarray(srf(tuple(xy.T), seed=_seed(rng)), dtype=float).reshape(-1)

    def conditioned(self, xy: np.ndarray, rng: np.random.Generator, positions: np.ndarray, values: np.ndarray,
                    error: float | np.ndarray = 0.0, mean: float | None = None) -> np.ndarray:
        """One draw conditioned on ``values`` observed at ``positions`` (kriging).

        The draw honours the observations (exactly when ``error`` is 0, else within their
        error standard deviations) and has the field's statistics far from them. ``mean``
        given: simple kriging about that mean; ``None``: ordinary kriging (mean estimated).
        """
        import gstools as gs

        xy = np.asarray(xy, dtype=float).reshape(len(xy), -1)
        positions = np.asarray(positions, dtype=float).reshape(len(positions), -1)
        model = self.covariance_model(xy.shape[1])
        err = np.broadcast_to(np.asarray(error, dtype=float) ** 2, (positions.shape[0],))
        common = dict(cond_pos=tuple(positions.T), cond_val=np.asarray(values, dtype=float), cond_err=err)
        krige = gs.krige.Ordinary(model, **common) if mean is None else gs.krige.Simple(model, mean=mean, **common)
        csrf = gs.CondSRF(krige, mode_no=int(self.modes))
        return np.asarray(csrf(tuple(xy.T), seed=_seed(rng)), dtype=float).reshape(-1)


def icesee_length(lower, upper, nx: int, ny: int) -> float:
    r"""ICESEE's default decorrelation length :math:`\sqrt{L_x L_y / (n_x n_y + 1)}`."""
    L = np.asarray(upper, dtype=float) - np.asarray(lower, dtype=float)
    return float(np.sqrt(L[0] * L[1] / (nx * ny + 1)))


@dataclass(frozen=True)
class PseudoRandomField:
    r"""Evensen's (2003) pseudo-random field on a 2-D domain.

    On a periodic grid of :math:`N_x \times N_y` points covering ``extension`` times the
    domain, the field is a sum of Fourier modes with uniformly random phases :math:`\phi`,

    .. math::
        q(\mathbf x) = \sigma \sqrt{\tfrac{2}{\sum_k a_k^2}}\, \sum_k a_k
        \cos(\mathbf k \cdot \mathbf x + 2\pi\phi_k), \qquad a_k = e^{-|\mathbf k|^2/s^2},

    computed with one FFT and interpolated (bilinearly) to the positions. It has mean 0 and
    variance :math:`\sigma^2`; :math:`s` is chosen (by root finding) so that the correlation
    at the decorrelation length :math:`r_h` is :math:`e^{-1}`. With ``length=None``,
    :math:`r_h = \sqrt{L_x L_y / (n_x n_y + 1)}` (the ICESEE paper's default, ``resolution``
    :math:`= (n_x, n_y)`).

    Parameters
    ----------
    std
        :math:`\sigma`.
    length
        :math:`r_h`, or ``None`` for ICESEE's default.
    resolution
        :math:`(n_x, n_y)` of ICESEE's default length.
    points_per_length
        Grid points per decorrelation length (the grid is at most 1024 points a side).
    extension
        The grid covers this many times the domain, so the periodicity does not correlate
        opposite edges.
    """

    std: float = 1.0
    length: float | None = None
    resolution: tuple[int, int] | None = None
    points_per_length: int = 4
    extension: float = 2.0
    _grids: dict = field(default_factory=dict, repr=False, compare=False)  # box -> grid and amplitudes

    def __post_init__(self):
        if not (np.isfinite(self.std) and self.std > 0):
            raise ConfigError(f"std: must be positive, got {self.std!r}")
        if self.length is None and self.resolution is None:
            raise ConfigError("length: give a decorrelation length, or resolution: [nx, ny] for ICESEE's default "
                              "sqrt(Lx Ly / (nx ny + 1))")
        if self.length is not None and not self.length > 0:
            raise ConfigError(f"length: must be positive, got {self.length!r}")
        if self.extension < 1 or self.points_per_length < 1:
            raise ConfigError("extension and points_per_length: must be at least 1")

    def decorrelation_length(self, lower, upper) -> float:
        return self.length if self.length is not None else icesee_length(lower, upper, *self.resolution)

    def grid(self, lower, upper):
        """The grid: ``(origin, spacing, shape)`` and the amplitudes :math:`a_k` (``shape``)."""
        lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
        rh = self.decorrelation_length(lower, upper)
        L = self.extension * (upper - lower)
        shape = np.minimum(1024, np.ceil(L / (rh / self.points_per_length))).astype(int)
        shape += shape % 2
        h = L / shape
        kx = 2 * np.pi * np.fft.fftfreq(shape[0], d=h[0])
        ky = 2 * np.pi * np.fft.fftfreq(shape[1], d=h[1])
        k2 = kx[:, None] ** 2 + ky[None, :] ** 2
        s = _spectral_width(k2, kx, rh)
        return lower, h, tuple(shape), np.exp(-k2 / s ** 2)

    def sample(self, xy: np.ndarray, rng: np.random.Generator, lower, upper) -> np.ndarray:
        """One draw at the ``(n, 2)`` positions ``xy`` of the box ``lower``-``upper`` (the
        whole domain's box, the same on every rank)."""
        from scipy.interpolate import RegularGridInterpolator

        box = (tuple(np.asarray(lower, dtype=float).tolist()), tuple(np.asarray(upper, dtype=float).tolist()))
        if box not in self._grids:
            self._grids[box] = self.grid(lower, upper)
        origin, h, shape, a = self._grids[box]
        phase = rng.uniform(size=shape)
        q = np.real(np.fft.ifft2(a * np.exp(2j * np.pi * phase))) * a.size  # sum_k a_k cos(k.x + 2 pi phi_k)
        q *= self.std * np.sqrt(2.0 / np.sum(a ** 2))
        axes = [origin[i] + h[i] * np.arange(shape[i]) for i in range(2)]
        return RegularGridInterpolator(axes, q)(np.asarray(xy, dtype=float)[:, :2])


def _spectral_width(k2: np.ndarray, kx: np.ndarray, rh: float) -> float:
    r"""The :math:`s` for which the correlation :math:`\sum a_k^2 \cos(k_x r_h) / \sum a_k^2 = e^{-1}`."""
    from scipy.optimize import brentq

    c = np.cos(kx[:, None] * rh) - np.exp(-1.0)

    def f(log_s):
        w = np.exp(-2 * k2 / np.exp(2 * log_s))
        return float(np.sum(w * c) / np.sum(w))

    grid = np.linspace(np.log(1e-3 / rh), np.log(1e3 / rh), 200)
    vals = [f(g) for g in grid]
    for g0, g1, v0, v1 in zip(grid[:-1], grid[1:], vals[:-1], vals[1:]):
        if v0 > 0 >= v1:
            return float(np.exp(brentq(f, g0, g1, xtol=1e-12)))
    raise ConfigError(f"length: no spectrum gives correlation 1/e at r_h = {rh!r} on this grid: "
                      "choose a length between the grid spacing and the domain size")
