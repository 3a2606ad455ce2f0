"""fdassim: Firedrake-native ensemble data assimilation for ice-sheet models.

Importing :mod:`fdassim` is cheap and has no side effects: Firedrake and PETSc are imported
only when a name that needs them is first used. The analysis maths lives in
:mod:`fdassim.analysis` (pure numpy); the distributed ensemble in :mod:`fdassim.ensemble`;
the cycle in :mod:`fdassim.cycle`.

The names a script needs::

    import fdassim
    ensemble = fdassim.Ensemble(model, size=20, truth=True)
    observations = fdassim.Observations(fdassim.PointValues("thickness", points),
                                        fdassim.ObsError.from_std(5.0), points)
    with fdassim.Store.create("run.h5", ensemble, times, observations) as store:
        result = fdassim.assimilate(ensemble, fdassim.ETKF(), observations, times, seed=1,
                                    store=store)
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Ensemble": "fdassim.ensemble",
    "assimilate": "fdassim.cycle",
    "CycleResult": "fdassim.cycle",
    "smooth": "fdassim.smoothers",
    "SmootherResult": "fdassim.smoothers",
    "EnKS": "fdassim.smoothers",
    "SIEnKS": "fdassim.smoothers",
    "IEnKS": "fdassim.smoothers",
    "LinIEnKS": "fdassim.smoothers",
    "Store": "fdassim.io",
    "Observations": "fdassim.observations",
    "Identity": "fdassim.observations",
    "Subset": "fdassim.observations",
    "PointValues": "fdassim.observations",
    "NodalValues": "fdassim.observations",
    "Speed": "fdassim.observations",
    "Box": "fdassim.observations",
    "flight_lines": "fdassim.observations",
    "Quantity": "fdassim.observations",
    "Schedule": "fdassim.observations",
    "RandomField": "fdassim.perturbations",
    "PseudoRandomField": "fdassim.perturbations",
    "InitialPerturbations": "fdassim.perturbations",
    "ModelNoise": "fdassim.perturbations",
    "Clip": "fdassim.parameters",
    "BetaBounds": "fdassim.parameters",
    "UnderRelaxed": "fdassim.parameters",
    "FieldSpec": "fdassim.layout",
    "ObsError": "fdassim.analysis.base",
    "AnalysisContext": "fdassim.analysis.base",
    "EnKF": "fdassim.analysis.enkf",
    "ETKF": "fdassim.analysis.etkf",
    "EnSRF": "fdassim.analysis.ensrf",
    "DEnKF": "fdassim.analysis.denkf",
    "EnKFN": "fdassim.analysis.enkf_n",
    "LocalizedEnKF": "fdassim.analysis.lenkf",
    "LETKF": "fdassim.analysis.letkf",
    "FiniteSize": "fdassim.analysis.letkf",
    "Geometry": "fdassim.geometry",
    "RegressionFilter": "fdassim.analysis.regression",
    "Localization": "fdassim.analysis.localization",
    "Multiplicative": "fdassim.inflation",
    "Additive": "fdassim.inflation",
    "RTPS": "fdassim.inflation",
    "RTPP": "fdassim.inflation",
    "IcepackModel": "fdassim.models.icepack",
    "MemberFailure": "fdassim.errors",
    "ModelError": "fdassim.errors",
    "ConfigError": "fdassim.errors",
    "StoreError": "fdassim.errors",
    "StoreNotFound": "fdassim.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fdassim' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
