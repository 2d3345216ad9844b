"""Normalized scores: how far a method gets from a random policy towards a reference learner.

``neuron-env compare`` reports every final evaluation return twice: raw, and normalized against
two baselines run on the same task with the same evaluation episodes,

.. code-block:: text

    score = (R - R_random) / (R_reference - R_random)

where ``R_random`` is the mean over seeds of a uniform-random policy's return and
``R_reference`` the mean over seeds of the reference learner's, with the same step budget and
network. ``neuron-env compare`` picks the reference per task (``CompareConfig.reference_for``):
with ``--reference auto``, Stable-Baselines3 DDPG (``sb3-ddpg``) on a task with Box actions and
SB3 DQN (``sb3-dqn``) on one with Discrete actions; ``TaskScores.reference`` and ``scores.md``
name it. A random policy scores 0 and the reference 1, whatever the task's reward scale.
Each seed of a method is normalized on its own against the two *means*,
so a method's score has a spread over seeds; the reference's own mean score is exactly 1.

Degenerate cases never raise; they give ``NaN`` (``"n/a"`` in tables) and a note:

* the reference or the random policy has no finished seed;
* the reference's mean equals the random policy's (a zero denominator: nothing to scale by);
* a method has no finished seed (a run that failed, or diverged, has no final return).

When the reference is *below* random the scores are computed (the sign of the denominator
flips their meaning) and a note says so.

Python::

    from neuron_env.baselines.normalize import normalize_task

    result = normalize_task({"random": [-1200.0, -1300.0], "sb3-ddpg": [-150.0, -170.0],
                             "local-mlp": [-400.0, -200.0]})
    result.methods["local-mlp"].mean   # 0.9...
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

#: Relative size below which ``R_reference - R_random`` counts as zero.
DEGENERATE_TOLERANCE: float = 1e-9


@dataclass
class MethodScore:
    """Raw and normalized final returns of one method on one task."""

    returns: list[float]
    """Final evaluation return of every finished seed (``NaN`` for a seed without one is dropped)."""
    normalized: list[float]
    """Each seed's normalized score (``NaN`` when the task's normalization is degenerate)."""
    return_mean: float = math.nan
    """Mean of ``returns`` over seeds (``NaN`` when there are none)."""
    return_std: float = math.nan
    """Standard deviation of ``returns`` over seeds (population, ``ddof=0``)."""
    mean: float = math.nan
    """Mean normalized score over seeds."""
    std: float = math.nan
    """Standard deviation of the normalized score over seeds (``ddof=0``)."""
    best: float = math.nan
    """Best (largest) normalized score over seeds."""


@dataclass
class TaskScores:
    """The normalization of one task: its baselines, every method's scores and the notes."""

    random_mean: float
    """``R_random``: mean final return of the random policy over seeds (``NaN`` if none)."""
    reference_mean: float
    """``R_reference``: mean final return of the reference learner over seeds (``NaN`` if none)."""
    methods: dict[str, MethodScore]
    """Scores keyed by method name, in the order given."""
    notes: list[str] = field(default_factory=list)
    """Why a score is ``NaN`` or should be read with care (empty when nothing is unusual)."""
    reference: str = "sb3-ddpg"
    """The method that scores 1 on this task."""

    @property
    def degenerate(self) -> bool:
        """Whether the normalization is undefined (every normalized score is ``NaN``)."""
        return not _finite(self.random_mean) or not _finite(self.reference_mean) or _zero_denominator(
            self.random_mean, self.reference_mean)


def _finite(value: float) -> bool:
    return value is not None and math.isfinite(value)


def _zero_denominator(random_mean: float, reference_mean: float) -> bool:
    scale = max(1.0, abs(random_mean), abs(reference_mean))
    return abs(reference_mean - random_mean) <= DEGENERATE_TOLERANCE * scale


def finite_values(values: Sequence[float | None]) -> list[float]:
    """The finite entries of ``values`` (``None``, NaN and infinities dropped), as floats."""
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation of ``values``; ``(NaN, NaN)`` when empty."""
    if len(values) == 0:
        return math.nan, math.nan
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std())


def normalized_score(value: float, random_mean: float, reference_mean: float) -> float:
    """``(value - random_mean) / (reference_mean - random_mean)``; ``NaN`` when undefined.

    Args:
        value: A return to normalize.
        random_mean: The random policy's mean return (score 0).
        reference_mean: The reference learner's mean return (score 1).

    Returns:
        The normalized score, or ``NaN`` when any input is not finite or the two baselines are equal.
    """
    if not (_finite(value) and _finite(random_mean) and _finite(reference_mean)):
        return math.nan
    if _zero_denominator(random_mean, reference_mean):
        return math.nan
    return (value - random_mean) / (reference_mean - random_mean)


def normalize_task(
    returns: Mapping[str, Sequence[float | None]],
    random: str = "random",
    reference: str = "sb3-ddpg",
) -> TaskScores:
    """Normalize every method's per-seed final returns on one task.

    Args:
        returns: Final evaluation returns per method, one entry per seed; ``None``/NaN entries
            (failed or diverged seeds) are dropped.
        random: The method that scores 0 (its mean over seeds).
        reference: The method that scores 1 (its mean over seeds): the task's reference, e.g.
            ``sb3-ddpg`` for Box actions or ``sb3-dqn`` for Discrete ones.

    Returns:
        The task's ``TaskScores``; never raises on degenerate input (see the module doc).
    """
    notes: list[str] = []
    random_mean = mean_std(finite_values(returns.get(random, ())))[0]
    reference_mean = mean_std(finite_values(returns.get(reference, ())))[0]
    if not _finite(random_mean):
        notes.append(f"no finished {random} run: normalized scores are n/a")
    if not _finite(reference_mean):
        notes.append(f"no finished {reference} run: normalized scores are n/a")
    if _finite(random_mean) and _finite(reference_mean):
        if _zero_denominator(random_mean, reference_mean):
            notes.append(f"{reference} scored the same as {random} ({reference_mean:.4g}): "
                         "normalized scores are n/a (a zero denominator)")
        elif reference_mean < random_mean:
            notes.append(f"{reference} ({reference_mean:.4g}) scored below {random} ({random_mean:.4g}): "
                         "normalized scores are computed but their sign reads inverted")
    methods: dict[str, MethodScore] = {}
    for name, values in returns.items():
        finite = finite_values(values)
        missing = len(values) - len(finite)
        if missing:
            notes.append(f"{name}: {missing} of {len(values)} seeds have no final return (failed or diverged)")
        normalized = [normalized_score(v, random_mean, reference_mean) for v in finite]
        score = MethodScore(returns=finite, normalized=normalized)
        score.return_mean, score.return_std = mean_std(finite)
        usable = finite_values(normalized)
        if usable:
            score.mean, score.std = mean_std(usable)
            score.best = float(max(usable))
        methods[name] = score
    return TaskScores(random_mean=random_mean, reference_mean=reference_mean, methods=methods, notes=notes,
                      reference=reference)


def first_step_reaching(steps: Sequence[int], values: Sequence[float], threshold: float) -> int | None:
    """The first step at which ``values`` reaches ``threshold`` (``>=``), or ``None`` if it never does.

    Args:
        steps: Task steps of the curve, increasing.
        values: The curve (e.g. the mean over seeds of the evaluation return) at those steps.
        threshold: The return to reach.
    """
    for step, value in zip(steps, values, strict=True):
        if value is not None and math.isfinite(value) and value >= threshold:
            return int(step)
    return None


def format_score(mean: float, std: float | None = None, digits: int = 2) -> str:
    """``"0.93 ± 0.05"``, ``"0.93"`` without a std, ``"n/a"`` when ``mean`` is not finite."""
    if not _finite(mean):
        return "n/a"
    if std is None or not _finite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"
