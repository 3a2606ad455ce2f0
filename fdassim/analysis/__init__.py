"""Analysis schemes: pure numpy maths on ensembles and observation-space quantities.

Nothing here imports Firedrake or PETSc. See :mod:`fdassim.analysis.base` for the
prepare/apply split that lets one parallel mechanism apply every scheme.
"""

from .base import AnalysisContext, ObsError, Rows, Scheme, TransformUpdate, Update, combine, row_mean
from .denkf import DEnKF
from .enkf import EnKF, InnovationCovariance, Innovations
from .enkf_n import EnKFN
from .ensrf import EnSRF
from .etkf import ETKF
from .kalman import kalman_analysis
from .lenkf import LocalizedEnKF
from .letkf import LETKF, FiniteSize
from .localization import AdaptiveLocalization, Localization, gaspari_cohn
from .regression import Increments, RegressionFilter

__all__ = ["AnalysisContext", "ObsError", "Rows", "Scheme", "TransformUpdate", "Update",
           "combine", "row_mean", "kalman_analysis",
           "EnKF", "Innovations", "InnovationCovariance", "ETKF", "EnSRF", "DEnKF", "EnKFN", "LocalizedEnKF",
           "LETKF", "FiniteSize",
           "Localization", "AdaptiveLocalization", "gaspari_cohn", "RegressionFilter", "Increments"]
