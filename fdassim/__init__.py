"""fdassim: Firedrake-native ensemble data assimilation for ice-sheet models.

Importing :mod:`fdassim` is cheap and has no side effects: it does not import Firedrake or
PETSc. The analysis maths lives in :mod:`fdassim.analysis`; the Firedrake ensemble and the
assimilation cycle import Firedrake when they are used.
"""

__version__ = "0.1.0"
