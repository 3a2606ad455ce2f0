"""Lorenz-96 benchmark of the smoothers of Grudzien & Bocquet (2022): RMSE and cost against lag and shift.

Setting (the paper's Sect. 5 and Sakov & Oke 2008): n = 40, F = 8, RK4 with dt = 0.05, every
variable observed (H = I) with R = I every 0.05; N = 21 members drawn around the truth's
attractor point; every method sees the same truth and observations (a twin experiment with
one seed). Three parts:

1. **Lag sweep, SDA, shift 1**: EnKS, Lin-IEnKS, IEnKS and SIEnKS at ``--lags`` with the same
   multiplicative inflation (``--inflation``, applied where each method applies it: to the
   filter's forecast in the EnKS, to the window's analysis before the shift in the others).
   Printed: time-mean forecast, filter and smoother RMSE (times after the burn-in that have
   all three) and the ensemble simulations and forecast intervals per cycle.
   The finite-size variants (EnKS-N, Lin-IEnKS-N, IEnKS-N, SIEnKS-N: adaptive inflation, no
   tuning) at ``--adaptive-lags``.
2. **MDA shift sweep**: SIEnKS and IEnKS in MDA at lag ``--mda-lag`` for ``--mda-shifts``.
3. **DAPPER's iEnKS side by side** (Sakov & Oke 2008 setting, N = 20, shift 1): DAPPER 1.8.1's
   ``iEnKS('Sqrt')`` and fdassim's IEnKS on the same truth, observations and initial ensemble,
   with the same stopping rule (DAPPER stops when ``dw @ dw < wtol N``: fdassim's
   ``tol = sqrt(wtol N)``), inflation and iteration cap; RMSE with a +- standard error from 20
   batch means, and fdassim's wall time per cycle over DAPPER's (error-only statistics),
   measured in the same run. Needs DAPPER's venv (``bash benchmarks/setup_dapper.sh``);
   skipped with a note otherwise.

The figure (``--figure``, default ``benchmarks/smoothers_l96.png``) plots the lag sweep's RMSEs
and costs against the lag.

Usage::

    python benchmarks/smoothers_l96.py                     # the README's tables: about 1 h on 2 cores
    python benchmarks/smoothers_l96.py --cycles 600 --lags 1 4 --no-dapper    # a quick look

BLAS is pinned to one thread (``OPENBLAS_NUM_THREADS=1`` unless set), as in l96_vs_dapper.py.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from fdassim.analysis.base import ObsError  # noqa: E402
from fdassim.errors import FdassimError  # noqa: E402
from fdassim.inflation import Multiplicative  # noqa: E402
from fdassim.models.lorenz96 import Lorenz96  # noqa: E402
from fdassim.observations import Identity, Observations  # noqa: E402
from fdassim.smoothers import EnKS, IEnKS, LinIEnKS, SIEnKS, smooth  # noqa: E402
from fdassim.twin import simulate  # noqa: E402

from l96_vs_dapper import find_dapper_python, mean_and_error, run_dapper  # noqa: E402  (the script's directory)

HERE = Path(__file__).resolve().parent

METHODS = {
    "EnKS": lambda L, S, mda, fs=False: EnKS(lag=L, shift=S, finite_size=fs),
    "Lin-IEnKS": lambda L, S, mda, fs=False: LinIEnKS(lag=L, shift=S, mda=mda, finite_size=fs),
    "IEnKS": lambda L, S, mda, fs=False: IEnKS(lag=L, shift=S, mda=mda, finite_size=fs),
    "SIEnKS": lambda L, S, mda, fs=False: SIEnKS(lag=L, shift=S, mda=mda, finite_size=fs),
}


class Prescribed(Lorenz96):
    """Lorenz-96 whose initial draws are given states, taken in member order (then the truth).

    The ensemble draws its local members in member order; serially that is every member,
    then the truth, so a run can start from the ensemble and truth another package uses.
    """

    def __init__(self, states: list[np.ndarray]):
        super().__init__()
        object.__setattr__(self, "_states", list(states))

    def initial_state(self, state, rng):
        state["x"][...] = self._states.pop(0)


def run(smoother, cycles: int, N: int, seed: int, inflation: float | None, model=None, values=None):
    """A serial twin run; the result and the wall time."""
    from mpi4py import MPI

    from fdassim.ensemble import Ensemble

    ens = Ensemble(model or Lorenz96(), N, comm=MPI.COMM_SELF, truth=True)
    obs = Observations(Identity("x"), ObsError.from_std(1.0), values=values)
    t0 = time.perf_counter()
    res = smooth(ens, smoother, obs, 0.05 * np.arange(cycles + 1), seed=seed, progress=False,
                 inflation=None if inflation is None else Multiplicative(inflation))
    return res, time.perf_counter() - t0


def row(name, L, S, res, burn_in, seconds):
    s = res.summary(burn_in=burn_in)
    return dict(method=name, lag=L, shift=S, seconds=seconds, **s)


def print_table(title, rows):
    print(f"\n{title}\n")
    print("| method | lag | shift | forecast RMSE | filter RMSE | smoother RMSE | simulations / cycle "
          "| forecast intervals / cycle | iterations / cycle |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['lag']} | {r['shift']} | {r['rmse_forecast']:.3f} | {r['rmse_analysis']:.3f} "
              f"| {r['rmse_smoother']:.3f} | {r['simulations']:.2f} | {r['propagations']:.1f} "
              f"| {r['iterations']:.2f} |")
    sys.stdout.flush()


def lag_sweep(args, finite_size=False):
    rows = []
    for name in METHODS:
        for L in (args.adaptive_lags if finite_size else args.lags):
            label = f"{name}-N" if finite_size else name
            try:
                res, sec = run(METHODS[name](L, 1, False, finite_size), args.cycles, args.N, args.seed,
                               None if finite_size else args.inflation)
                rows.append(row(label, L, 1, res, args.burn_in, sec))
                print(f"  {label} lag {L}: {sec:.0f} s", file=sys.stderr, flush=True)
            except FdassimError as err:
                print(f"  {label} lag {L}: {err}", file=sys.stderr)
    return rows


def mda_sweep(args):
    rows = []
    for name in ("SIEnKS", "IEnKS"):
        for S in args.mda_shifts:
            if S >= args.mda_lag:
                continue
            res, sec = run(METHODS[name](args.mda_lag, S, True), args.cycles, args.N, args.seed, args.inflation)
            rows.append(row(f"{name}-MDA", args.mda_lag, S, res, args.burn_in, sec))
            print(f"  {name}-MDA shift {S}: {sec:.0f} s", file=sys.stderr, flush=True)
    return rows


def figure(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 4))
    for name, style in zip(METHODS, ("o-", "s--", "^-", "D-")):
        rs = [r for r in rows if r["method"] == name]
        lags = [r["lag"] for r in rs]
        for ax, key in zip(axes, ("rmse_forecast", "rmse_analysis", "rmse_smoother", "simulations")):
            ax.plot(lags, [r[key] for r in rs], style, label=name)
    for ax, title in zip(axes, ("forecast RMSE", "filter RMSE", "smoother RMSE", "ensemble simulations per cycle")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("lag L (shift 1, SDA)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle("Lorenz-96 (n = 40, F = 8), N = 21, H = I, R = I, every 0.05")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"\nfigure -> {path}")


def dapper_part(args):
    """fdassim's IEnKS and DAPPER's iEnKS on the same data (see the module docstring)."""
    python = find_dapper_python(args.dapper_python)
    model, N, K, B = Lorenz96(), 20, args.dapper_cycles, args.burn_in
    times = np.arange(K + 1) * model.dt
    H, R = np.eye(model.n), ObsError.diagonal(np.ones(model.n))
    truth, obs = simulate(model, model.initial_condition(args.seed), times, H, R, seed=args.seed + 1)
    rng = np.random.default_rng(args.seed + 2)
    E0 = truth[0][:, None] + math.sqrt(0.001) * rng.standard_normal((model.n, N))  # sakov2008's X0
    wtol, nIter, infl = 1e-5, 10, args.dapper_inflation
    runs = [dict(label=f"iEnKS Lag={L}", method="iEnKS", upd_a="Sqrt", N=N, Lag=L, nIter=nIter, wtol=wtol, infl=infl)
            for L in args.dapper_lags]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "l96.npz"
        np.savez(data, xx=truth, yy=obs, dt=model.dt, seed=args.seed, **{f"E0_{N}": E0.T})
        dapper = run_dapper(python, data, runs, Path(tmp))
    out = []
    for L, spec in zip(args.dapper_lags, runs):
        d = dapper[spec["label"]]
        smoother = IEnKS(lag=L, shift=1, tol=math.sqrt(wtol * N), max_iter=nIter)
        res, sec = run(smoother, K, N, args.seed, infl, model=Prescribed([*E0.T, truth[0]]), values=obs)
        # DAPPER's smoother statistic of obs time k is the state there, as ours; align on the
        # times after the burn-in that both have
        common = slice(B, K - L)
        out.append(dict(
            lag=L, N=N, infl=infl,
            fdassim={k: mean_and_error(getattr(res, f"rmse_{k}")[common])
                     for k in ("forecast", "analysis", "smoother")},
            dapper={"forecast": mean_and_error(np.asarray(d["rmse_f"])[common]),
                    "analysis": mean_and_error(np.asarray(d["rmse"])[common]),
                    "smoother": mean_and_error(np.asarray(d["rmse_s"])[common])},
            iterations=float(np.mean(res.iterations[1:])),
            ratio=sec / d["seconds_core"], ms=1e3 * sec / K))
        print(f"  IEnKS lag {L}: fdassim {sec:.0f} s, DAPPER {d['seconds_core']:.0f} s", file=sys.stderr, flush=True)
    print(f"\nIEnKS: fdassim against DAPPER {dapper['dapper_version']} iEnKS('Sqrt'), Lorenz-96 (Sakov & Oke 2008), "
          f"N = {N}, inflation {infl}, shift 1, nIter {nIter}, wtol {wtol}; {K} cycles, averages after {B}\n")
    print("| lag | forecast RMSE DAPPER / fdassim | filter RMSE DAPPER / fdassim | smoother RMSE DAPPER / fdassim "
          "| fdassim iterations | fdassim ms/cycle | time fdassim / DAPPER |")
    print("|---|---|---|---|---|---|---|")

    def pm(v):
        return f"{v[0]:.3f} ± {v[1]:.3f}"

    for r in out:
        cols = " | ".join(f"{pm(r['dapper'][k])} / {pm(r['fdassim'][k])}" for k in ("forecast", "analysis", "smoother"))
        print(f"| {r['lag']} | {cols} | {r['iterations']:.2f} | {r['ms']:.1f} | {r['ratio']:.2f} |")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cycles", type=int, default=2000, help="observation times per run (default 2000)")
    p.add_argument("--burn-in", type=int, default=400, help="times left out of the averages (default 400)")
    p.add_argument("--N", type=int, default=21, help="ensemble size of the sweeps (default 21, the paper's)")
    p.add_argument("--inflation", type=float, default=1.02, help="multiplicative inflation (default 1.02)")
    p.add_argument("--lags", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    p.add_argument("--adaptive-lags", type=int, nargs="*", default=[1, 4, 16], help="lags of the -N variants")
    p.add_argument("--mda-lag", type=int, default=8)
    p.add_argument("--mda-shifts", type=int, nargs="*", default=[1, 2, 4])
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--figure", type=Path, default=HERE / "smoothers_l96.png")
    p.add_argument("--no-dapper", action="store_true", help="skip the DAPPER comparison")
    p.add_argument("--dapper-python", help="DAPPER's interpreter (default: $DAPPER_PYTHON or the cached venv)")
    p.add_argument("--dapper-cycles", type=int, default=4000)
    p.add_argument("--dapper-lags", type=int, nargs="+", default=[1, 4, 10])
    p.add_argument("--dapper-inflation", type=float, default=1.02)
    p.add_argument("--json", type=Path, help="also write every number to this file")
    args = p.parse_args(argv)
    if not 0 <= args.burn_in < args.cycles - max(args.lags + [args.mda_lag]):
        p.error("--burn-in must leave smoother estimates to average: burn-in < cycles - lag")
    results = {}
    results["lag_sweep"] = lag_sweep(args)
    print_table(f"Lag sweep (SDA, shift 1): Lorenz-96, N = {args.N}, inflation {args.inflation}, {args.cycles} "
                f"cycles, averages after {args.burn_in}", results["lag_sweep"])
    figure(results["lag_sweep"], args.figure)
    if args.adaptive_lags:
        results["adaptive"] = lag_sweep(args, finite_size=True)
        print_table("Finite-size variants (adaptive inflation, no tuning), SDA, shift 1", results["adaptive"])
    if args.mda_shifts:
        results["mda_sweep"] = mda_sweep(args)
        print_table(f"MDA, lag {args.mda_lag}: shift sweep", results["mda_sweep"])
    if not args.no_dapper:
        results["dapper"] = dapper_part(args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
