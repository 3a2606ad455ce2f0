"""Figures of a twin experiment on a mesh: error maps, time series at a point, errors in time.

Pure matplotlib (Agg) on arrays, so they work from a run's store (its coordinates, truth,
ensemble means and members) or from anything else: values of a field at node positions
``(n, 2)``, one row per time.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

__all__ = ["error_maps", "point_series", "error_series"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def error_maps(path: str, xy: np.ndarray, errors: Mapping[str, Sequence[np.ndarray]], years: Sequence[float],
               label: str, vmax: float | None = None) -> None:
    """A grid of maps of absolute errors: one row per run (``errors`` keys), one column per year.

    Parameters
    ----------
    path
        Where to save the figure (PNG).
    xy
        ``(n, 2)`` node positions (m).
    errors
        ``{run name: [error at each of years]}``, each ``(n,)``.
    years
        The years of the columns.
    label
        What the colour shows (with units).
    vmax
        Top of the colour scale (default: the largest error shown).
    """
    import matplotlib.tri as mtri

    plt = _pyplot()
    tri = mtri.Triangulation(xy[:, 0] / 1e3, xy[:, 1] / 1e3)
    vmax = vmax or max(float(np.abs(e).max()) for es in errors.values() for e in es)
    rows, cols = len(errors), len(years)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 1.6 * rows + 0.8), squeeze=False, sharex=True,
                             sharey=True, constrained_layout=True)
    levels = np.linspace(0, vmax, 21)
    for r, (name, es) in enumerate(errors.items()):
        for c, (year, e) in enumerate(zip(years, es)):
            ax = axes[r, c]
            im = ax.tricontourf(tri, np.clip(np.abs(e), 0, vmax), levels=levels, cmap="magma_r")
            ax.set_title(f"{name}, year {year:g}", fontsize=9)
            ax.set_aspect("equal")
            if r == rows - 1:
                ax.set_xlabel("x (km)")
            if c == 0:
                ax.set_ylabel("y (km)")
    fig.colorbar(im, ax=axes, label=label, shrink=0.8)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def point_series(path: str, t: np.ndarray, panels: Sequence[dict], obs_times: Sequence[float] = (),
                 title: str = "") -> None:
    """Time series at one point: truth, ensemble mean with a two-standard-deviation band, free run.

    Parameters
    ----------
    path
        Where to save the figure (PNG).
    t
        ``(T,)`` times (years).
    panels
        One dict per panel with ``label`` and ``(T,)`` arrays ``truth``, ``mean``, ``std``
        and optionally ``free``.
    obs_times
        Times of the analyses, marked by vertical lines.
    title
        Figure title.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 2.3 * len(panels)), sharex=True, constrained_layout=True)
    for ax, p in zip(np.atleast_1d(axes), panels):
        for to in obs_times:
            ax.axvline(to, color="0.85", lw=0.8, zorder=0)
        ax.fill_between(t, p["mean"] - 2 * p["std"], p["mean"] + 2 * p["std"], color="C0", alpha=0.25,
                        label="ensemble ±2σ")
        ax.plot(t, p["mean"], color="C0", label="ensemble mean")
        if p.get("free") is not None:
            ax.plot(t, p["free"], color="C3", ls="--", label="free run")
        ax.plot(t, p["truth"], color="k", lw=1.2, label="truth")
        ax.set_ylabel(p["label"])
    ax.set_xlabel("year")
    np.atleast_1d(axes)[0].legend(fontsize=8, ncol=4, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def error_series(path: str, t: np.ndarray, series: Mapping[str, Mapping[str, np.ndarray]],
                 obs_times: Sequence[float] = ()) -> None:
    """Root-mean-square errors against time, one panel per field, one line per run.

    ``series`` is ``{field label: {run name: (T,) errors}}``.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(series), figsize=(4.2 * len(series), 3.2), constrained_layout=True)
    for ax, (label, runs) in zip(np.atleast_1d(axes), series.items()):
        for to in obs_times:
            ax.axvline(to, color="0.85", lw=0.8, zorder=0)
        for k, (name, e) in enumerate(runs.items()):
            ax.semilogy(t, np.maximum(e, 1e-12), color=f"C{k}", ls="--" if "free" in name else "-", label=name)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("year")
        ax.grid(True, which="both", alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("RMSE")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.savefig(path, dpi=130)
    plt.close(fig)
