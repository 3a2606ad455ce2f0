"""``ensemble.initial_perturbations`` and ``ensemble.model_noise`` in ``params.yaml``::

    ensemble:
      size: 20
      initial_perturbations:          # a random field added to each member's initial field
        thickness: {model: gaussian, std: 20.0, length: 5000.0}
        friction: {model: exponential, std: 0.1, length: [8000.0, 4000.0], angle: 0.3}
      model_noise:                    # AR(1) noise added after each forecast
        rho: 0.9                      # correlation of consecutive noises, in [0, 1)
        fields:
          thickness: {model: evensen, std: 1.0, length: 3000.0}

``model``: ``gaussian`` or ``exponential`` (gstools, :class:`~fdassim.perturbations.RandomField`)
or ``evensen`` (:class:`~fdassim.perturbations.PseudoRandomField`; ``length: null`` with
``resolution: [nx, ny]`` gives ICESEE's default decorrelation length).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigError
from ..typed import build

__all__ = ["FieldSettings", "make_initial_perturbations", "make_model_noise"]


@dataclass(frozen=True)
class FieldSettings:
    model: Literal["gaussian", "exponential", "evensen"]
    std: float
    length: float | tuple[float, ...] | None = None
    angle: float = 0.0
    resolution: tuple[int, int] | None = None

    def make(self):
        from .fields import PseudoRandomField, RandomField

        if self.model == "evensen":
            if isinstance(self.length, tuple) or self.angle:
                raise ConfigError("length: evensen fields are isotropic: give one length (and no angle)")
            return PseudoRandomField(std=self.std, length=self.length, resolution=self.resolution)
        if self.length is None or self.resolution is not None:
            raise ConfigError(f"length: required for {self.model} fields (resolution is for evensen fields)")
        return RandomField(self.model, std=self.std, length=self.length, angle=self.angle)


def _fields(data, key: str) -> dict:
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
    return out


def make_initial_perturbations(data, key: str = "ensemble.initial_perturbations"):
    """The :class:`~fdassim.perturbations.InitialPerturbations` of a settings mapping, or ``None``."""
    from .apply import InitialPerturbations

    return None if data is None else InitialPerturbations(_fields(data, key))


def make_model_noise(data, key: str = "ensemble.model_noise"):
    """The :class:`~fdassim.perturbations.ModelNoise` of ``{rho, fields}``, or ``None``."""
    from .apply import ModelNoise

    if data is None:
        return None
    if not isinstance(data, dict) or set(data) - {"rho", "fields"} or "fields" not in data:
        raise ConfigError(f"{key}: expected {{rho: ..., fields: {{field: {{model, std, length}}}}}}, got {data!r}")
    rho = data.get("rho", 0.0)
    if isinstance(rho, bool) or not isinstance(rho, (int, float)):
        raise ConfigError(f"{key}.rho: expected a number in [0, 1), got {rho!r}")
    try:
        return ModelNoise(_fields(data["fields"], f"{key}.fields"), rho=float(rho))
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(key) else f"{key}.{msg}") from None
