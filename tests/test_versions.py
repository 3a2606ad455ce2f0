"""The store's provenance: the versions of the stack."""


def test_versions_names_the_installed_stack():
    import h5py
    import numpy

    from fdassim.io import versions

    v = versions()
    assert v["numpy"] == numpy.__version__ and v["h5py"] == h5py.__version__
    assert {"fdassim", "firedrake", "petsc4py", "mpi4py", "scipy"} <= set(v)
