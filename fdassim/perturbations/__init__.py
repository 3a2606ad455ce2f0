"""Random fields and perturbations: gstools and Evensen fields."""

from .fields import PseudoRandomField, RandomField, icesee_length

__all__ = ["RandomField", "PseudoRandomField", "icesee_length"]
