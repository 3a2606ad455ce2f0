"""Figures and summary of the ice-stream twin, from its store (rank 0 only).

Every field is put in the order of its node positions (x, then y), so the store's values,
the year-0 fields and the free run line up whatever the mesh partition was.
"""

from __future__ import annotations

import json
import os

import numpy as np

from fdassim import plots

MAP_YEARS = (0, 5, 15, 25)


def by_position(xy: np.ndarray) -> np.ndarray:
    """The permutation that sorts positions ``(n, 2)`` by x, then y (stable: vector components
    of one node keep their order)."""
    key = np.round(xy / max(float(np.ptp(xy)), 1e-300) * 1e9)
    return np.lexsort(key.T[::-1])


def read(path: str) -> dict:
    """Truth, ensemble mean and spread of each field at each year 1..K, in position order."""
    import h5py

    out = {}
    with h5py.File(path, "r") as h5:
        for f in ("thickness", "velocity", "accumulation"):
            o = by_position(h5[f"coordinates/{f}"][...])
            ens = h5[f"ensemble/analysis/{f}"][...][:, o, :]
            out[f] = {"xy": h5[f"coordinates/{f}"][...][o], "truth": h5[f"truth/{f}"][...][:, o],
                      "mean": ens.mean(axis=2), "std": ens.std(axis=2, ddof=1)}
            if f == "velocity":  # the spread of the members' speeds
                out[f]["speed_std"] = speed(np.moveaxis(ens, 2, 1)).std(axis=1, ddof=1)
        out["times"] = h5["times"][...]
        out["timing"] = {"cycle": h5["timing/cycle"][...]}
    return out


def speed(v: np.ndarray) -> np.ndarray:
    """``|u|`` from interleaved components ``(..., 2n)``."""
    v = v.reshape(*v.shape[:-1], -1, 2)
    return np.hypot(v[..., 0], v[..., 1])


def make_figures(path: str, start: dict, free: dict, config, timing: dict) -> dict:
    """Write the figures and ``summary.txt``/``summary.json`` next to the store; return the summary.

    ``start`` and ``free`` hold, per field, year 0's truth and mean and the free run's yearly
    values, each in position order.
    """
    d = read(path)
    out = os.path.dirname(path)
    years = np.concatenate([[0.0], d["times"][1:]])
    series = {}
    for f in ("thickness", "velocity", "accumulation"):
        series[f] = {"truth": np.vstack([start[f]["truth"], d[f]["truth"]]),
                     "mean": np.vstack([start[f]["mean"], d[f]["mean"]]),
                     "std": np.vstack([start[f]["std"], d[f]["std"]]),
                     "free": free[f]}
    xy = d["thickness"]["xy"]
    i = int(np.argmin(np.hypot(xy[:, 0] - 1250.0, xy[:, 1] - 300.0)))
    h, a = series["thickness"], series["accumulation"]
    s = {k: speed(series["velocity"][k]) for k in ("truth", "mean", "free")}
    # spread of the speed: the members' at years 1..K; at year 0 from the components' spreads
    v0 = start["velocity"]["std"].reshape(-1, 2)
    s["std"] = np.vstack([np.hypot(v0[:, 0], v0[:, 1]), d["velocity"]["speed_std"]])
    obs = config.obs_years

    shown = [y for y in MAP_YEARS if y <= years[-1]]
    k = [int(np.argmin(np.abs(years - y))) for y in shown]
    plots.error_maps(os.path.join(out, "error_thickness.png"), xy,
                     {"assimilated": [h["mean"][j] - h["truth"][j] for j in k],
                      "free run": [h["free"][j] - h["truth"][j] for j in k]}, shown, "|thickness error| (m)")
    plots.error_maps(os.path.join(out, "error_speed.png"), xy,
                     {"assimilated": [s["mean"][j] - s["truth"][j] for j in k],
                      "free run": [s["free"][j] - s["truth"][j] for j in k]}, shown, "|speed error| (m/yr)")
    plots.point_series(os.path.join(out, "reference_point.png"), years, [
        {"label": "thickness (m)", "truth": h["truth"][:, i], "mean": h["mean"][:, i], "std": h["std"][:, i],
         "free": h["free"][:, i]},
        {"label": "speed (m/yr)", "truth": s["truth"][:, i], "mean": s["mean"][:, i], "std": s["std"][:, i],
         "free": s["free"][:, i]},
        {"label": "smb (m/yr)", "truth": a["truth"][:, i], "mean": a["mean"][:, i], "std": a["std"][:, i],
         "free": a["free"][:, i]}], obs, title="reference point (1.25 km, 0.3 km)")

    def rmse(x, t):
        return np.sqrt(((x - t) ** 2).mean(axis=1))

    plots.error_series(os.path.join(out, "rmse.png"), years, {
        "thickness (m)": {"assimilated": rmse(h["mean"], h["truth"]), "free run": rmse(h["free"], h["truth"])},
        "speed (m/yr)": {"assimilated": rmse(s["mean"], s["truth"]), "free run": rmse(s["free"], s["truth"])},
        "smb (m/yr)": {"assimilated": rmse(a["mean"], a["truth"]), "free run": rmse(a["free"], a["truth"])}}, obs)

    at = {int(y): int(np.argmin(np.abs(years - y))) for y in (0, 5, 15, 25, years[-1]) if y <= years[-1]}
    ref = {"year": list(at),
           "thickness_error": [float(h["mean"][j, i] - h["truth"][j, i]) for j in at.values()],
           "thickness_error_free": [float(h["free"][j, i] - h["truth"][j, i]) for j in at.values()],
           "speed_error": [float(s["mean"][j, i] - s["truth"][j, i]) for j in at.values()],
           "speed_error_free": [float(s["free"][j, i] - s["truth"][j, i]) for j in at.values()],
           "smb_error": [float(a["mean"][j, i] - a["truth"][j, i]) for j in at.values()]}
    summary = {"config": {k: getattr(config, k) for k in ("years", "members", "scheme", "radius", "smb_inflation",
                                                              "noise", "noise_length", "noise_field", "seed")},
               "observation_years": list(obs), "reference_point": ref,
               "rmse_final": {"thickness": float(rmse(h["mean"], h["truth"])[-1]),
                              "thickness_free": float(rmse(h["free"], h["truth"])[-1]),
                              "speed": float(rmse(s["mean"], s["truth"])[-1]),
                              "speed_free": float(rmse(s["free"], s["truth"])[-1]),
                              "smb": float(rmse(a["mean"], a["truth"])[-1]),
                              "smb_free": float(rmse(a["free"], a["truth"])[-1])},
               "timing_seconds": timing}
    scheme = config.scheme + (f" (radius {config.radius:g} m)" if config.scheme in ("lenkf", "letkf") else "")
    lines = [f"ICESEE ice-stream twin: {config.members} members, {config.years} years, {scheme}, "
             f"observations at years {', '.join(f'{t:g}' for t in obs)}, model noise {config.noise[0]:g} m "
             f"(thickness), {config.noise[1]:g} m/yr (smb) per year",
             "reference point (1.25 km, 0.3 km), ensemble mean - truth (free run in brackets):"]
    for n, y in enumerate(ref["year"]):
        lines.append(f"  year {y:3d}: thickness {ref['thickness_error'][n]:8.1f} m ({ref['thickness_error_free'][n]:8.1f}),"
                     f" speed {ref['speed_error'][n]:7.2f} m/yr ({ref['speed_error_free'][n]:7.2f}),"
                     f" smb {ref['smb_error'][n]:6.3f} m/yr")
    r = summary["rmse_final"]
    lines.append(f"RMSE over the domain at year {years[-1]:g}: thickness {r['thickness']:.2f} m (free {r['thickness_free']:.2f}),"
                 f" speed {r['speed']:.2f} m/yr (free {r['speed_free']:.2f}), smb {r['smb']:.3f} m/yr (free {r['smb_free']:.3f})")
    lines.append("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timing.items()))
    summary["text"] = "\n".join(lines)
    with open(os.path.join(out, "summary.txt"), "w") as fh:
        fh.write(summary["text"] + "\n")
    with open(os.path.join(out, "summary.json"), "w") as fh:
        json.dump(summary, fh, indent=1)
    return summary
