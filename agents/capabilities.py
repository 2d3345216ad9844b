"""What each learner trains on (network kinds and clocks), and the one check that refuses the rest.

Every learner class declares two class attributes (documented in ``neuron_env.agents.learner.Learner``):

``topologies``
    the network kinds it trains, from ``TOPOLOGY_KINDS``: ``"acyclic"`` (acyclic and leak-free:
    the task action is one forward pass), ``"recurrent"`` (the network has a cycle:
    ``--topology recurrent`` or ``sparse``) and ``"leaky"`` (a group has a leak: ``--leak``).
``clocks``
    the clocks it trains under, from ``CLOCKS``: ``"sync"`` (every neuron every tick) and
    ``"async"`` (``--clock async``: each neuron fires with probability ``--firing-rate`` per tick).

A network needs every kind it has (``topology_kinds``: a leaky recurrent layer needs
``("recurrent", "leaky")``), and a run needs its clock. ``check_capability`` is the one place
that compares the two, before any work: the trainer calls it before it builds the learner,
``compare`` before it starts a run, and a learner that acts by one forward pass calls it from its
constructor (``neuron_env.agents.network.require_settled``), so every path refuses with the same
line. The line says what the learner trains and which registered learners train what was asked,
computed from the registry's classes: a learner that declares ``"recurrent"`` or ``"async"``
appears there as soon as it is registered.

Declared today (``neuron-env train --learner NAME``):

============================================ =============================== ==================
learner                                      ``topologies``                  ``clocks``
============================================ =============================== ==================
``eprop``, ``ddpg``                          acyclic, recurrent, leaky       sync, async
``feedback``, ``coagent``, ``weight-max``,   acyclic                         sync
``es``
============================================ =============================== ==================

``neuron-env train`` without ``--learner`` runs ``default_learner(topology)``: ``feedback`` on an
acyclic, leak-free network (the best measured there), ``eprop`` on a recurrent or leaky one (on
Pendulum-v1 with a 16-unit recurrent layer of leak 0.5 it reached −165 and −183 on seeds 0 and 1
at 20 000 steps, where the draft's ``ddpg`` rule stayed near the random policy; the learners page
gives the commands).

One more rule sits in the same check: a learner with a ``granularity`` option that learns
``settled`` transitions (``ddpg``'s default on an acyclic, leak-free network) needs the sync clock,
since a settled task step is one forward pass through neurons that all fire; ``--granularity
per_tick`` trains it under the async clock. Example::

    from neuron_env import Topology
    from neuron_env.agents.capabilities import check_capability

    check_capability("ddpg", Topology.recurrent(3, 8, 1, leak=0.3), "async")       # passes
    check_capability("feedback", Topology.recurrent(3, 8, 1, leak=0.3), "sync")    # LearnerConfigError
"""

from __future__ import annotations

import math

from neuron_env.agents.errors import LearnerConfigError
from neuron_env.agents.registry import LEARNERS, learner_class

from neuron_env.topology import Topology

#: Network kinds a learner may declare in ``topologies``.
TOPOLOGY_KINDS: tuple[str, ...] = ("acyclic", "recurrent", "leaky")
#: Clocks a learner may declare in ``clocks`` (``NeuronVecEnv(clock=...)``).
CLOCKS: tuple[str, ...] = ("sync", "async")
#: What a learner class that declares nothing is taken to train: one forward pass, the sync clock.
DEFAULT_TOPOLOGIES: tuple[str, ...] = ("acyclic",)
DEFAULT_CLOCKS: tuple[str, ...] = ("sync",)


#: The learner of a recurrent or leaky network when none is named (``default_learner``).
RECURRENT_DEFAULT_LEARNER = "eprop"
#: The learner of an acyclic, leak-free network when none is named (``TrainConfig.learner``'s default).
ACYCLIC_DEFAULT_LEARNER = "feedback"


def default_learner(topology: Topology) -> str:
    """The learner ``neuron-env train`` runs on ``topology`` when ``--learner`` is not given.

    ``feedback`` on an acyclic, leak-free network, ``eprop`` on a recurrent or leaky one (each the
    best measured there). The clock does not choose: under ``--clock async`` an acyclic network
    still gets ``feedback``, whose refusal names the learners that train there.
    """
    return ACYCLIC_DEFAULT_LEARNER if settles(topology) else RECURRENT_DEFAULT_LEARNER


def topology_kinds(topology: Topology) -> tuple[str, ...]:
    """The kinds a learner must declare to train ``topology``: ``("acyclic",)``, or which of recurrent, leaky it is."""
    kinds = []
    if topology.depth is None:
        kinds.append("recurrent")
    if any(group.leak > 0 for group in topology.agent_groups):
        kinds.append("leaky")
    return tuple(kinds) or ("acyclic",)


def settles(topology: Topology) -> bool:
    """Whether ``topology`` is acyclic and leak-free: one forward pass per task step gives the task action."""
    return topology_kinds(topology) == ("acyclic",)


def capabilities(learner: str | type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(topologies, clocks)`` a learner declares (a registry name or a class; undeclared: the defaults)."""
    cls = learner_class(learner) if isinstance(learner, str) else learner
    return (tuple(getattr(cls, "topologies", DEFAULT_TOPOLOGIES)), tuple(getattr(cls, "clocks", DEFAULT_CLOCKS)))


def check_clock_options(clock: str, firing_rate: float) -> None:
    """Refuse, in one line naming the flag and the range, a clock or firing rate the environment would refuse.

    Raises:
        LearnerConfigError: On an unknown ``clock``, a ``firing_rate`` outside ``(0, 1]``, or a rate
            below 1 on the sync clock.
    """
    if clock not in CLOCKS:
        raise LearnerConfigError(f"clock={clock!r} is unknown (--clock); use 'sync' (every neuron every tick) or "
                                 "'async' (each neuron fires with probability --firing-rate per tick)")
    rate_is_number = isinstance(firing_rate, int | float) and not isinstance(firing_rate, bool)
    if not rate_is_number or not math.isfinite(firing_rate) or not 0.0 < firing_rate <= 1.0:
        raise LearnerConfigError(f"firing_rate={firing_rate!r} (--firing-rate) must lie in (0, 1]: the probability "
                                 "that a neuron fires on a tick (1 fires every neuron, as the sync clock)")
    if clock == "sync" and firing_rate != 1.0:
        raise LearnerConfigError(f"firing_rate={firing_rate!r} (--firing-rate) needs clock='async' (--clock async); "
                                 "the sync clock fires every neuron on every tick")


def _kinds_phrase(kinds: tuple[str, ...]) -> str:
    """``("acyclic",)`` -> ``"acyclic, leak-free"``; ``("recurrent", "leaky")`` -> ``"recurrent, leaky"``."""
    return "acyclic, leak-free" if kinds == ("acyclic",) else ", ".join(kinds)


def _joined(words: tuple[str, ...]) -> str:
    """``("a", "b", "c")`` -> ``"a, b and c"``."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _needs_per_tick_flag(learner: str, topology: Topology, clock: str, granularity: str | None) -> bool:
    """Whether ``learner`` would learn settled transitions on ``topology`` under the async clock.

    ``granularity`` ``None`` is the learner's own default (``ddpg``'s is ``None`` too: settled on an
    acyclic, leak-free network).
    """
    config_class = learner_class(learner).config_class
    if clock != "async" or not settles(topology) or "granularity" not in config_class.field_names():
        return False
    if granularity is None:
        granularity = config_class().granularity
    return granularity in (None, "settled")


def able_learners(topology: Topology, clock: str) -> list[str]:
    """The registered learners (registry order) whose declarations cover ``topology``'s kinds and ``clock``."""
    kinds = set(topology_kinds(topology))
    return [name for name in LEARNERS if kinds <= set(capabilities(name)[0]) and clock in capabilities(name)[1]]


def capability_refusal(learner: str, topology: Topology, clock: str = "sync",
                       granularity: str | None = None) -> str | None:
    """The one-line reason ``learner`` cannot train ``topology`` under ``clock``, or ``None`` when it can.

    Args:
        learner: A registry name (a name the registry does not hold is taken to declare the defaults).
        topology: The network.
        clock: ``"sync"`` or ``"async"``.
        granularity: The learner's ``granularity`` option where it has one (``None``: its default).
    """
    declared = capabilities(learner) if learner in LEARNERS else (DEFAULT_TOPOLOGIES, DEFAULT_CLOCKS)
    topologies, clocks = declared
    kinds = topology_kinds(topology)
    if set(kinds) <= set(topologies) and clock in clocks:
        if learner in LEARNERS and _needs_per_tick_flag(learner, topology, clock, granularity):
            how = "its default there" if granularity is None else "as asked"
            return (f"learner {learner!r} learns settled transitions on an acyclic, leak-free network ({how}), which "
                    "needs the sync clock (a settled task step is one forward pass through neurons that all fire); "
                    "pass --granularity per_tick to train it on the async clock")
        return None
    on_clock = " on the async clock" if clock == "async" else ""
    asked = f"{'an' if kinds == ('acyclic',) else 'a'} {_kinds_phrase(kinds)} network{on_clock}"
    trains = (f"{_kinds_phrase(topologies) if topologies == ('acyclic',) else _joined(topologies)} networks on the "
              f"{_joined(clocks)} clock{'s' if len(clocks) > 1 else ''}")
    # each with the flag it then needs: "--learner ddpg --granularity per_tick" on an acyclic network, async
    able = [f"--learner {name}" + (" --granularity per_tick" if _needs_per_tick_flag(name, topology, clock, None)
                                   else "") for name in able_learners(topology, clock)]
    others = f"learners that can: {', '.join(able)}" if able else "no registered learner can yet"
    return f"learner {learner!r} cannot train {asked}: it trains {trains}; {others}"


def check_capability(learner: str, topology: Topology, clock: str = "sync", granularity: str | None = None) -> None:
    """Raise ``LearnerConfigError`` (``capability_refusal``'s line) unless ``learner`` trains ``topology`` on ``clock``.

    Raises:
        LearnerConfigError: Saying what the learner trains and which learners train what was asked.
    """
    refusal = capability_refusal(learner, topology, clock, granularity)
    if refusal is not None:
        raise LearnerConfigError(refusal)

