"""Lorenz-96 benchmark: fdassim against DAPPER on the same truth, observations and initial ensembles.

The setting is DAPPER's ``sakov2008`` (Sakov & Oke 2008): n = 40, F = 8, RK4 with
dt = 0.05, every variable observed (H = I) with unit error variance (R = I) at every step.
fdassim makes the truth, the observations and the initial ensembles; DAPPER receives them
through a .npz file and runs in its own interpreter (``benchmarks/dapper_driver.py``,
DAPPER 1.8.1 needs Python >= 3.12), so the two packages see identical data. Their random
draws (perturbed observations) differ, so RMSEs agree only up to statistical noise: the
table gives the time-mean with a +- standard error from batch means.

Multiplicative inflation is applied to the analysis in both packages (DAPPER's ``infl``,
fdassim's ``Multiplicative(lam, stage=Stage.POSTERIOR)``). The time per cycle includes the
forecast and the statistics of each package; DAPPER's default statistics (CRPS, skewness,
kurtosis, rank histogram, ...) cost more than fdassim's RMSE and spread, so the ratio is also
given against DAPPER run with ``rc.comps.error_only`` (error statistics only).

BLAS is pinned to one thread in both processes (``OPENBLAS_NUM_THREADS=1`` unless already
set): on a small machine under load, multithreaded BLAS on 40 x 40 matrices can be 10x
slower and would make the timings meaningless.

Usage::

    bash benchmarks/setup_dapper.sh            # once: DAPPER's own venv, outside the tree
    python benchmarks/l96_vs_dapper.py --dapper-python ~/.cache/fdassim/dapper-venv/bin/python

or set ``DAPPER_PYTHON``. Nothing is installed by this script.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from fdassim.analysis.base import ObsError  # noqa: E402
from fdassim.analysis.denkf import DEnKF  # noqa: E402
from fdassim.analysis.enkf import EnKF, InnovationCovariance  # noqa: E402
from fdassim.analysis.enkf_n import EnKFN  # noqa: E402
from fdassim.analysis.ensrf import EnSRF  # noqa: E402
from fdassim.analysis.etkf import ETKF  # noqa: E402
from fdassim.analysis.lenkf import LocalizedEnKF  # noqa: E402
from fdassim.analysis.letkf import LETKF  # noqa: E402
from fdassim.analysis.localization import Localization  # noqa: E402
from fdassim.errors import FdassimError  # noqa: E402
from fdassim.inflation import Inflation, Multiplicative, Stage  # noqa: E402
from fdassim.models.lorenz96 import Lorenz96  # noqa: E402
from fdassim.twin import run_filter, simulate  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_VENV = Path(os.environ.get("FDASSIM_CACHE", Path.home() / ".cache" / "fdassim")) / "dapper-venv"

#: Inflation per method and ensemble size (Sakov & Oke 2008, Table 1; Bocquet et al. 2015,
#: Fig. 3, as listed in DAPPER's sakov2008 settings). Sizes in between take the nearest.
#: The stochastic EnKF at N=20 loses the truth with 1.10 in both packages (RMSE 3.3), hence 1.20.
INFLATION = {
    "PertObs": {20: 1.20, 40: 1.06},
    "Sqrt": {20: 1.04, 40: 1.02},
    "Serial": {20: 1.04, 40: 1.02},
    "DEnKF": {20: 1.02, 40: 1.01},
    "LETKF": {20: 1.04, 40: 1.02},
}
#: DAPPER's localization radius of the LETKF; its Gaspari-Cohn half-width is 1.82 times it
#: (``dist2coeff``: the taper is exp(-1/2) at loc_rad), the half-width fdassim's radius is
LOC_RAD = 4.0
GC_HALF_WIDTH = 1.82


@dataclass(frozen=True)
class Case:
    """One table row: a DAPPER run and the fdassim scheme that corresponds to it."""

    method: str  # DAPPER's name
    fdassim: str  # fdassim's name
    N: int
    make: Callable[[], object]  # -> fdassim scheme

    @property
    def infl(self) -> float:
        if self.method not in INFLATION:
            return 1.0
        table = INFLATION[self.method]
        return table[min(table, key=lambda n: abs(n - self.N))]

    @property
    def dapper_run(self) -> dict:
        label = f"{self.method} N={self.N}"
        if self.method == "LETKF":
            return dict(label=label, method="LETKF", N=self.N, infl=self.infl, loc_rad=LOC_RAD)
        if self.method == "EnKF_N":
            # fdassim's EnKFN transforms with the exact Hessian: DAPPER's Hess=True (its default
            # is an approximate Hessian, which gives a slightly smaller analysis spread)
            return dict(label=label, method="EnKF_N", N=self.N, Hess=True)
        return dict(label=label, method="EnKF", upd_a=self.method, N=self.N, infl=self.infl)

    @property
    def inflation(self) -> Inflation:
        return Inflation() if self.infl == 1.0 else Multiplicative(self.infl, stage=Stage.POSTERIOR)


def cases(sizes) -> list[Case]:
    out = []
    for N in sizes:
        out += [
            Case("PertObs", "EnKF", N, EnKF),  # default: the exact R in the gain, as DAPPER's PertObs
            Case("PertObs", "EnKF(ensemble)", N, lambda: EnKF(covariance=InnovationCovariance.ENSEMBLE)),
            Case("PertObs", "LocalizedEnKF(inf)", N, lambda: LocalizedEnKF(Localization(math.inf))),
            Case("Sqrt", "ETKF", N, ETKF),
            Case("Serial", "EnSRF", N, EnSRF),
            Case("DEnKF", "DEnKF", N, DEnKF),
            Case("EnKF_N", "EnKFN", N, EnKFN),  # DAPPER EnKF_N(Hess=True)
            Case("LETKF", "LETKF", N, lambda: LETKF(Localization(GC_HALF_WIDTH * LOC_RAD))),
        ]
    return out


def mean_and_error(series: np.ndarray, nbatch: int = 20) -> tuple[float, float]:
    """Time mean and its standard error from ``nbatch`` batch means (autocorrelation-robust)."""
    series = np.asarray(series, dtype=float)
    if not np.all(np.isfinite(series)):
        return math.nan, math.nan
    batches = np.array_split(series, nbatch)
    means = np.array([b.mean() for b in batches])
    return float(series.mean()), float(means.std(ddof=1) / math.sqrt(nbatch))


def find_dapper_python(option: str | None) -> str:
    """The DAPPER interpreter from the option, ``DAPPER_PYTHON`` or the default venv; exit if unusable."""
    candidate = option or os.environ.get("DAPPER_PYTHON")
    if not candidate and (DEFAULT_VENV / "bin" / "python").exists():
        candidate = str(DEFAULT_VENV / "bin" / "python")
    fix = ("create DAPPER's venv with `bash benchmarks/setup_dapper.sh`, then pass "
           "--dapper-python PATH/TO/dapper-venv/bin/python or set DAPPER_PYTHON")
    if not candidate:
        sys.exit(f"l96_vs_dapper: no DAPPER interpreter given and none at {DEFAULT_VENV}: {fix}")
    try:
        probe = subprocess.run([candidate, "-c", "import dapper; print(dapper.__version__)"],
                               capture_output=True, text=True, env={**os.environ, "DAPPER_LIVEPLOTTING": "0"})
    except OSError as err:
        sys.exit(f"l96_vs_dapper: cannot run the DAPPER interpreter {candidate!r} ({err.strerror}): {fix}")
    if probe.returncode != 0:
        sys.exit(f"l96_vs_dapper: {candidate!r} cannot import dapper ({probe.stderr.strip()[-200:]}): {fix}")
    return candidate


def run_dapper(python: str, data: Path, runs: list[dict], workdir: Path) -> dict:
    runs_path, out_path = workdir / "runs.json", workdir / "dapper_out.json"
    runs_path.write_text(json.dumps(runs))
    subprocess.run([python, str(HERE / "dapper_driver.py"), str(data), str(runs_path), str(out_path)],
                   check=True, env={**os.environ, "DAPPER_LIVEPLOTTING": "0"})
    return json.loads(out_path.read_text())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dapper-python", help="DAPPER's interpreter (default: $DAPPER_PYTHON, "
                        f"else {DEFAULT_VENV}/bin/python)")
    parser.add_argument("--cycles", type=int, default=10000, help="assimilation cycles (default 10000, T = 500)")
    parser.add_argument("--burn-in", type=int, default=400, help="cycles left out of the averages (default 400)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 40], help="ensemble sizes")
    parser.add_argument("--seed", type=int, default=3, help="seed of truth, observations, ensembles and analyses")
    parser.add_argument("--every", type=int, default=1,
                        help="observe every k-th variable (default 1: all, the sakov2008 setting)")
    parser.add_argument("--methods", nargs="+", help="only these DAPPER methods (e.g. LETKF Sqrt; default all)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    if not 0 <= args.burn_in < args.cycles:
        parser.error(f"--burn-in must be in [0, --cycles), got {args.burn_in}")
    dapper_python = find_dapper_python(args.dapper_python)

    model = Lorenz96()  # n = 40, F = 8, dt = 0.05
    K, B = args.cycles, args.burn_in
    times = np.arange(K + 1) * model.dt
    obs_inds = np.arange(0, model.n, args.every)
    H, R = np.eye(model.n)[obs_inds], ObsError.diagonal(np.ones(obs_inds.size))
    truth, obs = simulate(model, model.initial_condition(args.seed), times, H, R, seed=args.seed + 1)
    rng = np.random.default_rng(args.seed + 2)
    # initial ensembles as DAPPER's sakov2008 X0 = GaussRV(C=0.001), centred on the true state
    X0 = {N: truth[0][:, None] + math.sqrt(0.001) * rng.standard_normal((model.n, N)) for N in args.sizes}
    table = [c for c in cases(args.sizes) if not args.methods or c.method in args.methods]

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "l96.npz"
        np.savez(data, xx=truth, yy=obs, dt=model.dt, seed=args.seed, obs_inds=obs_inds,
                 **{f"E0_{N}": X.T for N, X in X0.items()})
        runs = list({c.dapper_run["label"]: c.dapper_run for c in table}.values())
        dapper = run_dapper(dapper_python, data, runs, Path(tmp))

    rows = []
    for case in table:
        d = dapper[case.dapper_run["label"]]
        t0 = time.perf_counter()
        try:
            res = run_filter(model, case.make(), case.inflation, X0[case.N], obs, H, R, args.seed,
                             times=times, truth=truth, burn_in=B, coords=model.coords,
                             obs_coords=model.coords[obs_inds])
            fd_rmse, fd_spread = res.rmse_a[B:], res.spread_a[B:]
        except (FdassimError, np.linalg.LinAlgError, FloatingPointError) as err:
            print(f"fdassim {case.fdassim} N={case.N}: {err}", file=sys.stderr)
            fd_rmse = fd_spread = np.array([math.nan])
        fd_seconds = time.perf_counter() - t0
        print(f"fdassim {case.fdassim} N={case.N}: {fd_seconds:.1f} s", file=sys.stderr, flush=True)
        rows.append(dict(
            method=f"{case.method} / {case.fdassim}", N=case.N, infl=case.infl,
            rmse_dapper=mean_and_error(np.asarray(d["rmse"])[B:]),
            rmse_fdassim=mean_and_error(fd_rmse),
            spread_dapper=mean_and_error(np.asarray(d["spread"])[B:])[0],
            spread_fdassim=mean_and_error(fd_spread)[0],
            ms_fdassim=1e3 * fd_seconds / K,
            ratio_stats=fd_seconds / d["seconds"],
            ratio_core=fd_seconds / d["seconds_core"],
        ))

    def pm(v):
        return "diverged" if math.isnan(v[0]) else f"{v[0]:.3f} ± {v[1]:.3f}"

    observed = "H=I" if args.every == 1 else f"x_0, x_{args.every}, x_{2 * args.every}, ... observed"
    print(f"\nLorenz-96 (n=40, F=8, dt=0.05, {observed}, R=I), {K} cycles, averages after {B}; "
          f"DAPPER {dapper['dapper_version']}, seed {args.seed}\n")
    print("| DAPPER / fdassim | N | infl | RMSE DAPPER | RMSE fdassim | spread DAPPER | spread fdassim "
          "| fdassim ms/cycle | time fdassim/DAPPER (error-only stats) | (default stats) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        failed = math.isnan(r["rmse_fdassim"][0])
        timing = "| - | - | - |" if failed else \
            f"| {r['ms_fdassim']:.2f} | {r['ratio_core']:.2f} | {r['ratio_stats']:.2f} |"
        spread = "-" if failed else f"{r['spread_fdassim']:.3f}"
        print(f"| {r['method']} | {r['N']} | {r['infl']:g} | {pm(r['rmse_dapper'])} | {pm(r['rmse_fdassim'])} "
              f"| {r['spread_dapper']:.3f} | {spread} {timing}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
