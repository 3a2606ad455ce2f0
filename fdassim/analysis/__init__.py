"""Analysis schemes: pure numpy maths on ensembles and observation-space quantities.

Nothing here imports Firedrake or PETSc. See :mod:`fdassim.analysis.base` for the
prepare/apply split that lets one parallel mechanism apply every scheme.
"""

from .base import (AnalysisContext, ObsError, Rows, Scheme, TransformUpdate, Update,
                   combine, member_rng)
from .kalman import kalman_analysis

__all__ = ["AnalysisContext", "ObsError", "Rows", "Scheme", "TransformUpdate", "Update",
           "combine", "member_rng", "kalman_analysis"]
