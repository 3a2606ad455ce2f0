"""The Model protocol: the few methods a model gives fdassim.

The model chooses the physics; fdassim chooses how to run an ensemble of it (Icepack's
model/solver split). A model provides:

``fields``
    The state's fields (:class:`~fdassim.layout.FieldSpec`), in order; parameters marked.
``new_state(comm)``
    A fresh state for one member on the spatial communicator ``comm``: a dict from field
    names to Firedrake ``Function``\\ s on a mesh built on ``comm``, or to numpy arrays.
``initial_state(state, rng)``
    Fill ``state`` in place with a draw from the initial distribution, using only ``rng``
    (a :class:`numpy.random.Generator` seeded by member, so the draw does not depend on how
    members are dealt over ranks). The truth of a twin experiment is one more draw.
``forecast(state, t0, t1)``
    Advance ``state`` in place from time ``t0`` to ``t1``.

Optional attributes:

``batched``
    ``True`` for array models whose ``forecast`` accepts fields of shape ``(n, k)`` holding
    ``k`` members as columns; the ensemble then advances all its local members at once.
``coordinates``
    ``{field: (n, d) array}`` positions of array fields, for localization (Function fields
    take theirs from the mesh).

Nothing else is required: Lorenz-96, a Firedrake PDE, Icepack and ISSM plug in the same way.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from ..layout import FieldSpec, State

__all__ = ["Model", "check_model"]


@runtime_checkable
class Model(Protocol):
    """What a model provides (see the module docstring)."""

    fields: tuple[FieldSpec, ...]

    def new_state(self, comm) -> State: ...

    def initial_state(self, state: State, rng: np.random.Generator) -> None: ...

    def forecast(self, state: State, t0: float, t1: float) -> None: ...


def check_model(model) -> None:
    """Raise ``TypeError`` naming what ``model`` lacks of the :class:`Model` protocol."""
    missing = [name for name in ("fields", "new_state", "initial_state", "forecast") if not hasattr(model, name)]
    if missing:
        raise TypeError(f"{type(model).__name__} is not a fdassim Model: it lacks {', '.join(missing)} "
                        "(see fdassim.models.base)")
    if not all(isinstance(f, FieldSpec) for f in model.fields):
        raise TypeError(f"{type(model).__name__}.fields must be FieldSpec instances")
