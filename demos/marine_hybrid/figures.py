"""Figures of the hybrid assimilation-inversion demo (see ``hybrid.py``): error maps of the
friction and the bed at the start and the end, and RMSE against the years."""

from __future__ import annotations

import os

import numpy as np


def make_figures(output: str, start: dict, rows: list, maps: dict, sites, survey_years) -> list[str]:
    """Write ``maps.png`` and ``rmse.png`` to ``output``; return their paths.

    ``start`` and ``rows`` are the errors of :class:`Tracker` (before the first forecast, and
    after each analysis); ``maps`` its snapshots ``"start"`` and ``"end"``; ``sites`` the
    flight lines' positions (or ``None``) and ``survey_years`` when they were flown.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.tri import Triangulation

    os.makedirs(output, exist_ok=True)
    paths = [os.path.join(output, "maps.png"), os.path.join(output, "rmse.png")]

    fig, axes = plt.subplots(2, 2, figsize=(11, 5.2), sharex=True, sharey=True, constrained_layout=True)
    for col, when in enumerate(("start", "end")):
        m = maps[when]
        tri = Triangulation(m["xy"][:, 0] / 1e3, m["xy"][:, 1] / 1e3)
        true, mean = m["friction"]
        rel = np.where(m["grounded"], 100 * (mean - true) / true, np.nan)
        ax = axes[0, col]
        im = ax.tripcolor(tri, np.nan_to_num(rel), shading="gouraud", cmap="RdBu_r", vmin=-50, vmax=50)
        ax.tricontour(tri, m["grounded"].astype(float), levels=[0.5], colors="k", linewidths=1)
        ax.set_title(f"friction error of the mean, % ({when}; grounding line black)")
        if col == 1:
            fig.colorbar(im, ax=axes[0, :], shrink=0.9, label="%")
        true, mean = m["bed"]
        ax = axes[1, col]
        im = ax.tripcolor(tri, mean - true, shading="gouraud", cmap="RdBu_r", vmin=-80, vmax=80)
        if sites is not None:
            ax.plot(sites[:, 0] / 1e3, sites[:, 1] / 1e3, "k.", ms=1.5)
        ax.set_title(f"bed error of the mean, m ({when}; flight lines dotted)")
        ax.set_xlabel("x (km)")
        if col == 1:
            fig.colorbar(im, ax=axes[1, :], shrink=0.9, label="m")
    for ax in axes[:, 0]:
        ax.set_ylabel("y (km)")
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)

    years = [0.0] + [r["year"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), constrained_layout=True)
    ax = axes[0]
    ax.plot(years, [start["friction"]] + [r["friction_after"] for r in rows], "o-", label="after the inversion")
    ax.plot(years[1:], [r["friction"] for r in rows], "x", color="0.5", label="after the analysis, before")
    ax.set_title("friction RMSE (grounded ice)")
    ax.legend(fontsize=8)
    for ax, key, title in ((axes[1], "bed", "bed RMSE (m)"), (axes[2], "thickness", "thickness RMSE (m)")):
        ax.plot(years, [start[key]] + [r[key] for r in rows], "o-")
        ax.set_title(title)
    for i, year in enumerate(survey_years):
        axes[1].axvline(year, color="0.6", ls=":", label=None if i else "flight lines")
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.set_xlabel("year")
        ax.set_ylim(bottom=0)
    fig.savefig(paths[1], dpi=110)
    plt.close(fig)
    return paths
