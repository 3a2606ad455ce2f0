"""Tests of fdassim.streams: one registry of random streams, one seeding rule."""

import itertools

import numpy as np
import pytest

from fdassim.errors import InputError
from fdassim.streams import ROWS_PER_PART, Stream, entropy, generator, member_block, row_normals


def first_draws(rng, k=4):
    return tuple(rng.integers(0, 2**63, size=k).tolist())


def test_streams_are_named_once_with_distinct_numbers():
    numbers = [s.value for s in Stream]
    assert len(set(numbers)) == len(numbers) >= 9
    for name in ("INITIAL", "TRUTH", "OBS_NOISE", "OBS_PERTURBATION", "ADDITIVE", "RANDOM_FIELD",
                 "MODEL_NOISE", "PARAMETER", "SMOOTHER"):
        assert name in Stream.__members__


def test_no_two_streams_cycles_members_or_parts_draw_the_same_numbers():
    # every stream x seed x cycle x member slot (None: the member block) x part gives
    # different numbers; in particular the old coincidence of [s, c, 1] with [s, c, 1, 0]
    # (numpy pads short entropy with zeros) cannot happen: every entropy has 7 words
    seen = {}
    for stream, seed, cycle, member, part in itertools.product(
            Stream, (0, 1, 2, 2**32, 2**40 + 1), (0, 1, 2), (None, 0, 1, 2), (0, 1)):
        key = (stream, seed, cycle, member, part)
        e = entropy(seed, stream, cycle, member, part)
        assert len(e) == 7 and all(0 <= w < 2**32 for w in e)
        draws = first_draws(generator(seed, stream, cycle, member, part))
        assert draws not in seen, f"{key} draws the numbers of {seen[draws]}"
        seen[draws] = key
    assert len(seen) == len(Stream) * 5 * 3 * 4 * 2


def test_no_stream_equals_a_plain_numpy_seed():
    # a user's default_rng(seed) or default_rng([seed, cycle, member]) never equals an fdassim stream
    plain = {first_draws(np.random.default_rng(s)) for s in ([1], [1, 0], [1, 0, 0, 0], [1, 1, 1], 1)}
    for stream in Stream:
        for member in (None, 0, 1):
            assert first_draws(generator(1, stream, 0, member)) not in plain
            assert first_draws(generator(1, stream, 1, member)) not in plain


def test_member_block_columns_are_members_independent_of_N():
    Z = member_block(7, Stream.OBS_PERTURBATION, 3, m=5, N=6)
    assert Z.shape == (5, 6)
    # column i is member i's m values, drawn member after member by the block generator
    np.testing.assert_array_equal(Z, generator(7, Stream.OBS_PERTURBATION, 3).standard_normal((6, 5)).T)
    np.testing.assert_array_equal(member_block(7, Stream.OBS_PERTURBATION, 3, m=5, N=4), Z[:, :4])
    # the block differs from every member generator and from the next cycle's block
    for i in range(6):
        assert not np.array_equal(Z[:, 0], generator(7, Stream.OBS_PERTURBATION, 3, member=i).standard_normal(5))
    assert not np.array_equal(Z, member_block(7, Stream.OBS_PERTURBATION, 4, m=5, N=6))


def test_row_normals_do_not_depend_on_the_block():
    total = 2 * ROWS_PER_PART + 10
    whole = row_normals(3, Stream.ADDITIVE, 1, 2, 0, total)
    assert whole.shape == (total,)
    for lo, hi in ((0, 1), (5, ROWS_PER_PART + 7), (ROWS_PER_PART - 1, ROWS_PER_PART + 1),
                   (ROWS_PER_PART, 2 * ROWS_PER_PART), (total - 3, total), (9, 9)):
        np.testing.assert_array_equal(row_normals(3, Stream.ADDITIVE, 1, 2, lo, hi), whole[lo:hi])
    # part p is the p-th generator of (seed, stream, cycle, member)
    np.testing.assert_array_equal(whole[ROWS_PER_PART:ROWS_PER_PART + 4],
                                  generator(3, Stream.ADDITIVE, 1, 2, part=1).standard_normal(4))
    # parts are independent of each other (no repeated sequence)
    assert not np.array_equal(whole[:100], whole[ROWS_PER_PART:ROWS_PER_PART + 100])


@pytest.mark.parametrize("kwargs, match", [
    (dict(seed=-1, stream=Stream.INITIAL, cycle=0), r"seed must be an integer in \[0, 18446744073709551616\), got -1"),
    (dict(seed=2**64, stream=Stream.INITIAL, cycle=0), r"seed must be an integer"),
    (dict(seed=1.5, stream=Stream.INITIAL, cycle=0), r"seed must be an integer .* got 1.5"),
    (dict(seed=True, stream=Stream.INITIAL, cycle=0), r"seed must be an integer .* got True"),
    (dict(seed=1, stream=4, cycle=0), r"stream must be a fdassim.streams.Stream \(INITIAL, TRUTH, .*\), got 4"),
    (dict(seed=1, stream=Stream.INITIAL, cycle=-2), r"cycle must be an integer in \[0, 4294967296\), got -2"),
    (dict(seed=1, stream=Stream.INITIAL, cycle=0, member=-1), r"member must be an integer .* got -1"),
    (dict(seed=1, stream=Stream.INITIAL, cycle=0, part=2**32), r"part must be an integer"),
])
def test_generator_rejects_bad_indices(kwargs, match):
    with pytest.raises(InputError, match=match):
        generator(**kwargs)


def test_row_normals_rejects_reversed_range():
    with pytest.raises(InputError, match="row range 5:3 is empty or reversed"):
        row_normals(1, Stream.ADDITIVE, 0, 0, 5, 3)
