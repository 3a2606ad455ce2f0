"""The maths (analysis schemes, smoothers) imports neither Firedrake nor PETSc: it runs (and is tested) in seconds anywhere."""

import subprocess
import sys


def test_analysis_modules_import_without_firedrake_or_petsc():
    code = (
        "import sys, pkgutil, importlib, fdassim.analysis as a\n"
        "import fdassim.smoothers as s\n"
        "mods = ['fdassim.analysis.' + m.name for m in pkgutil.iter_modules(a.__path__)]\n"
        "mods += ['fdassim.smoothers.' + m.name for m in pkgutil.iter_modules(s.__path__)]\n"
        "mods += ['fdassim.streams', 'fdassim.inflation', 'fdassim.twin', 'fdassim.models.lorenz96', 'fdassim.config']\n"
        "[importlib.import_module(m) for m in mods]\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('firedrake', 'petsc4py', 'pyop2', 'ufl'))\n"
        "print(len(mods), bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert int(res.stdout.split()[0]) >= 20  # every scheme and smoother module was imported
