"""Random fields and perturbations: gstools and Evensen fields, initial perturbations, AR(1) model noise."""

from .apply import InitialPerturbations, ModelNoise
from .fields import PseudoRandomField, RandomField, icesee_length

__all__ = ["RandomField", "PseudoRandomField", "icesee_length", "InitialPerturbations", "ModelNoise"]
