"""The members of one rank and the pool of servers they share.

:class:`ISSMDomain` is what fdassim's per-member protocol calls a *domain*: built once per
rank, it starts (or attaches to) a pool of MATLAB/Octave servers and learns from them the
set-up model's vertices and initial fields. :class:`ISSMMember` is one member: its state
(numpy arrays of vertex values), its draw from the prior, and its forecast.

Forecast rounds
---------------
fdassim asks the members for their forecasts one after the other. The first request of a
cycle sends *every* member of the domain to the pool at once (a *round*: each member's
state written to its member file, one task per member, dealt over the servers as they
free up), then waits for its own; each later member of the round finds its forecast
running or done and waits only for it. A member whose state changed after it was sent,
or that was not part of the round, is sent alone. So members run ``S`` at a time on ``S``
servers while the protocol stays one member at a time.

Each round has a number (0 for the first round of the process); a member's files carry it
as their ``cycle`` with the member, the forecast times and the request's token, all checked
when the reply is read (:mod:`issm_bridge.exchange`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from dataclasses import dataclass, field

import numpy as np

from . import faults
from .errors import ExchangeError
from .exchange import member_path, read_member, write_mat, write_member
from .model import ISSM, Backend
from .pool import Batch, Pool, Task
from .server import MATLAB_DIR, matlab_string

__all__ = ["ISSMDomain", "ISSMMember", "TESTMODEL_DIR"]

log = logging.getLogger("issm_bridge.domain")

#: the test model's MATLAB files
TESTMODEL_DIR = MATLAB_DIR / "testmodel"


def digest(state: dict[str, np.ndarray]) -> bytes:
    """A fingerprint of a state's values (to tell whether it changed since it was sent)."""
    h = hashlib.blake2b(digest_size=16)
    for name in sorted(state):
        h.update(name.encode())
        h.update(np.ascontiguousarray(state[name], dtype=float).tobytes())
    return h.digest()


def _world() -> tuple[int, int]:
    """(rank, size) of this process in MPI's world, ``(0, 1)`` without MPI running."""
    try:
        from mpi4py import MPI
    except ImportError:
        return 0, 1
    if not MPI.Is_initialized():
        return 0, 1
    return MPI.COMM_WORLD.rank, MPI.COMM_WORLD.size


def start_pool(model: ISSM) -> Pool:
    """The pool a model's members use: the running one at ``model.pool``, or a new one.

    Under ``mpiexec`` every rank starts servers of its own, in ``<directory>/rank<r>`` when
    a directory is given.
    """
    if model.pool:  # its servers have the path `issm-bridge start --path` gave them
        return Pool.attach(model.pool)
    startup = ("fdassim_issm_path",) if model.backend is Backend.ISSM else ()
    paths = (TESTMODEL_DIR, *(os.path.abspath(p) for p in model.matlab_path))
    rank, size = _world()
    directory = model.directory
    if directory is not None and size > 1:
        directory = os.path.join(directory, f"rank{rank}")
    pool = Pool.start(model.servers, engine=model.engine, directory=directory, paths=paths,
                      startup=startup, startup_timeout=model.startup_timeout)
    pool.temporary = pool.temporary and not model.keep_files
    return pool


@dataclass
class _Slot:
    position: int  #: the task's position in the round's batch
    sent: bytes    #: digest of the state sent
    token: str
    paths: tuple   #: request file, intermediate file (inversion), reply file


@dataclass
class _Round:
    number: int
    t0: float
    t1: float
    batch: Batch
    slots: dict[int, _Slot] = field(default_factory=dict)


class ISSMDomain:
    """The pool and the members of one rank (see the module docstring).

    Parameters
    ----------
    model
        The :class:`~issm_bridge.model.ISSM` settings.
    comm
        The rank's spatial communicator (one rank: the state's arrays are not split).
    """

    def __init__(self, model: ISSM, comm=None):
        self.model = model
        self.comm = comm
        self.members: dict[int, ISSMMember] = {}
        self.rounds = 0
        self.forecasts = 0
        self._pending: list[_Round] = []
        self.timing = {"write": 0.0, "wait": 0.0, "read": 0.0}
        self.pool = start_pool(model)
        try:
            self.exchange = self.pool.directory / "exchange" / f"p{os.getpid()}"
            self.exchange.mkdir(parents=True, exist_ok=True)
            self._describe()
        except BaseException:
            self.pool.close()
            raise

    def _describe(self) -> None:
        """Ask a server for the set-up model's vertices and initial fields."""
        path = self.exchange / "describe.mat"
        write_mat(path, {"job": self.model.job(), "paths": self.model.md_paths()})
        r = self.pool.call(f"fdassim_describe({matlab_string(path)})", timeout=self.model.timeout, nout=1,
                           label="describing the set-up model")
        xy = np.column_stack([np.atleast_1d(np.asarray(r["x"], float)), np.atleast_1d(np.asarray(r["y"], float))])
        mean = {k: np.atleast_1d(np.asarray(v, float)).reshape(-1) for k, v in r["fields"].items()}
        bad = {k: v.size for k, v in mean.items() if v.size != len(xy)}
        if bad:
            raise ExchangeError(f"the set-up model has {len(xy)} vertices but field(s) {bad} have other sizes: "
                                "every state field must hold one value per vertex")
        self.n = len(xy)
        self.model.described.update(xy=xy, mean=mean, n=self.n)

    # -- forecasts -------------------------------------------------------------------------------
    def forecast(self, member: ISSMMember, t0: float, t1: float) -> None:
        """Advance ``member`` from ``t0`` to ``t1`` (sending the whole round first if it is a new cycle)."""
        if not self._pending or (self._pending[-1].t0, self._pending[-1].t1) != (t0, t1):
            self._pending = []
            self._dispatch([m for i, m in sorted(self.members.items()) if i >= 0], t0, t1)
        rnd = next((r for r in reversed(self._pending) if member.index in r.slots), None)
        if rnd is None or rnd.slots[member.index].sent != digest(member.state):
            rnd = self._dispatch([member], t0, t1)  # not in the round, or changed since it was sent
        slot = rnd.slots.pop(member.index)
        tic = time.perf_counter()
        rnd.batch.result(slot.position)  # raises the member's error (MATLAB's message, or the server's)
        self.timing["wait"] += time.perf_counter() - tic
        tic = time.perf_counter()
        reply = read_member(slot.paths[-1], cycle=rnd.number, member=member.index, token=slot.token,
                            names=self.model.names)
        if (reply.t0, reply.t1) != (t0, t1):
            raise ExchangeError(f"{slot.paths[-1]} holds the forecast from {reply.t0} to {reply.t1}, "
                                f"not {t0} to {t1} (member {member.index})")
        for name in self.model.names:
            member.state[name][...] = reply.fields[name]
        if not self.model.keep_files:
            for p in slot.paths:
                p.unlink(missing_ok=True)
        self.timing["read"] += time.perf_counter() - tic
        self.forecasts += 1
        self._pending = [r for r in self._pending if r.slots]

    def _dispatch(self, members: list[ISSMMember], t0: float, t1: float) -> _Round:
        """Write the members' files and submit their forecasts: one round."""
        tic = time.perf_counter()
        number, self.rounds = self.rounds, self.rounds + 1
        job, paths = self.model.job(), self.model.md_paths()
        tasks, slots = [], {}
        for pos, m in enumerate(members):
            token = f"{number}-{m.index}-{secrets.token_hex(4)}"
            request = member_path(self.exchange, number, m.index, "in")
            reply = member_path(self.exchange, number, m.index, "out")
            reply.unlink(missing_ok=True)
            write_member(request, m.state, cycle=number, member=m.index, t0=t0, t1=t1, paths=paths, job=job)
            args = f"{number}, {m.index}, {matlab_string(token)}"
            code = faults.prefix(m.index, number, self.exchange)
            files: tuple = (request, reply)
            if self.model.inversion is not None and not m.fresh:
                inverted = member_path(self.exchange, number, m.index, "inverted")
                code += (f"fdassim_invert({matlab_string(request)}, {matlab_string(inverted)}, {args}); ")
                files = (request, inverted, reply)
                request = inverted
            code += f"fdassim_forecast({matlab_string(request)}, {matlab_string(reply)}, {args})"
            label = f"member {m.index} from t = {t0:g} to {t1:g}"
            tasks.append(Task(code, label))
            slots[m.index] = _Slot(pos, digest(m.state), token, files)
        rnd = _Round(number, t0, t1, self.pool.submit(tasks, timeout=self.model.timeout, retries=self.model.retries),
                     slots)
        self._pending.append(rnd)
        self.timing["write"] += time.perf_counter() - tic
        return rnd

    def report(self) -> dict[str, float]:
        """Seconds spent writing member files, waiting for servers, reading replies; inside MATLAB; restarts."""
        return {**self.timing, **self.pool.timing()}

    # -- lifecycle hooks ---------------------------------------------------------------------------
    def start(self) -> None:
        """fdassim's start hook: the pool is already up (it was needed to describe the model)."""

    def close(self) -> None:
        """fdassim's close hook: stop the servers this process started (or release the attached pool)."""
        self._pending = []
        r = self.report()
        log.info("%d forecast(s) in %d round(s) on %d server(s): writing member files %.2f s, waiting for the "
                 "servers %.2f s (%.2f s inside MATLAB/Octave), reading replies %.2f s; %d server restart(s)",
                 self.forecasts, self.rounds, len(self.pool), r["write"], r["wait"], r["matlab_seconds"],
                 r["read"], r["restarts"])
        self.pool.close()
        if not self.model.keep_files:
            for p in self.exchange.glob("*.mat"):
                p.unlink(missing_ok=True)


class ISSMMember:
    """One member: its state (vertex values of each field), its prior draw and its forecast."""

    def __init__(self, domain: ISSMDomain, index: int):
        self.domain = domain
        self.index = index
        self.state = {name: np.zeros(domain.n) for name in domain.model.names}
        #: drawn from the prior and not forecast since (no analysis to invert from yet)
        self.fresh = False
        if index >= 0:
            domain.members[index] = self

    def initial_state(self, rng: np.random.Generator) -> None:
        """Draw from the prior: the set-up model's fields plus smooth random perturbations."""
        d = self.domain.model.described
        self.domain.model.draw(self.state, d["mean"], d["xy"], rng)
        self.fresh = True

    def forecast(self, t0: float, t1: float) -> None:
        """Run the ISSM transient from ``t0`` to ``t1`` on a server (inverting the friction first if asked)."""
        self.domain.forecast(self, t0, t1)
        self.fresh = False

    def close(self) -> None:
        """fdassim's close hook: leave the domain's rounds."""
        self.domain.members.pop(self.index, None)
