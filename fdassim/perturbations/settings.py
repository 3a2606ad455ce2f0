"""``ensemble.initial_perturbations`` and ``ensemble.model_noise`` in ``params.yaml``::

    ensemble:
      size: 20
      initial_perturbations:          # a random field added to each member's initial field
        thickness: {model: gaussian, std: 20.0, length: 5000.0}
        bed:                          # conditioned on observations (kriging)
          model: gaussian
          std: 50.0
          length: 4000.0
          condition: {file: bed.nc, quantity: bed}   # the quantity's first time; std from the file
        friction: {model: exponential, std: 0.1, length: [8000.0, 4000.0], angle: 0.3}
      model_noise:                    # AR(1) noise added after each forecast
        rho: 0.9                      # correlation of consecutive noises, in [0, 1)
        truth: true                   # false: the truth of a twin gets no noise (ICESEE)
        fields:
          thickness: {model: evensen, std: 1.0, length: 3000.0}

``model``: ``gaussian`` or ``exponential`` (gstools, :class:`~fdassim.perturbations.RandomField`)
or ``evensen`` (:class:`~fdassim.perturbations.PseudoRandomField`; ``length: null`` with
``resolution: [nx, ny]`` gives ICESEE's default decorrelation length). ``condition`` (initial
perturbations of gaussian and exponential fields only) reads group ``quantity`` (default: the
field's name) of an observation file (:mod:`fdassim.observations.files`, checked when the
settings are read) and conditions every member on its first row of values, within their
``std`` (from the file's ``std`` or ``covariance`` diagonal, else ``std`` here; 0: exactly).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigError
from ..typed import build

__all__ = ["FieldSettings", "make_initial_perturbations", "make_model_noise"]


@dataclass(frozen=True)
class ConditionSettings:
    file: str
    quantity: str | None = None
    std: float | None = None

    def __post_init__(self):
        import os

        if not os.path.isfile(self.file):
            raise ConfigError(f"file: no such observation file {self.file!r}")

    def observed(self, field: str):
        """The :class:`~fdassim.parameters.Observed` of the file's first time (checked)."""
        import numpy as np

        from ..observations.files import read_quantity
        from ..parameters import Observed

        group = self.quantity or field
        data = read_quantity(self.file, group)
        where = f"{self.file}:/{group}"
        if data.positions is None:
            raise ConfigError(f"file: {where} gives index, not position: conditioning needs positions (obs, space)")
        from_file = data.std if data.covariance is None else np.sqrt(np.diag(data.covariance))
        if from_file is not None and self.std is not None:
            raise ConfigError(f"std: the errors are given both in {where} and here; keep one")
        std = from_file if from_file is not None else np.full(data.values.shape[1], self.std or 0.0)
        if np.any(std < 0):
            raise ConfigError(f"std: must be >= 0, got {self.std!r}")
        return Observed(data.positions, data.values[0], std)


@dataclass(frozen=True)
class FieldSettings:
    model: Literal["gaussian", "exponential", "evensen"]
    std: float
    length: float | tuple[float, ...] | None = None
    angle: float = 0.0
    resolution: tuple[int, int] | None = None
    condition: ConditionSettings | None = None

    def make(self):
        from .fields import PseudoRandomField, RandomField

        if self.model == "evensen":
            if isinstance(self.length, tuple) or self.angle:
                raise ConfigError("length: evensen fields are isotropic: give one length (and no angle)")
            return PseudoRandomField(std=self.std, length=self.length, resolution=self.resolution)
        if self.length is None or self.resolution is not None:
            raise ConfigError(f"length: required for {self.model} fields (resolution is for evensen fields)")
        return RandomField(self.model, std=self.std, length=self.length, angle=self.angle)


def _fields(data, key: str, conditions: dict | None = None) -> dict:
    """The generators of ``{field: FieldSettings}``; conditions go into ``conditions`` (or are
    refused when it is ``None``)."""
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{key}: expected a mapping {{field: {{model, std, length}}}}, got {data!r}")
    out = {}
    for name, spec in data.items():
        k = f"{key}.{name}"
        s = build(FieldSettings, spec, k)
        try:
            out[name] = s.make()
        except ConfigError as exc:
            raise ConfigError(f"{k}.{exc}") from None
        if s.condition is not None:
            if conditions is None:
                raise ConfigError(f"{k}.condition: model noise is not conditioned on observations; "
                                  "condition the initial perturbations")
            if s.model == "evensen":
                raise ConfigError(f"{k}.condition: kriging needs a gstools field (model gaussian or exponential)")
            try:
                conditions[name] = s.condition.observed(name)
            except ConfigError as exc:
                msg = str(exc)
                raise ConfigError(msg if msg.startswith(s.condition.file) else f"{k}.condition.{msg}") from None
    return out


def make_initial_perturbations(data, key: str = "ensemble.initial_perturbations"):
    """The :class:`~fdassim.perturbations.InitialPerturbations` of a settings mapping, or ``None``."""
    from .apply import InitialPerturbations

    if data is None:
        return None
    conditions: dict = {}
    fields = _fields(data, key, conditions)
    return InitialPerturbations(fields, conditions)


def make_model_noise(data, key: str = "ensemble.model_noise"):
    """The :class:`~fdassim.perturbations.ModelNoise` of ``{rho, truth, fields}``, or ``None``."""
    from .apply import ModelNoise

    if data is None:
        return None
    if not isinstance(data, dict) or set(data) - {"rho", "truth", "fields"} or "fields" not in data:
        raise ConfigError(f"{key}: expected {{rho: ..., truth: ..., fields: {{field: {{model, std, length}}}}}}, "
                          f"got {data!r}")
    rho = data.get("rho", 0.0)
    if isinstance(rho, bool) or not isinstance(rho, (int, float)):
        raise ConfigError(f"{key}.rho: expected a number in [0, 1), got {rho!r}")
    truth = data.get("truth", True)
    if not isinstance(truth, bool):
        raise ConfigError(f"{key}.truth: expected true or false, got {truth!r}")
    try:
        return ModelNoise(_fields(data["fields"], f"{key}.fields"), rho=float(rho), truth=truth)
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(key) else f"{key}.{msg}") from None
