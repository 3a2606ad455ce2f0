"""The Model protocol: what a model gives fdassim.

The model chooses the physics; fdassim chooses how to run an ensemble of it (Icepack's
model/solver split). A model comes in one of two forms.

The simple form: three functions on a state
-------------------------------------------
For array models (Lorenz-96) and small PDEs, a model provides:

``fields``
    The state's fields (:class:`~fdassim.layout.FieldSpec`), in order; parameters and
    carried fields marked.
``new_state(comm)``
    A fresh state for one member on the spatial communicator ``comm``: a dict from field
    names to Firedrake ``Function``\\ s on a mesh built on ``comm``, or to numpy arrays.
``initial_state(state, rng)``
    Fill ``state`` in place with a draw from the initial distribution, using only ``rng``
    (a :class:`numpy.random.Generator` seeded by member, so the draw does not depend on how
    members are dealt over ranks). The truth of a twin experiment is one more draw.
``forecast(state, t0, t1)``
    Advance ``state`` in place from time ``t0`` to ``t1``.

Optional attributes of the simple form:

``batched``
    ``True`` for array models whose ``forecast`` accepts fields of shape ``(n, k)`` holding
    ``k`` members as columns; the ensemble then advances all its local members at once. If
    a batched forecast raises, the ensemble forecasts the members one at a time to name the
    one that fails.
``geometry``
    A :class:`~fdassim.geometry.Geometry`: the periods of the domain (Lorenz-96 is a ring)
    and the positions of the array fields' values (Function fields take theirs from the
    mesh). Every localized analysis uses it by default.

The ensemble wraps a simple model in :class:`SimpleMember` objects, so one mechanism runs both
forms.

The full form: per-member objects
---------------------------------
Models that hold solvers, meshes, files or servers (Icepack, ISSM) give each member its own
object instead of caching by member:

``fields``
    As above.
``domain(comm)`` (optional)
    What the members on the spatial communicator ``comm`` share: the mesh and function
    spaces, a pool of servers. Built once per communicator; the default domain is ``comm``.
``member(domain, index)``
    A new :class:`Member` for member ``index`` (``0 .. N - 1``; ``N`` is the truth of a
    twin experiment; ``-1`` a spare member made only to learn the state's layout on a group
    that holds no member).

A :class:`Member` has

``state``
    Its fields by name (every field of ``fields``, carried ones included), which fdassim
    reads and writes between forecasts.
``initial_state(rng)``
    Fill ``state`` with a draw from the initial distribution (as above).
``forecast(t0, t1)``
    Advance ``state`` in place.
``truth_state(rng)`` (optional)
    Fill ``state`` with the truth's initial state in a twin experiment whose truth is not a
    draw from the prior (a biased prior, as in ICESEE's twins); without it the truth is one
    more draw of ``initial_state``. A simple-form model may define ``truth_state(state, rng)``.

Lifecycle hooks
---------------
The domain and each member may define ``start()`` and ``close()``. The cycle
(:func:`fdassim.assimilate`) calls ``start`` on every rank before the first forecast (the
domain first, then the members) and ``close`` on every rank when the run ends, also when it
ends with an error (members first, then the domain), so solvers, files and servers are
released. ``close`` must not communicate (another rank may be on its way out) and must leave
``state`` readable: results are read after the run. A model should build its solvers lazily
in ``forecast`` too, so a member also works outside the cycle.

Carried fields
--------------
A field marked ``FieldSpec(name, carried=True)`` is not assimilated: the analysis never
sees it, but the model needs it to continue (Icepack's velocity, the initial guess of the
next nonlinear solve; the previous tendency of a multistep scheme). It is stored in the
run's restart slots with the state, so a killed run restarts bitwise.

Re-running members (smoothers)
------------------------------
The SIEnKS and the IEnKS re-run members from their window's start: a forecast must depend
only on the member's fields, carried ones included, never on state kept in the model or
member object between calls or on random draws of its own. Declare what one forecast keeps
for the next as a carried field; the smoother checks this before its first window and names
the fields that differ otherwise (:mod:`fdassim.smoothers.base`).

Nothing else is required: Lorenz-96, a Firedrake PDE, Icepack and ISSM plug in the same way.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import InputError
from ..geometry import Geometry
from ..layout import FieldSpec, State

__all__ = ["Model", "Member", "SimpleMember", "check_model", "make_domain", "make_member", "call_hook", "whole_steps"]

_SIMPLE = ("new_state", "initial_state", "forecast")


@runtime_checkable
class Model(Protocol):
    """What every model provides; see the module docstring for the two forms."""

    fields: tuple[FieldSpec, ...]


@runtime_checkable
class Member(Protocol):
    """One member of the full form: its state and how to draw and advance it."""

    state: State

    def initial_state(self, rng: np.random.Generator) -> None: ...

    def forecast(self, t0: float, t1: float) -> None: ...


class SimpleMember:
    """A :class:`Member` made from a simple-form model's three functions.

    Parameters
    ----------
    model
        A model of the simple form.
    comm
        The member's spatial communicator.
    """

    def __init__(self, model, comm):
        self.model = model
        self.state: State = model.new_state(comm)

    def initial_state(self, rng: np.random.Generator) -> None:
        self.model.initial_state(self.state, rng)

    def truth_state(self, rng: np.random.Generator) -> None:
        getattr(self.model, "truth_state", self.model.initial_state)(self.state, rng)

    def forecast(self, t0: float, t1: float) -> None:
        self.model.forecast(self.state, t0, t1)


def is_full(model) -> bool:
    """Whether ``model`` gives per-member objects (the full form)."""
    return hasattr(model, "member")


def check_model(model) -> None:
    """Raise ``TypeError`` naming what ``model`` lacks of the :class:`Model` protocol."""
    name = type(model).__name__
    if not hasattr(model, "fields"):
        raise TypeError(f"{name} is not a fdassim Model: it lacks fields (see fdassim.models.base)")
    if not is_full(model):
        missing = [m for m in _SIMPLE if not hasattr(model, m)]
        if missing:
            raise TypeError(f"{name} is not a fdassim Model: it lacks {', '.join(missing)} "
                            "(or a member(domain, index) method; see fdassim.models.base)")
    elif getattr(model, "batched", False):
        raise TypeError(f"{name}: batched forecasts belong to the simple form; a model with member() "
                        "advances its members one at a time")
    if not all(isinstance(f, FieldSpec) for f in model.fields):
        raise TypeError(f"{name}.fields must be FieldSpec instances")
    if all(f.carried for f in model.fields):
        raise TypeError(f"{name}.fields: every field is carried; at least one must be assimilated")
    geometry = getattr(model, "geometry", None)
    if geometry is not None and not isinstance(geometry, Geometry):
        raise TypeError(f"{name}.geometry must be a fdassim.geometry.Geometry or None, got {type(geometry).__name__}")


def make_domain(model, comm):
    """The domain the members on ``comm`` share (``comm`` itself unless the model says)."""
    return model.domain(comm) if hasattr(model, "domain") else comm


def make_member(model, domain, index: int) -> Member:
    """Member ``index`` of ``model`` on ``domain``: the model's own object, or a :class:`SimpleMember`."""
    if is_full(model):
        member = model.member(domain, index)
        missing = [a for a in ("state", "initial_state", "forecast") if not hasattr(member, a)]
        if missing:
            raise TypeError(f"{type(model).__name__}.member() returned a {type(member).__name__} lacking "
                            f"{', '.join(missing)} (see fdassim.models.base.Member)")
        return member
    return SimpleMember(model, domain)


def call_hook(obj, name: str) -> None:
    """Call ``obj.<name>()`` if ``obj`` defines it (the ``start`` and ``close`` hooks)."""
    hook = getattr(obj, name, None)
    if callable(hook):
        hook()


def whole_steps(t0: float, t1: float, dt: float, model: str) -> int:
    """The number of time steps ``dt`` from ``t0`` to ``t1``.

    Raises
    ------
    InputError
        If ``t1 - t0`` is negative or not a whole number of steps (naming ``model``).
    """
    steps = (t1 - t0) / dt
    n = round(steps)
    if n < 0 or abs(steps - n) > 1e-9 * max(1.0, abs(steps)):
        raise InputError(f"{model}: t1 - t0 = {t1!r} - {t0!r} is not a non-negative whole number of time "
                         f"steps dt = {dt!r}; choose analysis times on the model's time grid")
    return n
