"""The ISSM model for fdassim: settings, fields and the prior; members run on a server pool.

``ISSM`` implements fdassim's model protocol in its per-member form
(:mod:`fdassim.models.base`): :meth:`ISSM.domain` starts (or attaches to) the pool of
MATLAB/Octave servers the members on one rank share, :meth:`ISSM.member` makes one member,
whose ``forecast(t0, t1)`` runs an ISSM transient through a server
(:mod:`issm_bridge.domain`). The state is a set of vertex fields of ISSM's ``md``:

==============  ==========================  ===============================
field           md path                     TransientSolution result
==============  ==========================  ===============================
``thickness``   ``md.geometry.thickness``   ``Thickness``
``surface``     ``md.geometry.surface``     ``Surface``
``base``        ``md.geometry.base``        ``Base``
``bed``         ``md.geometry.bed``         (unchanged by a transient)
``vx``, ``vy``  ``md.initialization.vx/vy`` ``Vx``, ``Vy``
``friction``    ``md.friction.coefficient`` (unchanged; set by the inversion)
==============  ==========================  ===============================

and any other field named in ``paths`` (name -> md path) and ``results`` (name -> result).

Two back ends run the same MATLAB code: ``issm`` calls ISSM's ``solve(md, 'Transient')``
on the model ``setup`` gives (ISSM found through ``ISSM_DIR``); ``flowline`` calls the test
model in the repository, ``flowline_solve`` on ``flowline_model`` (a grounded glacier
flowline in md's field names, ``issm_bridge/matlab/testmodel``), so the bridge is tested
end to end under GNU Octave on any machine.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from fdassim import ConfigError, FieldSpec
from fdassim.options import check_options, option

__all__ = ["ISSM", "Backend", "Inversion", "PATHS", "RESULTS"]

#: standard field names -> md paths
PATHS = {"thickness": "geometry.thickness", "surface": "geometry.surface", "base": "geometry.base",
         "bed": "geometry.bed", "vx": "initialization.vx", "vy": "initialization.vy",
         "friction": "friction.coefficient"}
#: standard field names -> the TransientSolution result that replaces them after a forecast
RESULTS = {"thickness": "Thickness", "surface": "Surface", "base": "Base", "vx": "Vx", "vy": "Vy"}


class Backend(enum.Enum):
    """Which model the servers run."""

    FLOWLINE = "flowline"  #: the test glacier in ``issm_bridge/matlab/testmodel`` (no ISSM needed)
    ISSM = "issm"          #: ISSM's ``solve``, found through ``ISSM_DIR``


@dataclass(frozen=True)
class Inversion:
    """A friction inversion after each analysis (ICESEE section 4.2.2), by ISSM's control method.

    Each member's friction coefficient is inverted from its analysed velocity (``vx``,
    ``vy`` as ``md.inversion.vx_obs``/``vy_obs``) minimising ISSM's cost functions 101
    (absolute misfit), 102 (relative misfit) and 501 (the Tikhonov term on the gradient of
    the coefficient) with the weights below, within ``[min, max]``; the result replaces the
    member's ``friction`` before its next forecast.

    Parameters
    ----------
    absolute, relative, tikhonov
        Weights of the cost functions 101, 102 and 501 (``md.inversion.cost_functions_coefficients``);
        a zero weight leaves its cost function out.
    min, max
        Bounds of the coefficient (``md.inversion.min_parameters`` / ``max_parameters``).
    iterations
        Iterations of the optimiser (``maxiter``/``maxsteps``, or ``nsteps`` of ISSM's default class).
    """

    absolute: float = option(1.0, ge=0)
    relative: float = option(0.0, ge=0)
    tikhonov: float = option(1e3, ge=0)
    min: float = option(1.0, ge=0)
    max: float = option(200.0)
    iterations: int = option(20, ge=1)

    def __post_init__(self):
        check_options(self)  # types and bounds of the fields (fdassim.options)
        if self.absolute == 0 and self.relative == 0:
            raise ConfigError("inversion: give a velocity misfit weight (absolute or relative > 0)")
        if not self.min < self.max:
            raise ConfigError(f"inversion: need 0 <= min < max, got min={self.min!r}, max={self.max!r}")

    def job(self) -> dict:
        """The inversion's part of a member file's job (``job.inversion``)."""
        return {"absolute": self.absolute, "relative": self.relative, "tikhonov": self.tikhonov,
                "min": self.min, "max": self.max, "iterations": float(self.iterations), "field": "friction"}


@dataclass(frozen=True)
class ISSM:
    """An ISSM model run through MATLAB/Octave servers (see the module docstring).

    Parameters
    ----------
    backend
        ``flowline`` (the test model in the repository) or ``issm`` (ISSM through ``ISSM_DIR``).
    setup
        What builds ``md``: a ``.mat`` file holding ``md`` (ISSM's ``savemodel``/``save``), or a
        MATLAB function returning it; default ``flowline_model`` for the flowline back end.
    setup_options
        Passed to the setup function as a struct (when not empty).
    matlab_path
        Directories put on the servers' MATLAB path (where the setup function lives).
    state, parameters, carried
        Names of the assimilated state fields, the assimilated parameters, and the fields
        carried along (exchanged and stored in the restart, not assimilated).
    paths, results
        Extra fields: name -> md path, and name -> TransientSolution result (a field with
        no result keeps the value its md path has after the transient).
    prior_std, prior_length
        The initial ensemble: the setup's fields plus Gaussian random fields (gstools) of
        these standard deviations (by field name) and correlation length (m). A thickness
        perturbation moves the surface with it (``surface = base + thickness``).
    servers
        MATLAB/Octave servers per rank; members are dealt over them.
    ranks
        ISSM ranks of each run (``md.cluster.np``; 0 leaves the setup's).
    engine
        ``matlab``, ``octave`` or ``None`` (MATLAB if on PATH, else Octave).
    timeout, startup_timeout
        Seconds a forecast, and a server's start-up, may take before the server is stopped.
    retries
        Times a forecast whose server died or hung is run again on a restarted server.
    pool
        Directory of a running pool (``issm-bridge start --dir``) to use instead of starting one.
    directory
        Where the servers started for the run keep their files and the member files go
        (default: a temporary directory, removed at the end).
    keep_files
        Keep the last member files (and the temporary directory) for inspection.
    inversion
        A friction inversion after each analysis (:class:`Inversion`), or ``None``.
    """

    backend: Backend = Backend.FLOWLINE
    setup: str | None = None
    setup_options: dict = field(default_factory=dict)
    matlab_path: tuple[str, ...] = ()
    state: tuple[str, ...] = ("thickness", "surface", "base", "vx", "vy")
    parameters: tuple[str, ...] = ("friction",)
    carried: tuple[str, ...] = ("bed",)
    paths: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)
    prior_std: dict = field(default_factory=lambda: {"thickness": 20.0, "friction": 2.0})
    prior_length: float = option(5e3, gt=0)
    servers: int = option(2, ge=1)
    ranks: int = option(1, ge=0)
    engine: Literal["matlab", "octave"] | None = None
    timeout: float = option(600.0, gt=0)
    startup_timeout: float = option(120.0, gt=0)
    retries: int = option(2, ge=0)
    pool: str | None = None
    directory: str | None = None
    keep_files: bool = False
    inversion: Inversion | None = None
    #: what the domain learnt of the set-up model (vertices, initial fields); not a setting
    described: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    #: the prior's random field of each perturbed field, built once; not a setting
    _random_fields: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        check_options(self)  # types and bounds of the fields (fdassim.options)
        names = self.state + self.parameters + self.carried
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"model.options: field(s) {dup} listed twice among state, parameters, carried")
        if not self.state + self.parameters:
            raise ConfigError("model.options.state: at least one field must be assimilated")
        unknown = [n for n in names if n not in PATHS and n not in self.paths]
        if unknown:
            raise ConfigError(f"model.options: no md path for field(s) {unknown}; give them in `paths` "
                              f"(name: md path) or choose among {', '.join(PATHS)}")
        for key, mapping in (("paths", self.paths), ("results", self.results), ("prior_std", self.prior_std)):
            bad = [k for k, v in mapping.items() if not isinstance(k, str) or not k.isidentifier()
                   or (key != "prior_std" and not isinstance(v, str))]
            if bad:
                raise ConfigError(f"model.options.{key}: entries {bad} must map a field name to a "
                                  f"{'number' if key == 'prior_std' else 'string'}")
        bad_std = {k: v for k, v in self.prior_std.items()
                   if k not in names or isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0}
        if bad_std:
            raise ConfigError(f"model.options.prior_std: {bad_std}: each must be a field of the state with a "
                              "standard deviation >= 0")
        if self.pool is not None and self.directory is not None:
            raise ConfigError("model.options: give pool (a running pool's directory) or directory (where to "
                              "start servers), not both")
        if self.backend is Backend.ISSM and not self.setup:
            raise ConfigError("model.options.setup: the issm back end needs the model to run: a .mat file "
                              "holding md, or a MATLAB function returning md")
        if self.inversion is not None:
            lacking = [n for n in ("vx", "vy", "friction") if n not in names]
            if lacking:
                raise ConfigError(f"model.options.inversion: needs the fields vx, vy and friction; "
                                  f"lacking {lacking}")

    # -- what the fields are -------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        """Every field exchanged with the servers, in state order."""
        return self.state + self.parameters + self.carried

    @property
    def fields(self) -> tuple[FieldSpec, ...]:
        """The fdassim fields: the state, the parameters, the carried fields."""
        return (tuple(FieldSpec(n) for n in self.state) + tuple(FieldSpec(n, parameter=True) for n in self.parameters)
                + tuple(FieldSpec(n, carried=True) for n in self.carried))

    def md_paths(self) -> dict[str, str]:
        """Field name -> md path, for every exchanged field."""
        return {n: self.paths.get(n, PATHS.get(n)) for n in self.names}

    def result_names(self) -> dict[str, str]:
        """Field name -> TransientSolution result, for the fields a transient changes."""
        return {n: self.results.get(n, RESULTS.get(n)) for n in self.names
                if self.results.get(n, RESULTS.get(n)) and (n in self.results or n not in self.paths)}

    def job(self) -> dict:
        """What every member file tells MATLAB to run (``job``; see :mod:`issm_bridge.exchange`)."""
        job = {"setup": self.setup or "flowline_model",
               "solver": "solve" if self.backend is Backend.ISSM else "flowline_solve",
               "np": float(self.ranks), "results": self.result_names()}
        if self.setup_options:
            job["setup_options"] = dict(self.setup_options)
        if self.inversion is not None:
            job["inversion"] = self.inversion.job()
        return job

    # -- the prior -------------------------------------------------------------------------------
    def draw(self, state: dict[str, np.ndarray], mean: dict[str, np.ndarray], xy: np.ndarray,
             rng: np.random.Generator) -> None:
        """Fill ``state`` with the setup's fields plus smooth Gaussian perturbations (the prior).

        Each field of ``prior_std`` gets a draw of a Gaussian random field (gstools, through
        :class:`fdassim.perturbations.RandomField`) of that standard deviation and the length
        ``prior_length``, at the vertices ``xy``; fields are drawn in name order from ``rng``.
        """
        from fdassim.perturbations import RandomField

        for name in self.names:
            state[name][...] = mean[name]
        for name in sorted(self.prior_std):  # a fixed order: the draws do not depend on dict order
            std = float(self.prior_std[name])
            if std == 0:
                continue
            if name not in self._random_fields:
                self._random_fields[name] = RandomField("gaussian", std=std, length=self.prior_length)
            state[name][...] += self._random_fields[name].sample(xy, rng)
        if "thickness" in self.prior_std:
            state["thickness"][...] = np.maximum(state["thickness"], 1.0)  # ISSM's minimum thickness
            if "surface" in state and "base" in state:
                state["surface"][...] = state["base"] + state["thickness"]
        if "friction" in self.prior_std:
            state["friction"][...] = np.maximum(state["friction"], 0.0)

    # -- the fdassim model protocol (per-member form) ----------------------------------------
    @property
    def geometry(self):
        """A plane with each field's vertex positions ``(md.mesh.x, md.mesh.y)``, once a domain has described the model."""
        from fdassim.geometry import Geometry

        xy = self.described.get("xy")
        return None if xy is None else Geometry(periodic=(None, None), positions={name: xy for name in self.names})

    def domain(self, comm):
        """The pool of servers (and the set-up model's description) the members on ``comm`` share."""
        from .domain import ISSMDomain

        return ISSMDomain(self, comm)

    def member(self, domain, index: int):
        """Member ``index`` on ``domain``."""
        from .domain import ISSMMember

        return ISSMMember(domain, index)
