"""The final analysis as Firedrake fields: ensemble mean and spread in a ``CheckpointFile``.

The run store holds every cycle as arrays; for a mesh model one also wants the result as
Functions on the mesh, to plot or to start another Firedrake computation from. This module
writes, after the last cycle, the mesh and for each Function field its ensemble mean
(``<field>_mean``) and standard deviation (``<field>_std``) with Firedrake's
``CheckpointFile``, which reloads on any number of ranks.
"""

from __future__ import annotations

__all__ = ["write_fields"]


def write_fields(path: str, ensemble) -> list[str]:
    """Write the ensemble mean and spread of every Function field of ``ensemble`` to ``path``.

    Collective over the whole run. The sums over members use ensemble reductions (their
    rounding depends on the member split, which is fine for output; the analysis itself never
    does this). Returns the names saved (empty for models without Function fields).
    """
    import firedrake

    template = ensemble.template
    names = [f.name for f in ensemble.model.fields if hasattr(template[f.name], "function_space")]
    if not names:
        return []
    N = ensemble.size
    saved = []
    out = {}
    for name in names:
        V = template[name].function_space()
        s1, s2 = firedrake.Function(V), firedrake.Function(V)
        for i, state in zip(ensemble.local, ensemble.states):
            if i < N:  # members only, not the truth
                s1.dat.data[:] += state[name].dat.data_ro
                s2.dat.data[:] += state[name].dat.data_ro ** 2
        t1, t2 = firedrake.Function(V), firedrake.Function(V)
        ensemble.fd.allreduce(s1, t1)
        ensemble.fd.allreduce(s2, t2)
        mean = firedrake.Function(V, name=f"{name}_mean")
        std = firedrake.Function(V, name=f"{name}_std")
        mean.dat.data[:] = t1.dat.data_ro / N
        std.dat.data[:] = ((t2.dat.data_ro - N * mean.dat.data_ro ** 2).clip(min=0) / (N - 1)) ** 0.5
        out[name] = (mean, std)
    if ensemble.ens_comm.rank == 0:  # group 0 holds member 0: its ranks write
        mesh = template[names[0]].function_space().mesh()
        with firedrake.CheckpointFile(path, "w", comm=ensemble.comm) as ck:
            ck.save_mesh(mesh)
            for mean, std in out.values():
                ck.save_function(mean)
                ck.save_function(std)
                saved += [mean.name(), std.name()]
    ensemble.world.Barrier()
    return ensemble.world.bcast(saved, root=0)
