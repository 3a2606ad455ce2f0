r"""Every random stream of fdassim, and the one rule that seeds them.

A random draw in fdassim depends on *what it is for* (its :class:`Stream`), the user's seed,
the cycle and the member, never on the process rank or on how members and rows are dealt.
:func:`generator` builds the generator of one ``(seed, stream, cycle, member)`` from a
fixed-length entropy vector (:func:`entropy`), so that two different tuples never share
their numbers:

.. math::
    \mathrm{entropy} = (\mathtt{tag},\ s_{lo},\ s_{hi},\ \mathrm{stream},\ \mathrm{cycle},\
                        \mathrm{member} + 1,\ \mathrm{part})

seven unsigned 32-bit words: a constant tag (so that no user's ``default_rng(seed)`` equals
an fdassim stream), the seed in two words (``0 <= seed < 2**64``), the stream number, the
cycle, the member slot (``0`` is the *member block*, see below) and a part index. numpy's
``SeedSequence`` pads entropy shorter than four words with zeros, so
``SeedSequence([s, c, 1])`` equals ``SeedSequence([s, c, 1, 0])``; with every entropy of
the same length no such coincidence can occur (``tests/test_streams.py`` checks that no two
streams, cycles or members draw the same numbers).

Two ways to draw for ``N`` members:

* **one generator per member**, :func:`generator` with ``member=i``: used where the member
  lives (the initial draw of member ``i``, its model noise);
* **the member block**, :func:`member_block`: one generator per ``(seed, stream, cycle)``
  draws member after member, column ``i`` being member ``i``'s values. It is used by the
  observation-space work that every rank computes with the same inputs (observation
  perturbations): every rank draws the same block, and member ``i``'s column does not depend
  on ``N``. It is ~20x cheaper than ``N`` generators (creating one costs about as much as
  drawing a few thousand numbers).

Long vectors split over ranks by rows (additive noise on the rows of a block) are drawn in
fixed parts of :data:`ROWS_PER_PART` rows, part ``p`` from the generator with
``part=p`` (:func:`row_normals`): a block of rows costs its own size, not the whole vector's,
and the values of a row do not depend on the block it is in.

The stream numbers are part of every stored run's reproducibility: never renumber them; add
new ones at the end.

Examples
--------
>>> from fdassim.streams import Stream, generator, member_block
>>> z = generator(3, Stream.INITIAL, 0, member=5).standard_normal(40)   # member 5's initial draw
>>> E = member_block(3, Stream.OBS_PERTURBATION, 12, m=100, N=20)        # (100, 20), column i = member i
"""

from __future__ import annotations

import enum
import numbers

import numpy as np

from .errors import InputError

__all__ = ["Stream", "ROWS_PER_PART", "entropy", "generator", "member_block", "row_normals"]

#: First word of every fdassim entropy vector ("fdas" in ASCII).
_TAG = 0x66646173
#: Rows per part of :func:`row_normals` (a part's generator draws this many values at most).
ROWS_PER_PART = 1 << 16
_WORD = 1 << 32


class Stream(enum.IntEnum):
    """What a random draw is for. The number enters the seed: never renumber a stream."""

    #: initial state of each ensemble member (``Model.initial_state``), per member
    INITIAL = 1
    #: initial state of a twin experiment's truth (one generator, no member)
    TRUTH = 2
    #: synthetic observation noise of a twin experiment, per cycle (no member; ``part`` is the
    #: observed quantity's index, fdassim.observations)
    OBS_NOISE = 3
    #: observation perturbations of the stochastic schemes (EnKF, localized EnKF,
    #: perturbed-obs regression filter): the member block, shared so the schemes can be
    #: compared member by member
    OBS_PERTURBATION = 4
    #: additive inflation noise, per member, drawn by row parts
    ADDITIVE = 5
    #: random fields added to the initial members (fdassim.perturbations), per member; the
    #: truth's with no member
    RANDOM_FIELD = 6
    #: model noise, the AR(1) forcing after each forecast (fdassim.perturbations), per member
    #: and cycle; the truth's with no member
    MODEL_NOISE = 7
    #: perturbations of uncertain parameters (reserved)
    PARAMETER = 8
    #: draws of smoothers (reserved)
    SMOOTHER = 9


def _index(name: str, value, limit: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or not 0 <= value < limit:
        raise InputError(f"{name} must be an integer in [0, {limit}), got {value!r}")
    return int(value)


def entropy(seed: int, stream: Stream, cycle: int, member: int | None = None, part: int = 0) -> tuple[int, ...]:
    """The seven-word entropy of a generator (see the module docstring).

    Parameters
    ----------
    seed
        The user's seed, an integer in ``[0, 2**64)``.
    stream
        What the draws are for.
    cycle
        The assimilation cycle (``0`` for the initial draw).
    member
        The member, or ``None`` for the generator of the member block (and of draws that
        belong to no member: the truth, the observation noise).
    part
        Index of a part of a long vector (:func:`row_normals`); ``0`` otherwise.

    Raises
    ------
    InputError
        If ``stream`` is not a :class:`Stream` or an index is not a non-negative integer in range.
    """
    if not isinstance(stream, Stream):
        raise InputError(f"stream must be a fdassim.streams.Stream ({', '.join(s.name for s in Stream)}), "
                         f"got {stream!r}")
    s = _index("seed", seed, _WORD * _WORD)
    slot = 0 if member is None else _index("member", member, _WORD - 1) + 1
    return (_TAG, s % _WORD, s // _WORD, int(stream), _index("cycle", cycle, _WORD), slot,
            _index("part", part, _WORD))


def generator(seed: int, stream: Stream, cycle: int, member: int | None = None, part: int = 0) -> np.random.Generator:
    """The generator of ``(seed, stream, cycle, member, part)``; parameters as for :func:`entropy`."""
    return np.random.default_rng(np.random.SeedSequence(entropy(seed, stream, cycle, member, part)))


def member_block(seed: int, stream: Stream, cycle: int, m: int, N: int) -> np.ndarray:
    """``(m, N)`` standard normal draws of ``N`` members, column ``i`` member ``i``'s ``m`` values.

    One generator, ``generator(seed, stream, cycle, member=None)``, draws member after
    member, so column ``i`` depends on the seed, stream, cycle, ``i`` and ``m`` only: not on
    ``N``, the rank or how members are dealt.
    """
    m, N = _index("m", m, _WORD), _index("N", N, _WORD)
    return generator(seed, stream, cycle).standard_normal((N, m)).T


def row_normals(seed: int, stream: Stream, cycle: int, member: int, lo: int, hi: int) -> np.ndarray:
    """Standard normal values of rows ``lo:hi`` of member ``member``'s vector, independent of the block.

    Row ``r`` is value ``r % ROWS_PER_PART`` of ``generator(seed, stream, cycle, member,
    part=r // ROWS_PER_PART)``: a block draws only the parts it overlaps, and a row's value
    is the same whichever block asks for it.
    """
    lo, hi = _index("lo", lo, _WORD * ROWS_PER_PART), _index("hi", hi, _WORD * ROWS_PER_PART + 1)
    if hi < lo:
        raise InputError(f"row range {lo}:{hi} is empty or reversed")
    out = np.empty(hi - lo)
    for p in range(lo // ROWS_PER_PART, -(-hi // ROWS_PER_PART)):
        p0 = p * ROWS_PER_PART
        a, b = max(lo, p0), min(hi, p0 + ROWS_PER_PART)
        z = generator(seed, stream, cycle, member, part=p).standard_normal(b - p0)
        out[a - lo:b - lo] = z[a - p0:]
    return out
