"""The twin experiment of the ICESEE paper (section 4.1): Icepack's synthetic ice stream.

A 5 km x 1.2 km ice stream (12 x 8 cells, degree 2: 425 values per field) runs for 100
years. The truth starts from Icepack's tutorial state with accumulation 1.7 - 2.7 x/Lx m/yr;
40 members start from a wrong state (accumulation 0.17 - 0.27 x/Lx, thickness lowered by a
350 m bump around the reference point (1.25 km, 0.3 km)) plus correlated perturbations. The
state is [h, u, v] with the accumulation (smb) a parameter. Thickness (sigma 5 m), velocity
(0.5 and 0.1 m/yr) and smb (0.1 m/yr) are observed at every node at years 4, 12, ..., 76;
the stochastic EnKF, localized (Gaspari-Cohn, 500 m half-width), assimilates them, with
multiplicative inflation 1.12 on the smb only (``--scheme enkf`` for the global EnKF, or any
other scheme). A free run (the wrong state, no assimilation) is the reference.

Ours, not ICESEE's: after each yearly forecast, model noise (:class:`fdassim.ModelNoise`,
white in time) is added to the members' thickness (10 m) and smb (0.05 m/yr), drawn from
Evensen's pseudo-random fields with a 1 km decorrelation length; the truth gets none.
Without it the members' spread (0.3-0.6 m in thickness, 0.05 m/yr in speed after the first
forecasts) is hundreds of times smaller than their error and made of 100 m-scale patterns
that cannot represent the 350 m bump nor the smb's trend, so the analyses explain the
thickness deficit by the smb and the smb drifts away (see the README). The localization is
ours too: 40 members cannot fit the 1,700 observations of a cycle globally, and the global
EnKF leaves the smb 0.65-0.9 m/yr off. ``--noise 0 0 --scheme enkf`` runs the issue's
configuration.

Figures and a text summary land in the output folder (default ``demo-output/icestream_twin``).

    python demos/icestream_twin/twin.py                  # the full experiment
    python demos/icestream_twin/twin.py --short          # the first 25 years (make demo)
    mpiexec -n 2 python demos/icestream_twin/twin.py     # the same result on 2 ranks
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass

import numpy as np

import fdassim

REFERENCE = (1250.0, 300.0)  # the reference point (m)
SCHEMES = {"enkf": "EnKF", "etkf": "ETKF", "ensrf": "EnSRF", "denkf": "DEnKF", "enkf_n": "EnKFN",
           "lenkf": "LocalizedEnKF", "letkf": "LETKF"}
LOCALIZED = ("lenkf", "letkf")


@dataclass(frozen=True)
class Config:
    """The experiment's settings (ICESEE section 4.1 by default)."""

    years: int = 100
    members: int = 40
    first_obs: int = 4
    obs_every: int = 8
    last_obs: int = 76
    scheme: str = "lenkf"
    radius: float = 500.0  # localization radius (m) of lenkf and letkf
    finite_size: bool = False  # letkf with the finite-size (EnKF-N) adaptive inflation in each local analysis
    smb_inflation: float = 1.12
    rtps: float = 0.0  # relaxation to prior spread of every row (0: none)
    noise: tuple[float, float] = (10.0, 0.05)  # AR(1) model noise std per year: thickness (m), smb (m/yr)
    noise_length: tuple[float, float] = (1000.0, 1000.0)  # its correlation (decorrelation) lengths (m)
    noise_rho: float = 0.0  # correlation of consecutive years' noises
    noise_field: str = "evensen"  # "evensen" (PseudoRandomField, one FFT) or "gstools" (RandomField)
    seed: int = 1
    output: str = "demo-output/icestream_twin"

    @classmethod
    def short(cls, **kw) -> "Config":
        """The shortened configuration of ``make demo``: the first 25 years (analyses at years
        4, 12 and 20), the 40 members of the full run."""
        return cls(**{"years": 25, **kw})

    @property
    def obs_years(self) -> tuple[float, ...]:
        return tuple(float(t) for t in range(self.first_obs, min(self.last_obs, self.years) + 1, self.obs_every))


def observations(config: Config, n_nodes: int) -> "fdassim.Observations":
    """Thickness, both velocity components and smb at every node, at the observation years."""
    from fdassim.observations import NodalValues, Quantity, Schedule

    when = Schedule(times=config.obs_years)
    std = fdassim.ObsError.from_std
    return fdassim.Observations([
        Quantity("thickness", NodalValues("thickness"), std(5.0), when),
        Quantity("velocity", NodalValues("velocity"), std(np.tile([0.5, 0.1], n_nodes)), when),
        Quantity("smb", NodalValues("accumulation"), std(0.1), when),
    ])


def run(config: Config, progress: bool = True, restart: bool = False, comm=None,
        figures: bool = True) -> dict | None:
    """Run the twin and the free run; write the store, figures and summary; return the
    summary (on rank 0 of ``comm``, default the world; ``None`` elsewhere). ``restart``
    continues the run in the output folder's store from its last completed cycle (after a
    kill, say). ``figures=False`` skips the free run, the figures and the summary, and
    returns only the timing breakdown."""
    from fdassim.models.icestream import IceStream

    tic = time.perf_counter()
    model = IceStream()
    ensemble = fdassim.Ensemble(model, size=config.members, truth=True, comm=comm)
    rank0 = ensemble.world.rank == 0
    if rank0:
        os.makedirs(config.output, exist_ok=True)
    obs = observations(config, ensemble.layout.global_size("thickness"))
    times = np.arange(config.years + 1, dtype=float)
    cls = getattr(fdassim, SCHEMES[config.scheme])
    scheme = cls(localization=fdassim.Localization(config.radius)) if config.scheme in LOCALIZED else cls()
    if config.finite_size:
        from dataclasses import replace

        scheme = replace(scheme, finite_size=fdassim.FiniteSize())
    start = initial_fields(ensemble, config.seed)
    setup = time.perf_counter() - tic
    path = os.path.join(config.output, "run.h5")
    store = (fdassim.Store.open(path, ensemble) if restart
             else fdassim.Store.create(path, ensemble, times, obs, overwrite=True))
    with store:
        result = fdassim.assimilate(ensemble, scheme, obs, times, seed=config.seed, store=store, progress=progress,
                                    inflation=inflation(config), model_noise=model_noise(config), restart=restart)
    timing = {"setup": setup + result.timing.get("init", 0.0), "forecast": result.timing["forecast"],
              "analysis": result.timing["analysis"], "io": result.timing["io"]}
    if not figures:
        return {"timing_seconds": timing} if rank0 else None
    tic = time.perf_counter()
    free = free_run(ensemble, model, config.years)
    timing["free run"] = time.perf_counter() - tic
    return _figures().make_figures(path, start, free, config, timing) if rank0 else None


def inflation(config: Config):
    """Multiplicative inflation of the smb's prior (``smb_inflation``), then RTPS of the analysis."""
    from fdassim.inflation import Chain

    smb = fdassim.Multiplicative(1.0, lam_param=config.smb_inflation)
    return Chain((smb, fdassim.RTPS(config.rtps))) if config.rtps else smb


def model_noise(config: Config):
    """AR(1) noise on the members' thickness and smb after each yearly forecast (not the truth's),
    or ``None``."""
    from fdassim.perturbations import ModelNoise, PseudoRandomField, RandomField

    make = {"evensen": PseudoRandomField, "gstools": RandomField}[config.noise_field]
    fields = {name: make(std=std, length=length)
              for name, std, length in zip(("thickness", "accumulation"), config.noise, config.noise_length) if std}
    return ModelNoise(fields, rho=config.noise_rho, truth=False) if fields else None


FIELDS = ("thickness", "velocity", "accumulation")


def initial_fields(ensemble, seed: int) -> dict | None:
    """Year 0 (the store starts at year 1): truth, ensemble mean and spread, per field, on rank 0."""
    ensemble.initialize(seed)
    rows = ensemble.to_rows()
    N = ensemble.size
    columns = {"truth": rows[:, N], "mean": rows[:, :N].mean(axis=1), "std": rows[:, :N].std(axis=1, ddof=1)}
    return by_position(ensemble, columns, ensemble.row_slice.start)


def free_run(ensemble, model, years: int) -> dict | None:
    """The wrong state run without assimilation, yearly: ``{field: (years + 1, n)}`` on rank 0.

    Run by the first group only (a member on its ranks' mesh), with the first group's
    FlowSolver; the values are in position order, like :func:`by_position`.
    """
    record = []
    if ensemble.ens_comm.rank == 0:
        member = model.member(ensemble.domain, -1)
        member.truth_state(None)  # the true fields, then ...
        model.prior_state(member.fields)  # ... the wrong state, without perturbations
        for year in range(years + 1):
            if year:
                member.forecast(year - 1.0, float(year))
            record.append(ensemble.layout.flatten(member.state))
    values = np.array(record).T if record else np.empty((ensemble.layout.n_local, 0))
    out = by_position(ensemble, {"free": values}, 0, group=0)
    return None if out is None else {f: out[f]["free"].T for f in FIELDS}


def by_position(ensemble, columns: dict, lo: int, group: int | None = None) -> dict | None:
    """Whole fields on rank 0 from this rank's local state positions ``lo, lo + 1, ...``.

    ``columns`` maps names to arrays whose first axis runs over those positions (all of one
    group's ranks' local vectors, or this rank's row block). Returns
    ``{field: {name: values}}`` with each field's values sorted by node position (x, then y;
    vector components kept in order), or ``None`` off rank 0. With ``group``, only that
    group's ranks contribute.
    """
    L = ensemble.layout
    n = next(iter(columns.values())).shape[0]
    mine = []
    if group is None or ensemble.ens_comm.rank == group:
        for f in FIELDS:
            sl = L.slice(f)
            a, b = max(sl.start, lo), min(sl.stop, lo + n)
            if b > a:
                mine.append((f, L.coords[a:b], {k: v[a - lo:b - lo] for k, v in columns.items()}))
    parts = ensemble.world.gather(mine, root=0)
    if parts is None:
        return None
    out = {}
    for f in FIELDS:
        pieces = [p for rank in parts for p in rank if p[0] == f]
        xy = np.concatenate([p[1] for p in pieces])
        order = _figures().by_position(xy)
        out[f] = {k: np.concatenate([p[2][k] for p in pieces])[order] for k in columns}
    return out


def _figures():
    """The figures module beside this script (demos are scripts, not a package), loaded once."""
    import importlib.util
    import sys

    name = "icestream_twin_figures"
    if name not in sys.modules:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures.py")
        spec = importlib.util.spec_from_file_location(name, path)
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--short", action="store_true", help="the first 25 years (the make demo configuration)")
    p.add_argument("--members", type=int)
    p.add_argument("--years", type=int)
    p.add_argument("--scheme", choices=sorted(SCHEMES))
    p.add_argument("--radius", type=float, help="localization radius (m) of lenkf and letkf")
    p.add_argument("--first-obs", type=int, help="year of the first observations")
    p.add_argument("--obs-every", type=int, help="years between observations")
    p.add_argument("--last-obs", type=int, help="year of the last observations")
    p.add_argument("--noise", type=float, nargs=2, metavar=("THICKNESS", "SMB"),
                   help="model noise per year: thickness (m), smb (m/yr); 0 0 for none (default 10 0.05)")
    p.add_argument("--noise-field", choices=("evensen", "gstools"),
                   help="the model noise's random fields: Evensen's pseudo-random fields (default) or gstools'")
    p.add_argument("--output")
    p.add_argument("--restart", action="store_true", help="continue the run stored in the output folder")
    p.add_argument("--no-figures", action="store_true", help="only the assimilation (no free run, no figures)")
    a = p.parse_args(argv)
    given = {k: v for k, v in (("members", a.members), ("years", a.years), ("scheme", a.scheme), ("radius", a.radius),
                               ("first_obs", a.first_obs), ("obs_every", a.obs_every), ("last_obs", a.last_obs),
                               ("noise", None if a.noise is None else tuple(a.noise)), ("noise_field", a.noise_field),
                               ("output", a.output))
             if v is not None}
    config = Config.short(**given) if a.short else Config(**given)
    summary = run(config, restart=a.restart, figures=not a.no_figures)
    if summary is not None and "text" in summary:
        print(summary["text"])
        with open(os.path.join(config.output, "config.json"), "w") as fh:
            json.dump(asdict(config), fh, indent=1)


if __name__ == "__main__":
    main()
