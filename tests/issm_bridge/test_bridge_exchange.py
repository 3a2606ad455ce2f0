"""The file exchange: MAT files written atomically, member files checked on read."""

import threading

import numpy as np
import pytest

from issm_bridge.errors import ExchangeError, MatlabError, StaleFileError
from issm_bridge.exchange import read_mat, read_member, write_mat, write_member
from issm_bridge.server import matlab_string

FIELDS = {"thickness": np.linspace(100.0, 200.0, 7), "vx": np.array([1e-300, -2.5, np.pi, 0, 1e300, 7, 8])}


def test_member_roundtrip_exact(tmp_path):
    path = tmp_path / "m.mat"
    write_member(path, FIELDS, cycle=3, member=5, t0=1.5, t1=2.25, token="abc")
    got = read_member(path, cycle=3, member=5, token="abc", names=("thickness", "vx"))
    assert (got.cycle, got.member, got.t0, got.t1, got.token) == (3, 5, 1.5, 2.25, "abc")
    for k, v in FIELDS.items():  # doubles go through the MAT file bit for bit
        assert np.array_equal(got.fields[k], v)


@pytest.mark.parametrize("kwargs, match", [
    (dict(cycle=4, member=5), "belongs to cycle 3, member 5, not cycle 4, member 5"),
    (dict(cycle=3, member=6), "belongs to cycle 3, member 5, not cycle 3, member 6"),
    (dict(cycle=3, member=5, token="new"), "answers request 'old', not 'new'"),
])
def test_stale_member_file_is_an_error(tmp_path, kwargs, match):
    path = tmp_path / "m.mat"
    write_member(path, FIELDS, cycle=3, member=5, t0=0, t1=1, token="old")
    with pytest.raises(StaleFileError, match=match):
        read_member(path, **kwargs)


def test_member_file_errors(tmp_path):
    with pytest.raises(ExchangeError, match="no file"):
        read_member(tmp_path / "none.mat", cycle=0, member=0)
    write_mat(tmp_path / "other.mat", {"x": 1.0})
    with pytest.raises(ExchangeError, match="not an issm_bridge member file of format 1"):
        read_member(tmp_path / "other.mat", cycle=0, member=0)
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(ExchangeError, match="cannot read"):
        read_mat(tmp_path / "junk.mat")
    write_member(tmp_path / "m.mat", FIELDS, cycle=0, member=0, t0=0, t1=1)
    with pytest.raises(ExchangeError, match=r"lacks field\(s\) \['friction'\]"):
        read_member(tmp_path / "m.mat", cycle=0, member=0, names=("thickness", "friction"))


def test_write_is_atomic(tmp_path):
    """A reader polling while a writer rewrites a large file never sees half a file."""
    path = tmp_path / "big.mat"
    big = [np.full(200_000, float(i)) for i in range(2)]
    write_mat(path, {"x": big[0]})
    stop, seen, errors = threading.Event(), set(), []

    def reader():
        while not stop.is_set():
            try:
                x = read_mat(path)["x"]
                seen.add(float(x[0]))
                assert np.all(x == x[0]) and x.size == big[0].size
            except Exception as exc:  # any torn read fails the test
                errors.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    for i in range(60):
        write_mat(path, {"x": big[i % 2]})
    stop.set()
    t.join()
    assert errors == []
    assert seen == {0.0, 1.0}  # the reader did read while files were replaced
    assert [p.name for p in tmp_path.iterdir()] == ["big.mat"]  # no temporary file left


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(Exception):
        write_mat(tmp_path / "bad.mat", {"x": object()})
    assert list(tmp_path.iterdir()) == []


def test_octave_reads_and_writes_member_files(pool, tmp_path):
    """Python -> Octave (fdassim_read_member) -> Octave writes (fdassim_save) -> Python, exactly."""
    src, dst = tmp_path / "in.mat", tmp_path / "out.mat"
    write_member(src, FIELDS, cycle=2, member=1, t0=0.5, t1=1.0, paths={"thickness": "geometry.thickness"})
    code = (f"s = fdassim_read_member({matlab_string(src)}, 2, 1); o = fdassim_output(s, 'tok'); "
            f"o.fields.thickness = 2 * s.fields.thickness; o.fields.vx = s.fields.vx; "
            f"fdassim_save({matlab_string(dst)}, o)")
    pool.call(code, timeout=30)
    got = read_member(dst, cycle=2, member=1, token="tok")
    assert np.array_equal(got.fields["thickness"], 2 * FIELDS["thickness"])
    assert np.array_equal(got.fields["vx"], FIELDS["vx"])
    assert (got.t0, got.t1) == (0.5, 1.0)


def test_octave_refuses_a_stale_member_file(pool, tmp_path):
    src = tmp_path / "in.mat"
    write_member(src, FIELDS, cycle=2, member=1, t0=0, t1=1)
    with pytest.raises(MatlabError, match=r"belongs to cycle 2, member 1, not cycle 3, member 1 \(a stale file\)") as err:
        pool.call(f"fdassim_read_member({matlab_string(src)}, 3, 1)", timeout=30, label="member 1, cycle 3")
    assert err.value.identifier == "issm_bridge:stale"
    assert "member 1, cycle 3" in str(err.value)


def test_member_file_sets_md_fields_ranks_and_name(pool, tmp_path):
    """fdassim_prepare writes each field at its md path, md.cluster.np and a run name."""
    from issm_bridge.model import ISSM

    model = ISSM(ranks=3)
    n = 41
    fields = {name: np.arange(n, dtype=float) + k for k, name in enumerate(model.names)}
    src = tmp_path / "in.mat"
    write_member(src, fields, cycle=2, member=1, t0=0, t1=1, paths=model.md_paths(), job=model.job())
    code = (f"[md, s] = fdassim_prepare({matlab_string(src)}, 2, 1); "
            "r = struct('np', md.cluster.np, 'name', md.miscellaneous.name, "
            "'thickness', md.geometry.thickness, 'friction', md.friction.coefficient, 'vy', md.initialization.vy);")
    r = pool.call(f"fdassim_eval({matlab_string(code)}, 'r')", timeout=60, nout=1)
    assert r["np"] == 3 and r["name"] == "fdassim_c2_m1"
    for name in ("thickness", "friction", "vy"):
        assert np.array_equal(r[name], fields[name])
