"""Hybrid assimilation-inversion on a marine glacier (ICESEE sections 2.5 and 4.2, scaled down).

A 5 km x 1.2 km marine glacier (:class:`fdassim.models.marine.MarineGlacier`): grounded ice
flows over a bed with relief into a floating shelf. The members know the surface and the
bed's trend, not its relief; their friction is a featureless 0.7 x the truth's mean. Every
year the thickness (sigma 10 m) and the velocity (5 m/yr) are observed at every node; the bed
is observed once, along three radar flight lines, at year 1. The localized EnKF analyses the
thickness, velocity and bed (the bed a parameter of the state) from the thickness and bed
observations; after each analysis the friction is inferred from the analysed ensemble mean and
the observed velocity (Icepack's inverse machinery, :mod:`fdassim.models.inversion`) and its
change added to every member. The velocity is left out of the analysis (``assimilate:
false``): until the friction is right the members' velocities are biased, and the analysis
would blame the bed.

Everything is set in ``params.yaml`` beside this script; this script runs it, follows the
friction, bed and thickness errors of the ensemble mean, and writes figures and a summary to
the output folder (default ``demo-output/marine_hybrid``).

    python demos/marine_hybrid/hybrid.py                   # 20 members, 10 years
    python demos/marine_hybrid/hybrid.py --short           # 8 members, 3 years, a coarser mesh
    mpiexec -n 2 python demos/marine_hybrid/hybrid.py      # members over 2 ranks
    fdassim run demos/marine_hybrid/params.yaml            # the same run, store only
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
#: the shortened configuration (the test's): changes to params.yaml
SHORT = {"model": {"options": {"nx": 12, "ny": 4}}, "ensemble": {"size": 8}, "run": {"cycles": 3},
         "inversion": {"max_iterations": 6}}


class Tracker:
    """The run's after-analysis step: the hybrid inversion, and the errors of the ensemble mean
    around it (collective: called on every rank).

    ``rows`` gets one dict per analysis (cycle, year, bed/thickness/friction RMSE after the
    analysis, friction RMSE after the inversion, the inversion's misfits); :meth:`snapshot`
    keeps whole fields for the error maps on rank 0.
    """

    def __init__(self, inversion, ensemble, times):
        from icepack.constants import ice_density as rho_I
        from icepack.constants import water_density as rho_W

        self.inversion, self.times = inversion, times
        ref = ensemble.domain.reference
        self.true = {name: ref[name].dat.data_ro.copy() for name in ("bed", "friction")}
        h, b = ref["thickness"].dat.data_ro, self.true["bed"]
        #: where the truth is grounded at the start: where friction acts and the velocity constrains it
        self.grounded = h + rho_W / rho_I * np.minimum(b, 0) > 0
        self.rows, self.maps = [], {}

    def __call__(self, ensemble, cycle, observed):
        row = {"cycle": cycle, "year": float(self.times[cycle + 1]), **self.errors(ensemble)}
        results = self.inversion(ensemble, cycle, observed)
        row["friction_after"] = self.errors(ensemble)["friction"]
        row["misfit"] = [(r.misfit_before, r.misfit_after) for r in results]
        self.rows.append(row)
        self.snapshot(ensemble, "end")
        return results

    def _mean(self, ensemble, name):
        members = [m for i, m in zip(ensemble.local, ensemble.members) if i < ensemble.size]
        local = sum((m.fields[name].dat.data_ro for m in members), np.zeros_like(self.true["bed"]))
        return ensemble.ens_comm.allreduce(local) / ensemble.size

    def _truth(self, ensemble, name):
        owner = int(ensemble.owner[ensemble.size])
        mine = [m for i, m in zip(ensemble.local, ensemble.members) if i == ensemble.size]
        return ensemble.ens_comm.bcast(mine[0].fields[name].dat.data_ro.copy() if mine else None, root=owner)

    def _rmse(self, ensemble, error, where=None):
        e = error if where is None else error[where]
        total = ensemble.comm.allreduce(np.array([np.sum(e ** 2), e.size], dtype=float))
        return float(np.sqrt(total[0] / total[1]))

    def errors(self, ensemble) -> dict:
        """RMSE of the ensemble mean: bed and thickness over the domain, friction over the grounded ice."""
        return {"bed": self._rmse(ensemble, self._mean(ensemble, "bed") - self.true["bed"]),
                "thickness": self._rmse(ensemble, self._mean(ensemble, "thickness") - self._truth(ensemble, "thickness")),
                "friction": self._rmse(ensemble, self._mean(ensemble, "friction") - self.true["friction"], self.grounded)}

    def snapshot(self, ensemble, when: str) -> None:
        """Node positions, truth and mean of bed and friction, gathered from the first group to rank 0."""
        means = {k: self._mean(ensemble, k) for k in ("bed", "friction")}  # collective
        part = None
        if ensemble.ens_comm.rank == 0:
            part = (ensemble.model.nodes(ensemble.domain.reference["bed"]), self.grounded,
                    {k: (self.true[k], means[k]) for k in means})
        parts = ensemble.world.gather(part, root=0)
        if ensemble.world.rank == 0:
            parts = [p for p in parts if p is not None]
            self.maps[when] = {"xy": np.concatenate([p[0] for p in parts]),
                               "grounded": np.concatenate([p[1] for p in parts]),
                               **{k: tuple(np.concatenate([p[2][k][j] for p in parts]) for j in (0, 1))
                                  for k in means}}


def _merge(base: dict, changes: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in changes.items():
        out[k] = _merge(out.get(k) or {}, v) if isinstance(v, dict) else v
    return out


def run(changes: dict | None = None, output: str = "demo-output/marine_hybrid", progress: bool = True,
        comm=None, params: str = os.path.join(HERE, "params.yaml")) -> dict | None:
    """Run ``params`` (with ``changes`` merged in); write the store, figures and summary to
    ``output``; return the summary on rank 0 of ``comm`` (default the world), ``None`` elsewhere."""
    import yaml

    import fdassim
    from fdassim.config import parse
    from fdassim.run import preflight

    with open(params) as fh:
        data = _merge(yaml.safe_load(fh), {**(changes or {}), "output": {"path": os.path.join(output, "run.h5")}})
    settings = parse(data, params)
    tic = time.perf_counter()
    plan = preflight(settings, comm)
    ensemble = plan.ensemble
    tracker = Tracker(plan.after_analysis, ensemble, plan.times)
    ensemble.initialize(settings.run.seed)  # the start, as the run draws it
    start = tracker.errors(ensemble)
    tracker.snapshot(ensemble, "start")
    with fdassim.Store.create(settings.output.path, ensemble, plan.times, plan.obs_plan, overwrite=True) as store:
        result = fdassim.assimilate(ensemble, plan.scheme, plan.observations, plan.times, seed=settings.run.seed,
                                    store=store, inflation=plan.inflation, progress=progress,
                                    after_analysis=tracker)
    seconds = time.perf_counter() - tic
    if ensemble.world.rank != 0:
        return None
    summary = _summary(settings, start, tracker.rows, result, seconds, ensemble.world.size)
    names = plan.obs_plan.names
    sites, years = None, []
    if "bed" in names:
        q = names.index("bed")
        sites, years = plan.obs_plan.positions[q], plan.times[1:][plan.obs_plan.cycles[q]].tolist()
    _figures_module().make_figures(output, start, tracker.rows, tracker.maps, sites, years)
    with open(os.path.join(output, "summary.txt"), "w") as fh:
        fh.write(summary["text"] + "\n")
    return summary


def _summary(settings, start, rows, result, seconds, ranks) -> dict:
    last = rows[-1]
    bed = [start["bed"]] + [r["bed"] for r in rows]
    friction = [start["friction"]] + [r["friction_after"] for r in rows]
    thickness = [start["thickness"]] + [r["thickness"] for r in rows]
    text = "\n".join([
        f"Hybrid assimilation-inversion on a marine glacier: {settings.ensemble.size} members, "
        f"{len(rows)} analyses (years {rows[0]['year']:g}-{last['year']:g}), {ranks} rank(s), {seconds:.0f} s",
        "RMSE of the ensemble mean     start  -> first analysis -> last analysis",
        f"  friction (grounded ice)     {friction[0]:.4f} -> {friction[1]:.4f} -> {friction[-1]:.4f}"
        f"   ({100 * (1 - friction[-1] / friction[0]):.0f}% lower)",
        f"  bed (m)                     {bed[0]:.1f} -> {bed[1]:.1f} -> {bed[-1]:.1f}"
        f"   ({100 * (1 - bed[-1] / bed[0]):.0f}% lower)",
        f"  thickness (m)               {thickness[0]:.1f} -> {thickness[1]:.1f} -> {thickness[-1]:.1f}",
        f"velocity misfit of each inversion (before -> after, in units of sigma^2): "
        + ", ".join(f"{a:.3g}->{b:.3g}" for r in rows for a, b in r["misfit"][:1]),
    ])
    return {"text": text, "friction": friction, "bed": bed, "thickness": thickness,
            "misfits": [m for r in rows for m in r["misfit"]],
            "years": [0.0] + [r["year"] for r in rows], "rmse_analysis": result.rmse_analysis.tolist()}


def _figures_module():
    """The figures module beside this script (demos are scripts, not a package)."""
    import importlib.util
    import sys

    name = "marine_hybrid_figures"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, "figures.py"))
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--short", action="store_true", help="8 members, 3 years, a coarser mesh (the test's run)")
    p.add_argument("--output", default="demo-output/marine_hybrid")
    a = p.parse_args(argv)
    summary = run(SHORT if a.short else None, output=a.output)
    if summary is not None:
        print(summary["text"])


if __name__ == "__main__":
    main()
