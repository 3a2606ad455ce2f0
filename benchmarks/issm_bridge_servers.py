"""Persistent servers against one MATLAB/Octave process per forecast; one server against several.

Forecasts the flowline test model (``issm_bridge/matlab/testmodel``) for a set of members
over one cycle, three ways, in the same run:

1. one-off: a new ``octave --eval`` process per member forecast (read the member file, run
   the transient, write the reply), as a bridge without persistent servers would;
2. one persistent server: the members' forecasts sent as requests to one server;
3. ``S`` persistent servers (default 2): the same requests dealt over them.

It prints the wall time of each and the ratios against the one-off baseline; on an idle
machine with ``S`` cores the third should approach 1/S of the second.

    python benchmarks/issm_bridge_servers.py [--members 8] [--servers 2] [--years 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from issm_bridge.domain import TESTMODEL_DIR  # noqa: E402
from issm_bridge.engine import require_engine  # noqa: E402
from issm_bridge.model import ISSM  # noqa: E402
from issm_bridge.server import MATLAB_DIR, matlab_string  # noqa: E402


def _members(model: ISSM, n: int):
    """Prior draws of ``n`` members (one describe through a short-lived domain)."""
    domain = model.domain(None)
    try:
        members = [model.member(domain, i) for i in range(n)]
        for m in members:
            m.initial_state(np.random.default_rng([5, m.index]))
        return [{k: v.copy() for k, v in m.state.items()} for m in members]
    finally:
        domain.close()


def one_off(model: ISSM, states, years: float, folder: Path) -> float:
    """A new Octave process per forecast."""
    from issm_bridge.exchange import member_path, write_member

    engine = require_engine(model.engine or "octave")
    tic = time.perf_counter()
    for i, state in enumerate(states):
        request, reply = member_path(folder, 0, i, "in"), member_path(folder, 0, i, "out")
        write_member(request, state, cycle=0, member=i, t0=0.0, t1=years, paths=model.md_paths(), job=model.job())
        engine.run(f"addpath({matlab_string(MATLAB_DIR)}); addpath({matlab_string(TESTMODEL_DIR)}); "
                   f"fdassim_forecast({matlab_string(request)}, {matlab_string(reply)}, 0, {i}, 'x')", timeout=600)
    return time.perf_counter() - tic


def persistent(model: ISSM, states, years: float) -> float:
    """The members through a domain's pool (started before the clock starts)."""
    domain = model.domain(None)
    try:
        members = [model.member(domain, i) for i in range(len(states))]
        for m, s in zip(members, states):
            for k in s:
                m.state[k][...] = s[k]
        tic = time.perf_counter()
        for m in members:
            m.forecast(0.0, years)
        return time.perf_counter() - tic
    finally:
        domain.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--years", type=float, default=5.0)
    args = parser.parse_args()
    model = ISSM(engine="octave")
    states = _members(model, args.members)
    with tempfile.TemporaryDirectory() as folder:
        base = one_off(model, states, args.years, Path(folder))
    one = persistent(ISSM(engine="octave", servers=1), states, args.years)
    many = persistent(ISSM(engine="octave", servers=args.servers), states, args.years)
    print(f"{args.members} member forecasts of {args.years:g} years (flowline test model, GNU Octave):")
    print(f"  one Octave process per forecast   {base:7.2f} s   1.00")
    print(f"  one persistent server             {one:7.2f} s   {one / base:.2f}")
    print(f"  {args.servers} persistent servers            {many:7.2f} s   {many / base:.2f}"
          f"   ({many / one:.2f} of one server)")


if __name__ == "__main__":
    main()
