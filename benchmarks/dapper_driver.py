"""Run DAPPER filters on a given Lorenz-96 truth and observations (run by l96_vs_dapper.py).

This script runs under DAPPER's own interpreter (see setup_dapper.sh), never fdassim's:

    python dapper_driver.py DATA.npz RUNS.json OUT.json

DATA.npz holds ``xx`` ((K+1, 40) truth, row 0 at t = 0), ``yy`` ((K, m) observations of
xx[1:] at ``obs_inds``, all 40 variables by default), ``dt``, ``seed`` and one initial
ensemble ``E0_<N>`` ((N, 40), DAPPER's layout) per
ensemble size. RUNS.json lists the runs, e.g. ``{"label": "Sqrt N=20", "method": "EnKF",
"upd_a": "Sqrt", "N": 20, "infl": 1.04}``, ``{"method": "EnKF_N", "N": 20, "Hess": true}`` or
``{"method": "iEnKS", "upd_a": "Sqrt", "N": 20, "Lag": 4, "nIter": 10, "wtol": 1e-5, "infl": 1.02}``
or ``{"method": "LETKF", "N": 20, "infl": 1.04, "loc_rad": 4}``.
OUT.json gets, per label, the per-cycle analysis RMSE and spread (and, for the iEnKS, the
forecast and smoother RMSE and spread) and the wall time of ``xp.assimilate`` with DAPPER's
default statistics and with ``rc.comps.error_only``.

DAPPER takes the truth and observations as arrays (``xp.assimilate(HMM, xx, yy)``), so both
packages see the same ones; the initial ensemble is handed over through ``X0 = RV(func=...)``.
"""

import json
import os
import sys
import time

os.environ.setdefault("DAPPER_LIVEPLOTTING", "0")

import numpy as np  # noqa: E402

import dapper  # noqa: E402
import dapper.da_methods as da  # noqa: E402
import dapper.mods as modelling  # noqa: E402
import dapper.tools.progressbar as progressbar  # noqa: E402
from dapper.mods.Lorenz96 import step  # noqa: E402
from dapper.tools.localization import nd_Id_localization  # noqa: E402
from dapper.tools.seeding import set_seed  # noqa: E402


def build_hmm(xx, dt, E0, obs_inds):
    """The sakov2008 setting (n = 40, F = 8, RK4, R = I, observations every step) observing ``obs_inds``."""
    Nx = xx.shape[1]
    K = xx.shape[0] - 1
    tseq = modelling.Chronology(dt=dt, dko=1, K=K, BurnIn=0)  # burn-in handled by the caller
    Dyn = modelling.Operator(M=Nx, model=step, noise=0)
    # every variable its own local analysis (batches of 1) for the LETKF, as in fdassim's default
    Obs = modelling.Operator(**modelling.partial_Id_Obs(Nx, obs_inds), noise=1,
                             localizer=nd_Id_localization((Nx,), (1,), obs_inds=obs_inds))
    X0 = modelling.RV(M=Nx, func=lambda N: E0[N].copy())
    return modelling.HiddenMarkovModel(Dyn, Obs, tseq, X0)


def make_method(run):
    if run["method"] == "EnKF":
        return da.EnKF(run["upd_a"], N=run["N"], infl=run.get("infl", 1.0))
    if run["method"] == "EnKF_N":
        return da.EnKF_N(N=run["N"], xN=run.get("xN", 1.0), Hess=run.get("Hess", False))
    if run["method"] == "iEnKS":
        return da.iEnKS(run["upd_a"], N=run["N"], Lag=run["Lag"], nIter=run["nIter"], wtol=run["wtol"],
                        infl=run.get("infl", 1.0))
    if run["method"] == "LETKF":
        return da.LETKF(N=run["N"], loc_rad=run["loc_rad"], infl=run.get("infl", 1.0))
    raise SystemExit(f"dapper_driver: unknown method {run['method']!r}")


def assimilate(HMM, xx, yy, run, seed, error_only):
    dapper.rc.comps.error_only = error_only
    set_seed(seed)
    xp = make_method(run)
    t0 = time.perf_counter()
    xp.assimilate(HMM, xx, yy, liveplots=False)
    return xp, time.perf_counter() - t0


def main(data_path, runs_path, out_path):
    data = np.load(data_path)
    xx, yy_obs, dt, seed = data["xx"], data["yy"], float(data["dt"]), int(data["seed"])
    # DAPPER's Chronology with dko=1 has Ko + 1 = K observation times, at k = 1..K: as ours
    E0 = {int(k[3:]): data[k] for k in data.files if k.startswith("E0_")}
    obs_inds = data["obs_inds"] if "obs_inds" in data.files else np.arange(xx.shape[1])
    HMM = build_hmm(xx, dt, E0, obs_inds)
    progressbar.disable_progbar = True
    dapper.rc.comps.max_spectral = 0  # no per-cycle eigen-decomposition of the ensemble covariance
    out = {"dapper_version": dapper.__version__}
    for run in json.load(open(runs_path)):
        try:
            xp, seconds = assimilate(HMM, xx, yy_obs, run, seed, error_only=False)
        except Exception as err:  # a diverged filter: report it, go on with the others
            print(f"dapper {run['label']}: {err}", file=sys.stderr)
            out[run["label"]] = dict(rmse=[float("nan")] * len(yy_obs), spread=[float("nan")] * len(yy_obs),
                                     seconds=float("nan"), seconds_core=float("nan"), rmse_core=[])
            continue
        rmse = np.asarray(xp.stats.err.rms.a)
        spread = np.asarray(xp.stats.spread.rms.a)
        xp_core, seconds_core = assimilate(HMM, xx, yy_obs, run, seed, error_only=True)
        out[run["label"]] = dict(rmse=rmse.tolist(), spread=spread.tolist(), seconds=seconds,
                                 seconds_core=seconds_core,
                                 rmse_core=np.asarray(xp_core.stats.err.rms.a).tolist())
        if run["method"] == "iEnKS":  # forecast and smoother statistics too
            for kind in ("f", "s"):
                out[run["label"]][f"rmse_{kind}"] = np.asarray(getattr(xp.stats.err.rms, kind)).tolist()
                out[run["label"]][f"spread_{kind}"] = np.asarray(getattr(xp.stats.spread.rms, kind)).tolist()
        print(f"dapper {run['label']}: {seconds:.1f} s", file=sys.stderr, flush=True)
    with open(out_path, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit("usage: dapper_driver.py DATA.npz RUNS.json OUT.json")
    main(*sys.argv[1:])
