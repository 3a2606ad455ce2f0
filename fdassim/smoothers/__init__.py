"""Fixed-lag ensemble smoothers (Grudzien & Bocquet 2022): EnKS, IEnKS, Lin-IEnKS, SIEnKS.

Each method is a frozen dataclass of options (lag, shift, MDA, finite-size variant, ...)
whose window algorithm works on rows of the distributed ensemble, like the filters;
:func:`smooth` runs it. The maths (window schedule and MDA weights, the Gauss-Newton
ensemble-space minimisation, the filter transforms) is pure numpy.
"""

from .base import Estimate, Smoother, WindowCost
from .cycle import SmootherResult, smooth
from .enks import EnKS
from .gauss_newton import GaussNewtonResult, Term, gauss_newton
from .ienks import IEnKS, LinIEnKS
from .sienks import SIEnKS, filter_transform
from .window import Window

__all__ = ["EnKS", "IEnKS", "LinIEnKS", "SIEnKS", "Smoother", "SmootherResult", "Window", "WindowCost",
           "Estimate", "GaussNewtonResult", "Term", "gauss_newton", "filter_transform", "smooth"]
