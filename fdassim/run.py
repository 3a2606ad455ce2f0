"""Run an experiment described by :class:`~fdassim.config.Settings` (what ``fdassim run`` does).

The plumbing between the settings and the cycle, in two phases. :func:`preflight` builds the
model, the ensemble, the observations and the scheme and checks everything that can be
checked before anything is written. :func:`run` then locks the store, makes it (or checks,
grows and reopens it for a restart), calls :func:`fdassim.cycle.assimilate`, and prints the
summary and the timing breakdown on rank 0. A run that fails after that leaves a store whose
``/status`` says why; ``--restart`` continues it and ``--overwrite`` replaces it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass

import numpy as np

from .checks import check_times
from .collective import on_rank0
from .config import Settings, restart_differences
from .divergence import ADVICE
from .errors import ConfigError, ObservationError
from .fields import write_fields
from .grow import grow
from .io import check_output_path, remove_leftovers
from .lock import StoreLock, describe_holder
from .observations import Observations

__all__ = ["run", "preflight", "make_observations", "fields_path"]


def make_observations(settings: Settings, ensemble, times=None) -> Observations:
    """The observations described by ``settings.observations`` (see :mod:`fdassim.observations.settings`);
    ``times`` (``t_0 .. t_K``) checks observation files' times here, naming the file."""
    from .observations.settings import make_observations as make

    return make(settings.observations, ensemble, times)


@dataclass
class Plan:
    """Everything a run needs, built and checked, before anything is written."""

    ensemble: object
    observations: Observations
    scheme: object  # the filter's scheme, or None for a smoother run
    smoother: object  # the smoother, or None for a filter run
    inflation: object
    times: np.ndarray
    obs_plan: object  # what each cycle observes (fdassim.observations.ObsPlan)
    initial_perturbations: object = None
    model_noise: object = None
    parameters: list = dataclasses.field(default_factory=list)
    after_analysis: object = None  # the hybrid inversion, or None


def preflight(settings: Settings, comm=None, restart: bool = False) -> Plan:
    """Build every object of the run and check everything that can be checked before the
    store exists: the settings (already, when parsed), the memory of the ensemble, the model's
    steps against the analysis times, the observations and their inputs.

    Raises
    ------
    ConfigError
        Naming the setting and the fix; nothing has been written.
    """
    from .ensemble import Ensemble

    r, e = settings.run, settings.ensemble
    if settings.smoother is not None and restart:
        raise ConfigError("--restart: a smoother run cannot be continued from its store yet; start it again "
                          "with --overwrite")
    if settings.smoother is not None:
        unused = [key for key, given in (("parameters", settings.parameters),
                                         ("ensemble.initial_perturbations", e.initial_perturbations),
                                         ("ensemble.model_noise", e.model_noise)) if given]
        if unused:
            raise ConfigError(f"{', '.join(unused)}: a smoother run does not apply these yet; remove them, or "
                              "run a filter (filter: instead of smoother:)")
    if not r.twin:
        missing = [name for name, q in settings.observations.named().items() if q.file is None]
        if missing:
            raise ConfigError(f"observations: {', '.join(missing)} need a file when run.twin is false "
                              "(there is no truth to observe)")
    model = settings.make_model()
    times = r.t0 + r.interval * np.arange(r.cycles + 1)
    check_times(model, times)
    ensemble = Ensemble(model, e.size, comm=comm, ranks_per_member=e.ranks_per_member, truth=r.twin)
    observations = make_observations(settings, ensemble, times)
    obs_plan = observations.plan(ensemble, times)  # every schedule, file and operator checked
    scheme = settings.make_scheme() if settings.filter is not None else None
    smoother = settings.make_smoother() if settings.smoother is not None else None
    if smoother is not None:
        try:
            observations.single()
        except ObservationError as exc:
            raise ConfigError(f"observations: {exc}") from None
    initial = settings.make_initial_perturbations()
    if initial is not None:  # conditioning sites inside the mesh
        initial.check(model, "ensemble.initial_perturbations", template=ensemble.template)
    return Plan(ensemble, observations, scheme, smoother, settings.make_inflation(), times, obs_plan,
                initial, settings.make_model_noise(), settings.make_parameters(), settings.make_inversion())


def run(settings: Settings, config_text: str = "", restart: bool = False, overwrite: bool = False, comm=None):
    """Run the experiment; return the :class:`~fdassim.cycle.CycleResult`.

    Everything that can be checked from the settings and the inputs is checked first
    (:func:`preflight`); then the store is locked for the rest of the run (a second writer is
    refused), and made, or for ``restart`` checked against these settings (every difference
    that changes the result is refused, by name), grown if ``run.cycles`` was raised, and
    continued. ``overwrite`` replaces an existing store (not one a running run holds).
    """
    from .cycle import assimilate
    from .smoothers import smooth

    plan = preflight(settings, comm, restart)
    ensemble = plan.ensemble
    world = ensemble.world
    rank0 = world.rank == 0
    path = settings.output.path
    on_rank0(world, lambda: check_output_path(path))
    lock = StoreLock(path).acquire_collective(world)
    try:
        on_rank0(world, lambda: remove_leftovers(path))  # temporary files of killed runs
        if lock.stale and rank0:
            print(f"note: the last run on {path!r} ({describe_holder(lock.stale)}) ended without finishing",
                  file=sys.stderr)
        store = _open_store(settings, plan, config_text, restart, overwrite, lock)
        with store:
            if plan.smoother is None:
                result = assimilate(ensemble, plan.scheme, plan.observations, plan.times, seed=settings.run.seed,
                                    product=settings.filter.product, inflation=plan.inflation, store=store,
                                    restart=store.completed() > 0, progress=settings.run.progress,
                                    initial_perturbations=plan.initial_perturbations, model_noise=plan.model_noise,
                                    parameters=plan.parameters, after_analysis=plan.after_analysis)
            else:
                result = smooth(ensemble, plan.smoother, plan.observations, plan.times, seed=settings.run.seed,
                                inflation=plan.inflation, store=store, progress=settings.run.progress)
        saved = write_fields(fields_path(path), ensemble)
    finally:
        lock.release()
    if rank0:
        _print_summary(settings, plan, result, saved)
    return result


def fields_path(path: str) -> str:
    """Where ``fdassim run`` writes the final fields of the run stored at ``path``."""
    return os.path.splitext(path)[0] + "-fields.h5"


def _open_store(settings: Settings, plan: Plan, config_text: str, restart: bool, overwrite: bool, lock):
    """The store of this run: made new, or opened (and checked, and grown) for a restart."""
    from .io import Store

    path, world = settings.output.path, plan.ensemble.world
    rank0 = world.rank == 0
    now = settings.result_settings()
    kw = dict(lock=lock, commit_seconds=settings.output.commit_seconds)
    if restart and not os.path.exists(path):
        if rank0:
            print(f"no store at {path!r} yet: starting from the beginning", file=sys.stderr)
        restart = False
    if not restart:
        if overwrite and rank0 and os.path.exists(fields_path(path)):
            os.remove(fields_path(path))  # the fields of the run being replaced
        return Store.create(path, plan.ensemble, plan.times, plan.obs_plan, config_text, settings.output.store_ensembles,
                            overwrite=overwrite, resolved=settings.resolved(), settings=json.dumps(now),
                            smoother=plan.smoother, ensembles_every=settings.output.ensembles_every, **kw)
    header = Store.read_header(path, world)
    stored = json.loads(header["attrs"]["settings"]) if header["attrs"].get("settings") else None
    if stored is None:
        if rank0:
            print(f"warning: {path!r} does not record the settings that decide its result (made by a script "
                  "or an older fdassim): they cannot be checked against these", file=sys.stderr)
    else:
        diffs = restart_differences(stored, now)
        if diffs:
            raise ConfigError(f"cannot restart {path!r}: these settings differ from the stored run's and would "
                              "change its result:\n  " + "\n  ".join(diffs) + "\nrestart with the stored "
                              "settings (the store's `config` attribute holds them), or start again with --overwrite")
    if settings.run.cycles != header["n_cycles"]:
        old = grow(path, plan.times, world, dict(config=config_text, resolved=settings.resolved()),
                   observations=plan.obs_plan)
        if rank0:
            print(f"extending {path!r} from {old} to {settings.run.cycles} cycles", file=sys.stderr)
    store = Store.open(path, plan.ensemble, **kw)
    if rank0:
        done = store.completed()
        print(f"restarting {path!r} after {done} of {store.n_cycles} cycles (its status: {header['status']})"
              if done < store.n_cycles else f"{path!r} is complete ({done} cycles): nothing to run "
              "(raise run.cycles to extend it)", file=sys.stderr)
    return store


def _print_summary(settings: Settings, plan: Plan, result, saved: list[str]) -> None:
    r, path, ensemble, smoother = settings.run, settings.output.path, plan.ensemble, plan.smoother
    burn_in = min(r.cycles // 10, 100)
    s = result.summary(burn_in=burn_in)
    method = settings.filter.scheme if smoother is None else \
        f"{settings.smoother.method} (lag {smoother.lag}, shift {smoother.shift})"
    print(f"fdassim: {method} on {settings.model.name}, N = {settings.ensemble.size}, "
          f"{r.cycles} cycles on {ensemble.world.size} rank(s) ({ensemble.groups} group(s) of "
          f"{ensemble.comm.size}) -> {path}")
    print(f"  time-averaged over cycles {burn_in}-{r.cycles - 1} (the first {burn_in} left out as burn-in): "
          f"analysis RMSE {s['rmse_analysis']:.4f}, spread {s['spread_analysis']:.4f}; "
          f"forecast RMSE {s['rmse_forecast']:.4f}, spread {s['spread_forecast']:.4f}")
    if smoother is not None:
        print(f"  smoother RMSE {s['rmse_smoother']:.4f}, spread {s['spread_smoother']:.4f}; per window "
              f"{s['simulations']:.2f} ensemble simulations ({s['propagations']:.1f} forecast intervals)")
    if getattr(result, "diverged_at", None) is not None:
        print(f"  warning: the filter diverged at cycle {result.diverged_at} ({ADVICE}; see the README)")
    t = result.timing
    total = sum(t.values())
    print("  time: " + ", ".join(f"{k} {v:.2f} s ({100 * v / total:.0f}%)" for k, v in t.items()))
    if saved:
        print(f"  final analysis fields ({', '.join(saved)}) -> {fields_path(path)} (Firedrake CheckpointFile)")
