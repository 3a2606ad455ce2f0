"""The ``issm-bridge`` command line.

``issm-bridge check``                     find MATLAB or GNU Octave and run a command through it
``issm-bridge start [--servers S]``       start a pool of servers that outlives the command
``issm-bridge status``                    the pool's servers: live or dead
``issm-bridge stop``                      stop the pool's servers and all they started
``issm-bridge run params.yaml --member I``  one member's forecast over one cycle
``issm-bridge assimilate params.yaml``    the ensemble run through fdassim (``model: {name: issm}``)

Every command takes ``--help``. A pool lives in a directory (``--dir``, default
``.issm-bridge``) holding its state file ``pool.json``; ``run`` and ``assimilate`` use it
with ``--pool DIR``, or start their own servers.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time

from .engine import EngineKind, find_engine
from .errors import BridgeError

__all__ = ["main"]

DEFAULT_DIR = ".issm-bridge"


def _seconds(text: str) -> float:
    """argparse type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive, finite number of seconds, got {text!r}")
    return value


def _integer(minimum: int):
    """argparse type: an integer of at least ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text!r}")
        return value

    return parse


def _check(args: argparse.Namespace) -> int:
    engine = find_engine(prefer=args.engine)
    if engine is None:
        print("issm-bridge: error: neither MATLAB nor GNU Octave is on PATH; install one "
              "(Debian: apt-get install octave)", file=sys.stderr)
        return 1
    out = engine.run("disp(6*7)", timeout=args.timeout)
    ok = out.strip().endswith("42")
    print(f"{engine.kind.value} at {engine.path}: {'works' if ok else 'unexpected output: ' + out.strip()}")
    return 0 if ok else 1


def _start(args: argparse.Namespace) -> int:
    from .domain import TESTMODEL_DIR
    from .pool import Pool

    tic = time.perf_counter()
    paths = (TESTMODEL_DIR, *(os.path.abspath(p) for p in args.path))
    pool = Pool.start(args.servers, engine=args.engine, directory=args.dir, paths=paths,
                      startup=("fdassim_issm_path",) if args.issm else (), detached=True,
                      startup_timeout=args.startup_timeout)
    pool.close()  # release this process's claim; the servers go on
    print(f"issm-bridge: {len(pool)} {pool.servers[0].engine.kind.value} server(s) started in {args.dir} "
          f"in {time.perf_counter() - tic:.1f} s (pids {', '.join(str(s.pid) for s in pool.servers)})")
    return 0


def _status(args: argparse.Namespace) -> int:
    from .pool import read_state
    from .procs import alive, group_members

    state = read_state(args.dir)
    dead = 0
    print(f"pool in {args.dir}: {len(state['servers'])} server(s)")
    for s in state["servers"]:
        live = alive(s["pid"], s["started"])
        dead += not live
        group = group_members(s["pid"]) if live else []
        print(f"  {s['name']}: pid {s['pid']} {'alive' if live else 'DEAD'}"
              + (f", {len(group)} process(es) in its group" if live else ""))
    if dead:
        print(f"issm-bridge: {dead} server(s) dead; `issm-bridge stop --dir {args.dir}` then start again, "
              "or let `run`/`assimilate` restart them", file=sys.stderr)
    return 1 if dead else 0


def _stop(args: argparse.Namespace) -> int:
    from .pool import Pool

    pool = Pool.attach(args.dir)
    pool.stop()
    print(f"issm-bridge: stopped {len(pool)} server(s) in {args.dir}")
    return 0


def _model(args: argparse.Namespace):
    """The settings of params.yaml, with the command line's --pool and --timeout in model.options."""
    import yaml

    from fdassim.config import parse

    with open(args.params) as fh:
        text = fh.read()
    data = yaml.safe_load(text)
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or model.get("name") != "issm":
        raise BridgeError(f"{args.params}: model.name must be issm for issm-bridge (got "
                          f"{model.get('name') if isinstance(model, dict) else model!r})")
    options = dict(model.get("options") or {})
    if args.pool is not None:
        options["pool"] = args.pool
    if args.timeout is not None:
        options["timeout"] = args.timeout
    data["model"] = {**model, "options": options}
    return parse(data, args.params), text


def _run(args: argparse.Namespace) -> int:
    from fdassim.streams import Stream, generator

    from .exchange import read_member, write_member

    settings, _ = _model(args)
    model = settings.make_model()
    t0 = settings.run.t0 if args.t0 is None else args.t0
    t1 = t0 + settings.run.interval if args.t1 is None else args.t1
    tic = time.perf_counter()
    domain = model.domain(None)
    try:
        member = model.member(domain, args.member)
        if args.input:
            source = read_member(args.input, cycle=args.cycle, member=args.member, names=model.names)
            for name in model.names:
                member.state[name][...] = source.fields[name]
        else:  # member i's prior draw, the one an ensemble run with this seed starts from
            member.initial_state(generator(settings.run.seed, Stream.INITIAL, 0, member=args.member))
        started = time.perf_counter()
        member.forecast(t0, t1)
        took = time.perf_counter() - started
        write_member(args.output, member.state, cycle=args.cycle, member=args.member, t0=t0, t1=t1)
        report = domain.report()
    finally:
        domain.close()
    print(f"issm-bridge: member {args.member} from t = {t0:g} to {t1:g} in {took:.2f} s "
          f"({report['matlab_seconds']:.2f} s inside {model.engine or 'MATLAB/Octave'}; start-up and set-up "
          f"{started - tic:.2f} s) -> {args.output}")
    for name in model.names:
        v = member.state[name]
        print(f"  {name:<10} min {v.min():12.4g}  mean {v.mean():12.4g}  max {v.max():12.4g}")
    return 0


def _assimilate(args: argparse.Namespace) -> int:
    from fdassim.run import run

    settings, text = _model(args)
    logging.getLogger("issm_bridge.domain").setLevel(logging.INFO)
    run(settings, config_text=text, restart=args.restart, overwrite=args.overwrite)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="issm-bridge", description=__doc__.split("\n\n")[0].strip(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="See the README's ISSM section for the file format and params.yaml.")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the servers' console output")
    sub = parser.add_subparsers(dest="command", required=True)
    engines = [k.value for k in EngineKind]

    p = sub.add_parser("check", help="find MATLAB or GNU Octave and check that it runs")
    p.add_argument("--engine", choices=engines, default="matlab", help="which to prefer (default matlab)")
    p.add_argument("--timeout", type=_seconds, default=120.0, help="seconds before giving up (default 120)")
    p.set_defaults(func=_check)

    p = sub.add_parser("start", help="start a pool of servers that outlives this command")
    p.add_argument("--dir", default=DEFAULT_DIR, help=f"the pool's directory (default {DEFAULT_DIR})")
    p.add_argument("--servers", type=_integer(1), default=2, help="number of servers (default 2)")
    p.add_argument("--engine", choices=engines, default=None, help="matlab or octave (default: MATLAB if on PATH)")
    p.add_argument("--issm", action="store_true", help="put ISSM (ISSM_DIR) on the servers' path")
    p.add_argument("--path", action="append", default=[], help="a directory for the servers' MATLAB path "
                   "(where your setup function lives); repeat for more")
    p.add_argument("--startup-timeout", type=_seconds, default=120.0, help="seconds a server may take to start")
    p.set_defaults(func=_start)

    p = sub.add_parser("status", help="list the pool's servers, live or dead (exit 1 if any is dead)")
    p.add_argument("--dir", default=DEFAULT_DIR, help=f"the pool's directory (default {DEFAULT_DIR})")
    p.set_defaults(func=_status)

    p = sub.add_parser("stop", help="stop the pool's servers and everything they started")
    p.add_argument("--dir", default=DEFAULT_DIR, help=f"the pool's directory (default {DEFAULT_DIR})")
    p.set_defaults(func=_stop)

    for name, helptext in (("run", "forecast one member over one cycle and write its state"),
                           ("assimilate", "run the ensemble assimilation of params.yaml through fdassim")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("params", help="the settings file; model.name must be issm")
        p.add_argument("--pool", default=None, help="use the running pool in this directory (issm-bridge start)")
        p.add_argument("--timeout", type=_seconds, default=None, help="seconds one forecast may take")
        if name == "run":
            p.add_argument("--member", type=_integer(0), default=0, help="the member (default 0)")
            p.add_argument("--cycle", type=_integer(0), default=0, help="the cycle written in (and checked of) the files")
            p.add_argument("--input", default=None, help="start from this member file instead of the member's "
                           "prior draw (the one an ensemble run with run.seed starts from)")
            p.add_argument("--output", default="member.mat", help="where to write the state (default member.mat)")
            p.add_argument("--t0", type=float, default=None, help="start time (default run.t0)")
            p.add_argument("--t1", type=float, default=None, help="end time (default t0 + run.interval)")
            p.set_defaults(func=_run)
        else:
            mode = p.add_mutually_exclusive_group()
            mode.add_argument("--restart", action="store_true", help="continue from the last completed cycle")
            mode.add_argument("--overwrite", action="store_true", help="replace an existing store")
            p.set_defaults(func=_assimilate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``issm-bridge`` command."""
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    root = logging.getLogger("issm_bridge")
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    if args.verbose:
        logging.getLogger("issm_bridge.server").setLevel(logging.INFO)
    from fdassim.errors import FdassimError

    try:
        return args.func(args)
    except (BridgeError, FdassimError, OSError) as exc:
        print(f"issm-bridge: error: {exc}", file=sys.stderr)
        return 2
    finally:
        root.removeHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
