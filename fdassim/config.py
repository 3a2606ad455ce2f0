"""``params.yaml``: the settings of a run, read once into typed, validated objects.

A complete example (Lorenz-96 twin experiment with the ETKF)::

    model:
      name: lorenz96            # lorenz96 | heat (Firedrake) | icestream, marine, flowline (Icepack) | issm
      options: {n: 40, F: 8.0, dt: 0.05}
    ensemble:
      size: 20
      ranks_per_member: null    # ranks over which one member's mesh is split (null: 1, or
                                # more when there are more ranks than members)
    observations:
      field: x                  # the observed field
      every: 1                  # observe every k-th value (or `indices: [...]`, or `points:`)
      std: 1.0                  # observation-error standard deviation
      file: null                # observation file (NetCDF/HDF5, fdassim.observations.files); null: twin
      # several quantities, each with its schedule: see fdassim.observations.settings
    filter:
      scheme: etkf              # enkf | etkf | ensrf | denkf | enkf_n | lenkf | letkf | eakf
      options: {}
      product: tiled            # a transform's X W: tiled (BLAS, bitwise) | ordered | petsc
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
import enum
import hashlib
import importlib
import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .analysis.product import Product
from .errors import ConfigError
from .observations.settings import ObservationSettings
from .typed import OnRestart, build, setting

__all__ = ["Settings", "load", "parse", "restart_differences", "SCHEMES", "SMOOTHERS", "MODELS", "INFLATIONS",
           "PARAMETERS"]

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
    "icestream": "fdassim.models.icestream:IceStream",  # Icepack's synthetic ice stream (ICESEE section 4.1)
    "marine": "fdassim.models.marine:MarineGlacier",  # a marine glacier with bed relief (ICESEE section 4.2)
    "flowline": "fdassim.models.flowline:Flowline",  # a marine-terminating flowline glacier with a sill (1-D)
}
#: parameter treatment -> "module:Class" (applied after each analysis, in order)
PARAMETERS = {
    "clip": "fdassim.parameters:Clip",
    "beta": "fdassim.parameters:BetaBounds",
    "under_relaxed": "fdassim.parameters:UnderRelaxed",
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
    name: str = setting(doc="the model: " + ", ".join(MODELS))
    options: dict = setting(default_factory=dict, doc="the model's options (see the model's own table below)")


@dataclass(frozen=True)
class EnsembleSettings:
    size: int = setting(doc="number of members N (at least 2)")
    ranks_per_member: int | None = setting(
        None, restart=OnRestart.FREE,
        doc="ranks over which each member's mesh is split; null: 1, or more when mpiexec gives more ranks "
            "than members (a restart must split the mesh the same way)")
    initial_perturbations: dict | None = setting(
        None, doc="random fields added to the initial members, {field: {model, std, length, ...}} "
                  "(see the README's random fields)")
    model_noise: dict | None = setting(
        None, doc="AR(1) model noise added after each forecast, {rho, truth, fields: {field: {model, std, length}}}")

    def __post_init__(self):
        if self.size < 2:
            raise ConfigError(f"ensemble.size: must be at least 2, got {self.size}")
        if self.ranks_per_member is not None and self.ranks_per_member < 1:
            raise ConfigError(f"ensemble.ranks_per_member: must be at least 1, got {self.ranks_per_member}")


@dataclass(frozen=True)
class FilterSettings:
    scheme: str = setting(doc="the analysis scheme: " + ", ".join(SCHEMES))
    options: dict = setting(default_factory=dict, doc="the scheme's options (see the scheme's own table below)")
    product: Product = setting(Product.TILED, doc="how a transform's X W is formed on each rank's rows: tiled "
                               "(BLAS on fixed global row tiles, bitwise split-invariant), ordered (no BLAS, "
                               "bitwise on any library) or petsc (PETSc dense matrices, round-off only)")


@dataclass(frozen=True)
class SmootherSettings:
    method: str = setting(doc="the fixed-lag smoother: " + ", ".join(SMOOTHERS))
    options: dict = setting(default_factory=dict, doc="the smoother's options (see the smoother's own table below)")


@dataclass(frozen=True)
class RunSettings:
    cycles: int = setting(restart=OnRestart.GROW,
                          doc="number of analysis cycles; raise it and --restart to extend a stored run")
    interval: float = setting(doc="time between analyses, a whole number of the model's time steps")
    t0: float = setting(0.0, doc="time of the initial ensemble; the analyses are at t0 + k * interval")
    seed: int = setting(1, doc="seed of every random draw (initial members, observation noise, perturbations)")
    twin: bool = setting(True, doc="a twin experiment: draw a truth too and observe it; false needs observations.file")
    progress: bool = setting(True, restart=OnRestart.FREE, doc="show a progress bar (on rank 0)")

    def __post_init__(self):
        if self.cycles < 1:
            raise ConfigError(f"run.cycles: must be at least 1, got {self.cycles}")
        if not (np.isfinite(self.interval) and self.interval > 0):
            raise ConfigError(f"run.interval: must be positive, got {self.interval}")
        if self.seed < 1:
            raise ConfigError(f"run.seed: must be a positive integer, got {self.seed}")


@dataclass(frozen=True)
class OutputSettings:
    path: str = setting("run.h5", restart=OnRestart.FREE,
                        doc="the run's HDF5 store (relative to the working directory; missing directories are made)")
    store_ensembles: bool = setting(
        True, restart=OnRestart.FREE,
        doc="store every member at every cycle; false keeps means, spreads (standard deviations), truth and "
            "diagnostics only (a restart keeps what the store was made with)")
    ensembles_every: int = setting(
        1, restart=OnRestart.FREE,
        doc="store the members at cycles 0, k, 2k, ... and the last only (means and spreads at every cycle); "
            "1: every cycle (a restart keeps what the store was made with)")
    commit_seconds: float = setting(
        1.0, restart=OnRestart.FREE,
        doc="at most this many seconds between commits to the store (a killed run loses at most this much "
            "work); 0 commits every cycle")

    def __post_init__(self):
        if not (np.isfinite(self.commit_seconds) and self.commit_seconds >= 0):
            raise ConfigError(f"output.commit_seconds: must be a number >= 0, got {self.commit_seconds}")
        if self.ensembles_every < 1:
            raise ConfigError(f"output.ensembles_every: must be a whole number >= 1, got {self.ensembles_every}; "
                              "to store no members at all, set output.store_ensembles: false")
        if not self.store_ensembles and self.ensembles_every != 1:
            raise ConfigError(f"output.ensembles_every: {self.ensembles_every} asks for members every "
                              f"{self.ensembles_every} cycles but output.store_ensembles is false (no members); "
                              "remove one of the two")

    @property
    def every(self) -> int:
        """Store the ensembles every this many cycles (0: never)."""
        return self.ensembles_every if self.store_ensembles else 0


@dataclass(frozen=True)
class Settings:
    """The validated settings of a run, with the objects they describe already built."""

    model: ModelSettings = setting(doc="the model")
    ensemble: EnsembleSettings = setting(doc="the ensemble")
    observations: ObservationSettings = setting(doc="what is observed, and with what error")
    run: RunSettings = setting(doc="the cycles")
    filter: FilterSettings | None = setting(None, doc="the analysis scheme of a filter run (or give smoother:)")
    smoother: SmootherSettings | None = setting(None, doc="the fixed-lag smoother of a smoother run (or give filter:)")
    inflation: tuple = setting((), doc="inflation, applied in order: a list of {kind: options} "
                                       "(kinds: " + ", ".join(INFLATIONS) + ")")
    output: OutputSettings = setting(default_factory=OutputSettings, doc="where the run is stored",
                                     restart=OnRestart.FREE)
    parameters: tuple = setting((), doc="treatments of parameter fields after each analysis, in order: a list of "
                                        "{kind: options} (kinds: clip, beta, under_relaxed)")
    inversion: dict | None = setting(
        None, doc="friction inferred after each analysis from the analysed thickness and the observed velocity "
                  "(Icepack models with a carried friction): {velocity_std, length, bounds: [lo, hi], scale, "
                  "max_iterations, target: members | mean, quantity} (see the README's hybrid assimilation-inversion)")

    def __post_init__(self):
        if (self.filter is None) == (self.smoother is None):
            given = "both" if self.filter is not None else "neither"
            raise ConfigError(f"give exactly one of filter: (a filter run) and smoother: (a smoother run); got {given}")
        used = None if self.inversion is None else self.inversion.get("quantity", "velocity")
        unused = [name for name, q in self.observations.named().items() if not q.assimilate and name != used]
        if unused:
            raise ConfigError(f"observations.quantities.{unused[0]}.assimilate: false, but no step uses it (only "
                              "the hybrid inversion's quantity, inversion.quantity, may be left out of the analysis); "
                              "remove assimilate: false")

    def resolved(self) -> str:
        """Every setting with its default filled in, and the objects built from them (YAML)."""
        import yaml

        data = dataclasses.asdict(self, dict_factory=lambda items: {k: getattr(v, "value", v) for k, v in items})
        method = {"scheme": repr(self.make_scheme())} if self.filter else {"smoother": repr(self.make_smoother())}
        data["built"] = {"model": repr(self.make_model()), **method, "inflation": repr(self.make_inflation())}
        return yaml.safe_dump(data, sort_keys=False)

    def make_model(self):
        return build(_choice(MODELS, self.model.name, "model.name"), self.model.options, "model.options")

    def make_initial_perturbations(self):
        """The random-field perturbations of the initial members, or ``None``."""
        from .perturbations.settings import make_initial_perturbations

        p = make_initial_perturbations(self.ensemble.initial_perturbations)
        if p is not None:
            p.check(self.make_model(), "ensemble.initial_perturbations")
        return p

    def make_model_noise(self):
        """The AR(1) model noise added after each forecast, or ``None``."""
        from .perturbations.settings import make_model_noise

        noise = make_model_noise(self.ensemble.model_noise)
        if noise is not None:
            noise.check(self.make_model(), "ensemble.model_noise.fields")
        return noise

    def make_scheme(self):
        cls = _choice(SCHEMES, self.filter.scheme, "filter.scheme")
        return build(cls, self.filter.options, "filter.options")

    def make_smoother(self):
        cls = _choice(SMOOTHERS, self.smoother.method, "smoother.method")
        return build(cls, self.smoother.options, "smoother.options")

    def make_parameters(self) -> list:
        """The treatments of parameter fields (``parameters: [{clip: {field, lower, upper}}, ...]``)."""
        from .parameters import check_treatments

        items = _built_list(self.parameters, "parameters", PARAMETERS)
        if items:
            check_treatments(items, [f.name for f in self.make_model().fields], list(self.observations.named()))
        return items

    def make_inversion(self):
        """The hybrid inversion step run after each analysis, or ``None``."""
        if self.inversion is None:
            return None
        from .models.inversion import FrictionInversion, HybridInversion

        if self.smoother is not None:
            raise ConfigError("inversion: it runs after a filter's analyses; a smoother run (smoother:) takes none")
        options = dict(self.inversion)
        quantity = options.pop("quantity", "velocity")
        if quantity not in self.observations.named():
            raise ConfigError(f"inversion.quantity: {quantity!r} is not an observed quantity; observed: "
                              f"{', '.join(self.observations.named())}")
        model = self.make_model()
        carried = [f.name for f in getattr(model, "fields", ()) if f.carried]
        if "friction" not in carried:
            raise ConfigError(f"inversion: the model {self.model.name!r} carries no friction (it carries {carried}); "
                              "give it one (icestream: options: {friction_carried: true})")
        return HybridInversion(build(FrictionInversion, options, "inversion"), quantity=quantity)

    def make_inflation(self):
        """The inflation (a Chain when several are given), or ``None``."""
        if not self.inflation:
            return None
        from .inflation import Chain

        items = _built_list(self.inflation, "inflation", INFLATIONS)
        return items[0] if len(items) == 1 else Chain(tuple(items))

    def result_settings(self) -> dict[str, Any]:
        """The settings a restart must keep, flattened to ``{key path: value}`` (JSON-able).

        Every key whose :func:`~fdassim.typed.setting` says :attr:`OnRestart.SAME`, with
        the model's, scheme's and inflations' options taken from the built objects (so a
        default written out equals one left out), and the contents of input files (their
        SHA-256). Stored with the run and compared by :func:`restart_differences`.
        """
        out: dict[str, Any] = {}
        for section in dataclasses.fields(self):
            value = getattr(self, section.name)
            if value is None:  # filter: or smoother:, whichever is not given
                out[section.name] = None
            if section.name == "inflation" or not dataclasses.is_dataclass(value):
                continue
            for f in dataclasses.fields(value):
                key = f"{section.name}.{f.name}"
                if f.metadata.get("restart", OnRestart.SAME) is not OnRestart.SAME or f.name == "options":
                    continue
                v = getattr(value, f.name)
                _flatten(v, key, out)
                if f.metadata.get("input_file") and v is not None:
                    with open(v, "rb") as fh:
                        out[f"{key} (contents, sha256)"] = hashlib.sha256(fh.read()).hexdigest()
        _flatten(self.make_model(), "model.options", out)
        if self.filter is not None:
            _flatten(self.make_scheme(), "filter.options", out)
        if self.smoother is not None:
            _flatten(self.make_smoother(), "smoother.options", out)
        out["inflation"] = [next(iter(e)) for e in self.inflation]
        built = self.make_inflation()
        items = () if built is None else (built.items if len(self.inflation) > 1 else (built,))
        for i, (entry, item) in enumerate(zip(self.inflation, items)):
            _flatten(item, f"inflation[{i}].{next(iter(entry))}", out)
        _flatten(list(self.parameters), "parameters", out)
        for key, v in list(out.items()):  # files named deeper down: several quantities', conditions'
            if key.endswith(".file") and isinstance(v, str) and f"{key} (contents, sha256)" not in out:
                with open(v, "rb") as fh:
                    out[f"{key} (contents, sha256)"] = hashlib.sha256(fh.read()).hexdigest()
        return json.loads(json.dumps(out))  # the form it takes in the store


def _built_list(entries, key: str, registry: dict[str, str]) -> list:
    """The objects of a list of ``{kind: options}`` mappings, kinds from ``registry``."""
    items = []
    for i, entry in enumerate(entries):
        k = f"{key}[{i}]"
        if not isinstance(entry, dict) or len(entry) != 1:
            raise ConfigError(f"{k}: expected one {{kind: options}} mapping, kinds: {', '.join(registry)}")
        (kind, options), = entry.items()
        items.append(build(_choice(registry, kind, k), options, f"{k}.{kind}"))
    return items


def _flatten(value: Any, key: str, out: dict) -> None:
    """``value`` as ``{key path: JSON value}``: dataclasses and mappings by field, enums by value."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            if f.init and not f.name.startswith("_"):
                _flatten(getattr(value, f.name), f"{key}.{f.name}", out)
    elif isinstance(value, dict) and value:
        for k, v in value.items():
            _flatten(v, f"{key}.{k}", out)
    elif isinstance(value, enum.Enum):
        _flatten(value.value, key, out)
    elif isinstance(value, (list, tuple, np.ndarray)) and any(
            dataclasses.is_dataclass(v) or isinstance(v, dict) for v in value):
        for i, v in enumerate(value):
            _flatten(v, f"{key}[{i}]", out)
    elif isinstance(value, np.ndarray):
        out[key] = value.tolist()
    elif isinstance(value, (np.generic,)):
        out[key] = value.item()
    elif value is None or isinstance(value, (str, int, float, bool, list, tuple, dict)):
        out[key] = list(value) if isinstance(value, tuple) else value
    else:  # an object we cannot look into: its type, never its address
        text = repr(value)
        out[key] = type(value).__name__ if " at 0x" in text else text


def restart_differences(stored: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The keys whose values differ between a stored run's :meth:`Settings.result_settings` and
    this run's, as ``key: stored -> now`` lines (empty when a restart may go on)."""
    missing = object()
    lines = []
    for key in sorted(set(stored) | set(now)):
        a, b = stored.get(key, missing), now.get(key, missing)
        if a != b:
            show = [("(not set)" if v is missing else json.dumps(v)) for v in (a, b)]
            lines.append(f"{key}: {show[0]} (stored) -> {show[1]} (now)")
    return lines


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
    if not isinstance(settings.parameters, tuple):
        raise ConfigError(f"parameters: expected a list of {{kind: options}}, got {settings.parameters!r}")
    # build everything once now, so a bad option fails before any work starts
    model = settings.make_model()
    if settings.filter is not None:
        _check_domain(settings.make_scheme(), model)
    else:
        settings.make_smoother()
    settings.make_inflation()
    settings.make_initial_perturbations()
    settings.make_model_noise()
    settings.make_parameters()
    settings.make_inversion()
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
            data = yaml.load(fh, Loader=_strict_loader(path))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse(data, path)


def _strict_loader(path: str):
    """A safe YAML loader that refuses a key given twice in one mapping (YAML takes the last)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key != "<<" and key in seen:
                raise ConfigError(f"{path}: line {line}: duplicate key {key!r} (first given on line {seen[key]}); "
                                  "give each key once")
            seen.setdefault(key, line)
        return loader.construct_mapping(node, deep=deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return Loader
