"""Moved: point observations live in :mod:`fdassim.observations.points` (this name re-exports them)."""

from .observations.points import PointValues

__all__ = ["PointValues"]
