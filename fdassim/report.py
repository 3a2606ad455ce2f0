"""``fdassim report run.h5``: the RMSE/spread table and figures of a stored run."""

from __future__ import annotations

import json
import os

import numpy as np

from .divergence import ADVICE
from .errors import ConfigError, StoreNotFound
from . import store_layout as layout
from .io import FORMAT_VERSION, read_status
from .lock import describe_holder, read_holder
from .observations.store import CYCLE as OBS_CYCLE, N_OBS
from .smoothers import report as smoother_report

__all__ = ["report"]


def _read(path: str) -> dict:
    import h5py

    if not os.path.isfile(path):
        raise StoreNotFound(f"no run store {path!r}: check the path (output.path of the run)")
    try:
        h5 = h5py.File(path, "r", locking=False)  # readable while a run writes it
    except OSError as exc:
        raise ConfigError(f"{path!r} is not an HDF5 run store: {exc}") from None
    with h5:
        if h5.attrs.get("format_version") != FORMAT_VERSION:
            raise ConfigError(f"{path!r} has store format {h5.attrs.get('format_version')!r}, "
                              f"this fdassim reads {FORMAT_VERSION}")
        k = int(h5[layout.COMPLETED][()])
        out = {name: h5[layout.diagnostic(name)][:k] for name in layout.DIAGNOSTICS}
        out["times"] = h5[layout.TIMES][1:k + 1]
        out["timing"] = h5[layout.TIMING][:k]
        out["timing_columns"] = json.loads(h5[layout.TIMING].attrs["columns"])
        out["init"] = float(h5[layout.INIT][()])
        out["bytes"] = h5[layout.BYTES][:k]
        out["completed"], out["cycles"] = k, int(h5.attrs["n_cycles"])
        out["members"] = int(h5.attrs["n_members"])
        out["every"] = int(h5.attrs["ensembles_every"])
        out["kept"] = h5[layout.ENSEMBLE_CYCLE].size if layout.ENSEMBLE_CYCLE in h5 else None
        out["status"] = read_status(h5)
        out["divergence"] = int(h5[layout.DIVERGENCE][()])
        out["fields"] = {}
        out["smoother"] = smoother_report.read(h5, k)
        out["observations"] = _observation_counts(h5, k)
        if h5.attrs["has_truth"]:
            for name in json.loads(h5.attrs["fields"]):
                t = h5[layout.truth(name)][:k]
                out["fields"][name] = {kind: np.sqrt(np.mean((h5[layout.mean(kind, name)][:k] - t) ** 2, axis=1))
                                       for kind in layout.KINDS}
    return out


def _status(path: str, d: dict) -> str:
    """The stored status, with what the lock says about a run that is not finished."""
    status = d["status"]
    if status != "running":
        return status
    holder = read_holder(path)
    if holder is not None:
        return f"running ({describe_holder(holder)})"
    advice = "continue it with fdassim run --restart" if d["smoother"] is None else smoother_report.RESTART
    return (f"interrupted after {d['completed']} of {d['cycles']} cycles (the run stopped without finishing: "
            f"killed?); {advice}")


def _observation_counts(h5, k: int) -> list[str]:
    """Lines on the observations: per quantity, times observed, values, QC rejections."""
    n_obs = h5[N_OBS][:k]
    lines = [f"observations: {int(n_obs.sum())} assimilated; {int(np.sum(n_obs == 0))} of {k} cycles "
             "without any (no analysis)"]
    for name in json.loads(h5[layout.OBSERVATIONS].attrs["quantities"]):
        g = h5[layout.observation(name)]
        done = g[OBS_CYCLE][:] < k
        m = g["values"].shape[1]
        rej = g["n_rejected"][:][done]
        lines.append(f"  {name:12s} {int(done.sum())} times x {m} values; rejected by QC: {int(rej.sum())}"
                     + (f" (at most {int(rej.max())} in one cycle)" if rej.size and rej.max() > 0 else ""))
    return lines


def report(path: str, burn_in: int | None = None, figures: bool = True) -> str:
    """Summarise the run stored at ``path``; write figures beside it; return the text.

    Parameters
    ----------
    burn_in
        Cycles left out of the time averages (default: a tenth of the completed cycles, at
        most 100).
    figures
        Write ``<run>-rmse.png`` (RMSE and spread against time).
    """
    d = _read(path)
    k = d["completed"]
    status = _status(path, d)
    if k == 0:
        return f"{path}: no completed cycle yet (0 of {d['cycles']})\nstatus: {status}"
    if burn_in is not None and not 0 <= burn_in < k:
        raise ConfigError(f"report --burn-in: {burn_in} leaves no cycle to average: {path!r} holds {k} completed "
                          f"cycles; give 0 to {k - 1}")
    b = min(k // 10, 100) if burn_in is None else burn_in
    lines = [f"{path}: {k} of {d['cycles']} cycles, N = {d['members']}, averages after {b} cycles "
             f"(the first {b} left out as burn-in)", f"status: {status}"]
    if d["divergence"] >= 0:
        lines.append(f"warning: the filter diverged at cycle {d['divergence']} ({ADVICE})")
    lines.append(f"{'':10s} {'RMSE':>10s} {'spread':>10s}")
    for kind in ("forecast", "analysis"):
        lines.append(f"{kind:10s} {np.nanmean(d['rmse_' + kind][b:]):10.4f} {np.nanmean(d['spread_' + kind][b:]):10.4f}")
    if d["smoother"] is not None:
        lines += smoother_report.lines(d["smoother"], b)
    if d["fields"]:
        lines.append("RMSE by field (time average; last cycle):")
        for name, r in d["fields"].items():
            lines.append(f"  {name:12s} forecast {np.mean(r['forecast'][b:]):.4g}; "
                         f"analysis {np.mean(r['analysis'][b:]):.4g}; last analysis {r['analysis'][-1]:.4g}")
    lines.extend(d["observations"])
    t = d["timing"]
    lines.append("time: init {:.2f} s, ".format(d["init"]) +
                 ", ".join(f"{c} {s:.2f} s" for c, s in zip(d["timing_columns"], np.nansum(t, axis=0))))
    lines.append(_written(d["bytes"]))
    if d["every"] != 1:
        lines.append("members: not stored (means and spreads only; output.store_ensembles: false)" if d["every"] == 0
                     else f"members: stored at {d['kept']} of {d['cycles']} cycles (output.ensembles_every: "
                          f"{d['every']}); means and spreads at every cycle")
    if figures:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 3.5))
        for kind, style in (("forecast", "--"), ("analysis", "-")):
            ax.plot(d["times"], d["rmse_" + kind], style, label=f"RMSE {kind}")
            ax.plot(d["times"], d["spread_" + kind], style, alpha=0.6, label=f"spread {kind}")
        if d["smoother"] is not None:
            smoother_report.plot(ax, d["times"], d["smoother"])
        ax.set_xlabel("time")
        ax.set_yscale("log")
        ax.legend(ncol=2, fontsize=8)
        ax.set_title(os.path.basename(path))
        fig.tight_layout()
        png = os.path.splitext(path)[0] + "-rmse.png"
        fig.savefig(png, dpi=120)
        plt.close(fig)
        lines.append(f"figure: {png}")
    return "\n".join(lines)


def _written(nbytes: np.ndarray) -> str:
    """``written: 1.2 MiB per cycle (mean; 0.9-3.1 MiB), 12 MiB in all``."""
    def mib(b):
        return f"{b / 2 ** 20:.3g} MiB"

    return (f"written: {mib(nbytes.mean())} per cycle (mean; {mib(nbytes.min())}-{mib(nbytes.max())}, the restart "
            f"state at each commit), {mib(nbytes.sum())} in all")
