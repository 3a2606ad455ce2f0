"""A full-form test model with a carried field, and a script running a twin with it.

Lorenz-96 stepped by the second-order Adams-Bashforth scheme,

.. math::
    x_{k+1} = x_k + \\Delta t \\left(\\tfrac32 f(x_k) - \\tfrac12 f(x_{k-1})\\right),

needs the previous tendency :math:`f(x_{k-1})` to continue: it is a carried field, not
assimilated, and a restart that lost it would continue differently. Members record their
lifecycle calls in the model's ``events`` list, and a member can be told to fail.

Run as a script (``python ab2.py STORE [--restart]``) it makes a twin run of 6 cycles
stored at STORE, for the restart-after-kill tests.
"""

import sys

import numpy as np

from fdassim.layout import FieldSpec
from fdassim.models.lorenz96 import tendency


class AB2Lorenz96:
    fields = (FieldSpec("x"), FieldSpec("previous", carried=True))

    def __init__(self, n=12, dt=0.01, fail_member=None, fail_at=None, fail_close=None):
        self.n, self.dt = n, dt
        self.fail_member, self.fail_at, self.fail_close = fail_member, fail_at, fail_close
        self.events = []

    @property
    def geometry(self):
        from fdassim.geometry import Geometry

        ring = np.arange(self.n, dtype=float)
        return Geometry(periodic=(float(self.n),), positions={"x": ring, "previous": ring})

    def domain(self, comm):
        return AB2Domain(self)

    def member(self, domain, index):
        return AB2Member(self, index)


class AB2Domain:
    def __init__(self, model):
        self.model = model

    def start(self):
        self.model.events.append(("start", "domain"))

    def close(self):
        self.model.events.append(("close", "domain"))


class AB2Member:
    def __init__(self, model, index):
        self.model, self.index = model, index
        self.state = {"x": np.zeros(model.n), "previous": np.zeros(model.n)}

    def start(self):
        self.model.events.append(("start", self.index))

    def close(self):
        self.model.events.append(("close", self.index))
        if self.index == self.model.fail_close:
            raise OSError("the server would not stop")

    def initial_state(self, rng):
        self.state["x"][:] = 8.0 + rng.standard_normal(self.model.n)
        self.state["previous"][:] = tendency(self.state["x"])

    def forecast(self, t0, t1):
        if self.index == self.model.fail_member and t0 >= self.model.fail_at:
            raise RuntimeError(f"solver diverged at t = {t0}")
        x, f_old = self.state["x"], self.state["previous"]
        for _ in range(round((t1 - t0) / self.model.dt)):
            f = tendency(x)
            x += self.model.dt * (1.5 * f - 0.5 * f_old)
            f_old[:] = f


def run(path, restart=False, comm=None):
    path = str(path)
    from fdassim import ETKF, Ensemble, Multiplicative, ObsError, Observations, Store, Subset, assimilate

    model = AB2Lorenz96()
    ensemble = Ensemble(model, 6, comm=comm, truth=True)
    observations = Observations(Subset(tuple(range(0, model.n, 2))), ObsError.from_std(1.0))
    times = 0.05 * np.arange(7)
    # commit every cycle (not every second), so a kill in cycle k leaves k cycles to restart from
    store = (Store.open(path, ensemble, commit_seconds=0) if restart
             else Store.create(path, ensemble, times, m=model.n // 2, commit_seconds=0))
    with store:
        return assimilate(ensemble, ETKF(), observations, times, seed=3, store=store, restart=restart,
                          inflation=Multiplicative(1.05), progress=False)


if __name__ == "__main__":
    run(sys.argv[1], restart="--restart" in sys.argv)
