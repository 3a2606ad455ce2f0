"""Observations: operators, quantities with schedules, files and quality control.

- operators on arrays (:mod:`~fdassim.observations.arrays`: :class:`Identity`,
  :class:`Subset`) and on Firedrake fields (:mod:`~fdassim.observations.points`:
  :class:`PointValues`, :func:`flight_lines`; :mod:`~fdassim.observations.nodal`:
  :class:`NodalValues` with a mask or every ``k``-th node, :class:`Speed`), each knowing the
  positions of its values, all giving the same values in the same order however the mesh is
  split over ranks;
- several observed quantities, each with its error and schedule
  (:mod:`~fdassim.observations.core`, :mod:`~fdassim.observations.schedule`);
- quality control (:mod:`~fdassim.observations.qc`);
- their layout in the run store (:mod:`~fdassim.observations.store`).
"""

from .arrays import Identity, Subset
from .core import Batch, Observations, ObsPlan, Quantity
from .nodal import NodalValues, Speed
from .onmesh import Box
from .points import PointValues, flight_lines
from .schedule import Schedule

__all__ = ["Identity", "Subset", "PointValues", "flight_lines", "NodalValues", "Speed", "Box",
           "Observations", "Quantity", "Schedule", "ObsPlan", "Batch"]
