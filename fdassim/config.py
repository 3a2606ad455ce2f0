"""``params.yaml``: the settings of a run, read once into typed, validated objects.

A complete example (Lorenz-96 twin experiment with the ETKF)::

    model:
      name: lorenz96            # lorenz96 | heat (a Firedrake model) | flowline (Icepack)
      options: {n: 40, F: 8.0, dt: 0.05}
    ensemble:
      size: 20
      ranks_per_member: null    # ranks over which one member's mesh is split (null: 1, or
                                # more when there are more ranks than members)
    observations:
      field: x                  # the observed field
      every: 1                  # observe every k-th value (or `indices: [...]`, or `points:`)
      std: 1.0                  # observation-error standard deviation
      file: null                # observed values (.npz with y of shape (cycles, m)); null: twin
    filter:
      scheme: etkf              # enkf | etkf | ensrf | denkf | enkf_n | lenkf | letkf | eakf
      options: {}
    # or, instead of filter:, a fixed-lag smoother (fdassim.smoothers):
    # smoother:
    #   method: sienks          # enks | sienks | ienks | lin_ienks
    #   options: {lag: 10, shift: 1, mda: false, finite_size: false}
    inflation:                  # optional; one or a list of {kind: options}
      - multiplicative: {lam: 1.02}
    run:
      cycles: 1000
      interval: 0.05            # time between analyses
      seed: 3
    output:
      path: run.h5
      store_ensembles: true

A run is a filter run or a smoother run: give exactly one of ``filter:`` and ``smoother:``
(the smoothers bring their own filter step, the ETKF or, with ``finite_size: true``, the
EnKF-N). Every key is checked before any work starts: an unknown key, a value of the wrong type or out
of range, or a missing observation file is a :class:`~fdassim.errors.ConfigError` naming the
key (``filter.options.lam``) and what is allowed.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ConfigError
from .typed import build

__all__ = ["Settings", "load", "parse", "SCHEMES", "SMOOTHERS", "MODELS", "INFLATIONS"]

#: scheme name -> "module:Class" (imported when used)
SCHEMES = {
    "enkf": "fdassim.analysis.enkf:EnKF",
    "etkf": "fdassim.analysis.etkf:ETKF",
    "ensrf": "fdassim.analysis.ensrf:EnSRF",
    "denkf": "fdassim.analysis.denkf:DEnKF",
    "enkf_n": "fdassim.analysis.enkf_n:EnKFN",
    "lenkf": "fdassim.analysis.lenkf:LocalizedEnKF",
    "letkf": "fdassim.analysis.letkf:LETKF",
    "eakf": "fdassim.analysis.regression:RegressionFilter",
}
#: smoother method -> "module:Class"
SMOOTHERS = {
    "enks": "fdassim.smoothers.enks:EnKS",
    "sienks": "fdassim.smoothers.sienks:SIEnKS",
    "ienks": "fdassim.smoothers.ienks:IEnKS",
    "lin_ienks": "fdassim.smoothers.ienks:LinIEnKS",
}
#: model name -> "module:Class"
MODELS = {
    "lorenz96": "fdassim.models.lorenz96:Lorenz96",
    "heat": "fdassim.models.heat:Heat",
    "issm": "issm_bridge.model:ISSM",  # ISSM through MATLAB/Octave servers (the issm_bridge package)
}
#: inflation kind -> "module:Class"
INFLATIONS = {
    "multiplicative": "fdassim.inflation:Multiplicative",
    "additive": "fdassim.inflation:Additive",
    "rtps": "fdassim.inflation:RTPS",
    "rtpp": "fdassim.inflation:RTPP",
}


def _load_class(spec: str):
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


def _choice(registry: dict[str, str], name: Any, key: str):
    if not isinstance(name, str) or name not in registry:
        raise ConfigError(f"{key}: {name!r} is not known; choose one of {', '.join(registry)}")
    return _load_class(registry[name])


@dataclass(frozen=True)
class ModelSettings:
    name: str
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class EnsembleSettings:
    size: int
    ranks_per_member: int | None = None

    def __post_init__(self):
        if self.size < 2:
            raise ConfigError(f"ensemble.size: must be at least 2, got {self.size}")
        if self.ranks_per_member is not None and self.ranks_per_member < 1:
            raise ConfigError(f"ensemble.ranks_per_member: must be at least 1, got {self.ranks_per_member}")


@dataclass(frozen=True)
class ObservationSettings:
    field: str = "x"
    every: int | None = None
    indices: tuple[int, ...] | None = None
    points: tuple[tuple[float, ...], ...] | None = None
    std: float = 1.0
    file: str | None = None

    def __post_init__(self):
        chosen = [k for k in ("every", "indices", "points") if getattr(self, k) is not None]
        if len(chosen) > 1:
            raise ConfigError(f"observations: give one of every, indices, points; got {', '.join(chosen)}")
        if self.every is not None and self.every < 1:
            raise ConfigError(f"observations.every: must be at least 1, got {self.every}")
        if self.indices is not None and len(self.indices) == 0:
            raise ConfigError("observations.indices: empty; list at least one index")
        if self.points is not None and len(self.points) == 0:
            raise ConfigError("observations.points: empty; list at least one point")
        if not (np.isfinite(self.std) and self.std > 0):
            raise ConfigError(f"observations.std: must be positive, got {self.std}")
        if self.file is not None and not os.path.isfile(self.file):
            raise ConfigError(f"observations.file: no such file {self.file!r}")


@dataclass(frozen=True)
class FilterSettings:
    scheme: str
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SmootherSettings:
    method: str
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RunSettings:
    cycles: int
    interval: float
    t0: float = 0.0
    seed: int = 1
    twin: bool = True
    progress: bool = True

    def __post_init__(self):
        if self.cycles < 1:
            raise ConfigError(f"run.cycles: must be at least 1, got {self.cycles}")
        if not (np.isfinite(self.interval) and self.interval > 0):
            raise ConfigError(f"run.interval: must be positive, got {self.interval}")
        if self.seed < 1:
            raise ConfigError(f"run.seed: must be a positive integer, got {self.seed}")


@dataclass(frozen=True)
class OutputSettings:
    path: str = "run.h5"
    store_ensembles: bool = True


@dataclass(frozen=True)
class Settings:
    """The validated settings of a run, with the objects they describe already built."""

    model: ModelSettings
    ensemble: EnsembleSettings
    observations: ObservationSettings
    run: RunSettings
    filter: FilterSettings | None = None
    smoother: SmootherSettings | None = None
    inflation: tuple = ()
    output: OutputSettings = field(default_factory=OutputSettings)

    def __post_init__(self):
        if (self.filter is None) == (self.smoother is None):
            given = "both" if self.filter is not None else "neither"
            raise ConfigError(f"give exactly one of filter: (a filter run) and smoother: (a smoother run); got {given}")

    def resolved(self) -> str:
        """Every setting with its default filled in, and the objects built from them (YAML)."""
        import yaml

        data = dataclasses.asdict(self)
        method = {"scheme": repr(self.make_scheme())} if self.filter else {"smoother": repr(self.make_smoother())}
        data["built"] = {"model": repr(self.make_model()), **method, "inflation": repr(self.make_inflation())}
        return yaml.safe_dump(data, sort_keys=False)

    def make_model(self):
        return build(_choice(MODELS, self.model.name, "model.name"), self.model.options, "model.options")

    def make_scheme(self):
        cls = _choice(SCHEMES, self.filter.scheme, "filter.scheme")
        return build(cls, self.filter.options, "filter.options")

    def make_smoother(self):
        cls = _choice(SMOOTHERS, self.smoother.method, "smoother.method")
        return build(cls, self.smoother.options, "smoother.options")

    def make_inflation(self):
        """The inflation (a Chain when several are given), or ``None``."""
        if not self.inflation:
            return None
        from .inflation import Chain

        items = []
        for i, entry in enumerate(self.inflation):
            key = f"inflation[{i}]"
            if not isinstance(entry, dict) or len(entry) != 1:
                raise ConfigError(f"{key}: expected one {{kind: options}} mapping, kinds: {', '.join(INFLATIONS)}")
            (kind, options), = entry.items()
            items.append(build(_choice(INFLATIONS, kind, f"{key}"), options, f"{key}.{kind}"))
        return items[0] if len(items) == 1 else Chain(tuple(items))


def parse(data: Any, source: str = "params.yaml") -> Settings:
    """Validate a ``params.yaml`` mapping and build every object it names.

    Raises
    ------
    ConfigError
        Naming the key and what is allowed; nothing has been run or written.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sections "
                          f"({', '.join(f.name for f in dataclasses.fields(Settings))}), got {type(data).__name__}")
    data = dict(data)
    infl = data.pop("inflation", None)
    if infl is not None and not isinstance(infl, (list, dict)):
        raise ConfigError(f"inflation: expected a mapping or a list of mappings, got {infl!r}")
    settings = build(Settings, data, "")
    infl = () if infl is None else tuple(infl if isinstance(infl, list) else [{k: v} for k, v in infl.items()])
    settings = dataclasses.replace(settings, inflation=infl)
    # build everything once now, so a bad option fails before any work starts
    model = settings.make_model()
    if settings.filter is not None:
        _check_domain(settings.make_scheme(), model)
    else:
        settings.make_smoother()
    settings.make_inflation()
    return settings


def _check_domain(scheme, model) -> None:
    """A scheme's localization must agree with the periods of the model's geometry."""
    loc, geometry = getattr(scheme, "localization", None), getattr(model, "geometry", None)
    if loc is not None and geometry is not None:
        try:
            loc.on_domain(geometry.periodic)
        except ConfigError as exc:
            raise ConfigError(f"filter.options.localization.periodic: {exc}") from None


def load(path: str) -> Settings:
    """Read and validate ``params.yaml`` at ``path``."""
    import yaml

    if not os.path.isfile(path):
        raise ConfigError(f"no settings file {path!r}")
    with open(path) as fh:
        try:
            data = yaml.safe_load(fh)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse(data, path)
