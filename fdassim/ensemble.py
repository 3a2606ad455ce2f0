"""The distributed ensemble: members on ``firedrake.Ensemble`` groups, rows for the analysis.

Layout
------
``firedrake.Ensemble(comm, M)`` splits the ``P`` ranks into ``G = P / M`` groups of ``M``
ranks. Each group holds whole members, each member's mesh partitioned over the group's
``M`` ranks (its spatial communicator). Members are dealt to groups in rounds: member ``i``
lives on group ``i % G``. A twin experiment's truth is one more member, dealt the same way.

For the analysis the ensemble is transposed (Anderson & Collins 2007) from member-complete
storage (each rank holds whole members' local vectors) to ensemble-complete *rows* (each rank
holds all members for a slice of its local degrees of freedom) with one all-to-all over the
ensemble communicator; the row-wise update runs there and the result is transposed back.
Every row's result is independent of the split, so the analysis is the same, bit for bit,
whatever the number of groups; memory per rank stays at its share of ``n x N``. The full
ensemble is never gathered on one rank.

Members
-------
Each local member is an object (:mod:`fdassim.models.base`): the model's own, holding its
solvers and caches, or a :class:`~fdassim.models.base.SimpleMember` made from a simple
model's three functions. The members of one spatial communicator share its *domain* (mesh,
function spaces). :meth:`Ensemble.start` and :meth:`Ensemble.close` call the models'
lifecycle hooks; the cycle calls them on every rank, ``close`` also after an error. Fields
marked ``carried`` are left out of the analysis layout and kept in a second one
(:attr:`Ensemble.carried`) for the restart.

Predicted observations ``H(x_i)`` are computed where member ``i`` lives and allgathered, so
every rank holds the small ``m x N`` matrix, in member order.
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np

from . import faults
from .analysis.base import Rows
from .checks import check_memory
from .errors import ConfigError, MemberFailure, ModelError
from .layout import Layout, State
from .models.base import Member, call_hook, check_model, make_domain, make_member
from .streams import Stream, generator

__all__ = ["Ensemble", "auto_ranks_per_member"]


class Ensemble:
    """An ensemble of model states distributed over MPI ranks.

    Parameters
    ----------
    model
        A :class:`~fdassim.models.base.Model`.
    size
        Number of members ``N`` (at least 2).
    comm
        The communicator of the whole run (default ``COMM_WORLD``).
    ranks_per_member
        ``M``: ranks over which each member's mesh is split; must divide the size of ``comm``.
        ``None`` chooses it (:func:`auto_ranks_per_member`): 1 while there are no more ranks
        than members, else the smallest split that leaves no group without a member (1 for
        batched array models, whose states cannot be split).
    truth
        Carry one extra member, the truth of a twin experiment (index ``N``).

    The cycle starts and closes the model's resources itself; outside it, use the ensemble
    as a context manager (``with Ensemble(...) as ensemble:``) to have them closed.

    Raises
    ------
    ConfigError
        If ``size < 2`` or ``ranks_per_member`` does not divide the number of ranks (checked
        on every rank before any communication, so no rank hangs).
    """

    def __init__(self, model, size: int, comm=None, ranks_per_member: int | None = None, truth: bool = False):
        import firedrake
        from mpi4py import MPI

        check_model(model)
        comm = comm or MPI.COMM_WORLD
        if int(size) != size or size < 2:
            raise ConfigError(f"ensemble size must be an integer >= 2, got {size!r}")
        if ranks_per_member is None:
            ranks_per_member = 1 if getattr(model, "batched", False) else auto_ranks_per_member(
                comm.size, int(size) + bool(truth))
        if ranks_per_member < 1 or comm.size % ranks_per_member:
            raise ConfigError(f"ranks_per_member={ranks_per_member} must divide the number of ranks ({comm.size})")
        self.model = model
        self.size = int(size)
        self.has_truth = bool(truth)
        self.n_total = self.size + self.has_truth  # members, plus the truth
        self.fd = firedrake.Ensemble(comm, ranks_per_member)
        self.comm = self.fd.comm  # spatial: the ranks of one member
        self.ens_comm = self.fd.ensemble_comm  # one rank per group, same spatial rank
        self.world = comm
        G, g = self.ens_comm.size, self.ens_comm.rank
        self.groups = G
        #: what the members on this spatial communicator share (mesh, spaces, servers)
        self.domain = make_domain(model, self.comm)
        # one member first (group g's first is member g; a spare where the group has none),
        # for the shapes and the memory check before the others are made
        head = make_member(model, self.domain, g if g < self.n_total else -1)
        #: one state with every field, for shapes and spaces (a local member's, or a spare's)
        self.template: State = head.state
        analysed = tuple(f for f in model.fields if not f.carried)
        carried = tuple(f for f in model.fields if f.carried)
        arrays = [f.name for f in model.fields if not hasattr(self.template[f.name], "function_space")]
        if arrays and self.comm.size > 1:
            raise ConfigError(f"field(s) {arrays} are arrays, which cannot be split over ranks: "
                              f"use ranks_per_member=1 (got {ranks_per_member})")
        self.geometry = getattr(model, "geometry", None)  # checked by check_model (read once the domain is made)
        positions = None if self.geometry is None else self.geometry.positions
        self.layout = Layout(analysed, self.template, self.comm, positions)
        #: where the carried fields sit in a member's carried vector (``None`` without any)
        self.carried = Layout(carried, self.template, self.comm, positions) if carried else None
        coords = self.layout.coords
        if self.geometry is not None and coords is not None and coords.shape[1] != self.geometry.dim:
            raise ConfigError(f"the model's geometry is {self.geometry.dim}-D (periodic={self.geometry.periodic}) "
                              f"but its fields' positions are {coords.shape[1]}-D")
        check_memory(self.layout.n_global, self.n_total, comm)  # before any other per-member allocation
        self.owner = np.arange(self.n_total) % G  # member -> group
        self.local = [int(i) for i in np.flatnonzero(self.owner == g)]  # members held here
        self.batched = bool(getattr(model, "batched", False))
        #: the local members' objects, in the order of ``local``
        self.members: list[Member] = [head] + [make_member(model, self.domain, i) for i in self.local[1:]] \
            if self.local else []
        self._spare = None if self.members else head
        # every group must split the mesh identically for the row transpose
        sizes = self.ens_comm.allgather(self.layout.n_local)
        if len(set(sizes)) != 1:
            raise ConfigError(f"groups hold different local state sizes {sizes}: the mesh must be built the "
                              "same way on every spatial communicator")
        n = self.layout.n_local
        self._bounds = [(g2 * n) // G for g2 in range(G + 1)]
        lo, hi = self._bounds[g], self._bounds[g + 1]
        self.row_slice = slice(lo, hi)
        L = self.layout
        self.rows = Rows(start=L.offset + lo, total=L.n_global,
                         coords=None if L.coords is None else L.coords[lo:hi],
                         is_param=L.is_param[lo:hi])

    @property
    def periodic(self) -> tuple | None:
        """The periods of the model's domain (``None`` when the model states no geometry)."""
        return None if self.geometry is None else self.geometry.periodic

    @property
    def states(self) -> list[State]:
        """The local members' states, in the order of ``local``."""
        return [m.state for m in self.members]

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, cycle: int = 0) -> None:
        """Call the ``start`` hooks of the domain and the local members, on every rank.

        Raises
        ------
        ModelError
            On every rank, if the domain's ``start`` failed on some rank.
        MemberFailure
            On every rank, naming the lowest member whose ``start`` failed.
        """
        domain_failure = None
        if hasattr(self.model, "domain"):
            try:
                call_hook(self.domain, "start")
            except Exception as exc:
                domain_failure = f"rank {self.world.rank}: {type(exc).__name__}: {exc}"
        failures = [v for v in self.world.allgather(domain_failure) if v is not None]
        if failures:
            raise ModelError(f"the model's domain failed to start on {failures[0]}")
        failure = None
        for i, member in zip(self.local, self.members):
            try:
                call_hook(member, "start")
            except Exception as exc:
                failure = (i, f"start failed: {type(exc).__name__}: {exc}")
                break
        self.raise_if_failed(failure, cycle)

    def close(self, quiet: bool = False) -> None:
        """Call the ``close`` hooks of every local member, then of the domain (no communication).

        Every hook is called even if an earlier one fails. ``quiet`` (used while another error
        propagates) turns close failures into warnings.

        Raises
        ------
        ModelError
            If a hook failed (and not ``quiet``), naming the member and the error.
        """
        errors = []
        members = list(zip(self.local, self.members))
        if self._spare is not None:
            members.append((-1, self._spare))
        for i, member in members:
            try:
                call_hook(member, "close")
            except Exception as exc:  # every member is closed, whatever one of them raises
                errors.append(f"member {i}: {type(exc).__name__}: {exc}")
        if hasattr(self.model, "domain"):
            try:
                call_hook(self.domain, "close")
            except Exception as exc:
                errors.append(f"domain: {type(exc).__name__}: {exc}")
        if errors:
            message = f"closing the model on rank {self.world.rank} failed: " + "; ".join(errors)
            if quiet:
                warnings.warn(message, RuntimeWarning, stacklevel=2)
            else:
                raise ModelError(message)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        self.close(quiet=exc_type is not None)

    # -- members -----------------------------------------------------------------------------
    def initialize(self, seed: int) -> None:
        """Draw every local member's initial state from its own generator.

        Member ``i`` draws from the :attr:`~fdassim.streams.Stream.INITIAL` generator of
        ``(seed, cycle 0, i)``, the truth of a twin from the :attr:`~fdassim.streams.Stream.TRUTH`
        generator of ``seed`` (so it does not depend on the ensemble size), with its
        ``truth_state`` where the model defines one, else like the members.
        """
        for i, member in zip(self.local, self.members):
            if i == self.size:
                draw, rng = getattr(member, "truth_state", member.initial_state), generator(seed, Stream.TRUTH, 0)
            else:
                draw, rng = member.initial_state, generator(seed, Stream.INITIAL, 0, member=i)
            draw(rng)

    def forecast(self, t0: float, t1: float, cycle: int) -> None:
        """Advance every local member from ``t0`` to ``t1``; stop on all ranks if one fails.

        Raises
        ------
        MemberFailure
            On every rank, naming the lowest failing member and why (an exception from the
            model, or NaN/Inf in its state).
        """
        failure: tuple[int, str] | None = None
        if self.batched and self.members:
            failure = self._forecast_batch(t0, t1)
            faults.point("forecast", cycle)
        else:
            for i, member in zip(self.local, self.members):
                try:
                    member.forecast(t0, t1)
                except Exception as exc:  # any model error becomes a MemberFailure on every rank
                    failure = (i, f"{type(exc).__name__}: {exc}")
                    break
                if not self._finite(member.state):
                    failure = (i, "the forecast returned NaN or Inf")
                    break
                faults.point("forecast", cycle)
        self.raise_if_failed(failure, cycle)

    def _finite(self, state: State) -> bool:
        ok = np.all(np.isfinite(self.layout.flatten(state)))
        return bool(ok and (self.carried is None or np.all(np.isfinite(self.carried.flatten(state)))))

    def _forecast_batch(self, t0, t1):
        names = [f.name for f in self.model.fields]
        states = self.states
        batch = {k: np.stack([np.asarray(s[k]) for s in states], axis=-1) for k in names}
        try:
            self.model.forecast(batch, t0, t1)
        except Exception as exc:
            return self._find_failing_member(t0, t1, exc)
        for j, (i, s) in enumerate(zip(self.local, states)):
            for k in names:
                s[k][...] = batch[k][..., j]
            if not self._finite(s):
                return (i, "the forecast returned NaN or Inf")
        return None

    def _find_failing_member(self, t0, t1, exc):
        """After a batched forecast raised: forecast each member alone (from copies) to name it."""
        names = [f.name for f in self.model.fields]
        for i, s in zip(self.local, self.states):
            alone = {k: np.asarray(s[k])[..., None].copy() for k in names}
            try:
                self.model.forecast(alone, t0, t1)
            except Exception as own:
                return (i, f"{type(own).__name__}: {own} (found by forecasting the batch's members one by one)")
        return (self.local[0], f"{type(exc).__name__}: {exc} (batched forecast of members {self.local}; "
                               "each of them alone succeeded)")

    # -- carried fields ------------------------------------------------------------------------
    def carried_values(self) -> list[tuple[int, np.ndarray]]:
        """``(member, local values)`` of the carried fields of every local member (and the truth)."""
        if self.carried is None:
            return []
        return [(i, self.carried.flatten(s)) for i, s in zip(self.local, self.states)]

    def set_carried(self, values: dict[int, np.ndarray]) -> None:
        """Write carried values (``{member: local values}``) back into the local members."""
        for i, s in zip(self.local, self.states):
            self.carried.unflatten(values[i], s)

    def raise_if_failed(self, failure: tuple[int, str] | None, cycle: int) -> None:
        """Share every rank's verdict; raise the same :class:`MemberFailure` on all ranks."""
        verdicts = [v for v in self.world.allgather(failure) if v is not None]
        if verdicts:
            member, reason = min(verdicts)
            raise MemberFailure(member, cycle, reason)

    # -- observation space -------------------------------------------------------------------
    def observe(self, H: Callable[[State], np.ndarray], members: list[int] | None = None) -> np.ndarray:
        """Predicted observations of every member, ``Y[:, i] = H(x_i)``, on every rank.

        ``H`` is called where each member lives, on all ranks of its spatial communicator, and
        must return the whole ``(m,)`` vector there. Returns ``(m, n_total)`` in member order.
        """
        mine = np.array([np.asarray(H(s), dtype=float).reshape(-1) for s in self.states])
        m_here = mine.shape[1] if mine.size else -1
        ms = {v for v in self.ens_comm.allgather(m_here) if v >= 0}
        if len(ms) != 1:
            raise ConfigError(f"the observation operator returned vectors of different lengths {sorted(ms)}")
        m = ms.pop()
        parts = self.ens_comm.allgather(mine.reshape(-1, m) if mine.size else np.empty((0, m)))
        Y = np.empty((m, self.n_total))
        for g, part in enumerate(parts):
            Y[:, self.owner == g] = part.T
        return Y

    # -- the transpose -------------------------------------------------------------------------
    def to_rows(self) -> np.ndarray:
        """This rank's rows of every member (and the truth): ``(nb, n_total)``."""
        from mpi4py import MPI

        G, b = self.groups, self._bounds
        X = np.empty((len(self.states), self.layout.n_local))
        for j, s in enumerate(self.states):
            self.layout.flatten(s, out=X[j])
        if G == 1:
            return X.T.copy()
        send = np.concatenate([X[:, b[g]:b[g + 1]].reshape(-1) for g in range(G)])
        nb = b[self.ens_comm.rank + 1] - b[self.ens_comm.rank]
        counts_in = [int(np.sum(self.owner == g)) * nb for g in range(G)]
        counts_out = [len(self.local) * (b[g + 1] - b[g]) for g in range(G)]
        recv = np.empty(sum(counts_in))
        self.ens_comm.Alltoallv([send, (counts_out, _displs(counts_out)), MPI.DOUBLE],
                                [recv, (counts_in, _displs(counts_in)), MPI.DOUBLE])
        rows = np.empty((nb, self.n_total))
        pos = 0
        for g in range(G):
            ids = np.flatnonzero(self.owner == g)
            rows[:, ids] = recv[pos:pos + ids.size * nb].reshape(ids.size, nb).T
            pos += ids.size * nb
        return rows

    def from_rows(self, rows: np.ndarray, all_members: bool = False) -> None:
        """Write this rank's rows back into the members' states.

        ``rows`` holds the ``N`` members (the truth is kept as it is), or with
        ``all_members`` every member and the truth (``n_total`` columns, for a restart).
        """
        from mpi4py import MPI

        G, b = self.groups, self._bounds
        ncol = self.n_total if all_members else self.size
        if rows.ndim != 2 or rows.shape[1] != ncol:
            raise ValueError(f"expected rows of {ncol} members, got shape {rows.shape}")
        keep = [j for j, i in enumerate(self.local) if i < ncol]
        if G == 1:
            X = rows.T
        else:
            owner = self.owner[:ncol]
            send = np.concatenate([rows[:, owner == g].T.reshape(-1) for g in range(G)])
            nb = rows.shape[0]
            counts_out = [int(np.sum(owner == g)) * nb for g in range(G)]
            counts_in = [len(keep) * (b[g + 1] - b[g]) for g in range(G)]
            recv = np.empty(sum(counts_in))
            self.ens_comm.Alltoallv([send, (counts_out, _displs(counts_out)), MPI.DOUBLE],
                                    [recv, (counts_in, _displs(counts_in)), MPI.DOUBLE])
            X = np.empty((len(keep), self.layout.n_local))
            pos = 0
            for g in range(G):
                w = b[g + 1] - b[g]
                X[:, b[g]:b[g + 1]] = recv[pos:pos + len(keep) * w].reshape(len(keep), w)
                pos += len(keep) * w
        for j, x in zip(keep, X):
            self.layout.unflatten(x, self.states[j])

    # -- reductions over rows ------------------------------------------------------------------
    def sum_rows(self, values: np.ndarray) -> np.ndarray:
        """Sum a per-row quantity over all rows of all ranks (for diagnostics, not for updates)."""
        return self.world.allreduce(np.asarray(values, dtype=float))


def auto_ranks_per_member(ranks: int, members: int) -> int:
    """The smallest ``M`` dividing ``ranks`` with at most ``members`` groups of ``M`` ranks.

    With no more ranks than members every rank holds whole members (``M = 1``); with more,
    members' meshes are split so that no group is left without a member.

    Examples
    --------
    >>> auto_ranks_per_member(4, 20), auto_ranks_per_member(8, 3), auto_ranks_per_member(6, 4)
    (1, 4, 2)
    """
    return next(M for M in range(1, ranks + 1) if ranks % M == 0 and ranks // M <= members)


def _displs(counts):
    return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int).tolist()
