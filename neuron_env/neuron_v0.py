"""# Neuron (``neuron_v0``).

A policy network acting on a Gymnasium task, with **every neuron an agent**.

| | |
|---|---|
| Import | `from neuron_env import neuron_v0` |
| Registry id | `neuron_env/Neuron-v0` (`pettingzoo.make("parallel", "neuron_env/Neuron-v0", ...)`) |
| Actions | Continuous, `Box(1,)` per agent (whatever the task's action space) |
| Parallel API | Yes (`neuron_v0.parallel_env`); AEC view `neuron_v0.env` |
| Agents | one per non-input neuron: `h1_0 … h1_63, h2_0 …, out_0 …` |
| Tasks | any Gymnasium task whose spaces `neuron_env.spaces` encodes (Box, Discrete, Tuple, Dict, images…) |
| Observation | the voltages of the agent's presynaptic neurons |
| State | all `N` voltages |

## Description

The network's neurons hold voltages ``v``. Input neurons are clamped to the encoded task
observation ``ε(s_t)``. On every tick each agent (hidden or output neuron) chooses its own next
voltage; every ``delay`` ticks the output voltages are decoded into the task action ``δ(v)``
and the task steps. If every agent ``n`` acts by ``σ(K^n v + b^n)`` (``neuron_env.NetworkPolicy``)
the task sees exactly the actions of the plain network ``μ(s_t)`` with the default delay. Each
agent is the sub-environment ``E^n`` of the draft: it observes what it is connected to, acts
with its next voltage and receives the task's reward.

The task may have any space ``neuron_env.spaces`` can encode (its module doc has the table):
observations of a ``Box`` of any shape, ``Discrete`` (one-hot), ``MultiDiscrete``,
``MultiBinary``, ``Tuple``/``Dict`` of these, or images (a fixed random projection, or your
frozen ``torch.nn.Module``); actions of a ``Box``, ``Discrete`` (one output neuron per action,
``argmax`` or ``sample``), ``MultiDiscrete`` or ``MultiBinary``. Without a ``topology`` the
network is sized through the encoder and decoder (``Topology.for_task``), so
``neuron_v0.parallel_env(task="CartPole-v1")`` is a 4-64-64-2 network. The agents' spaces stay
``Box`` voltages whatever the task's spaces.

## Observation space

Agent ``<group>_<i>`` observes the voltages of the source groups of every projection into
``<group>``, concatenated in projection order, each group's neurons in index order
(``topology.presynaptic_index[group]``). Masked-out connections are still observed (they carry
zero weight), so all agents of a group share one ``Box`` whose bounds are each observed
neuron's voltage range: the encoded task-observation bounds for input neurons, the
activation's range otherwise (tanh ``[-1, 1]``, sigmoid ``[0, 1]``, relu ``[0, inf)``,
identity unbounded). With ``observe="all"`` every agent observes all ``N`` voltages.
Observation arrays are read-only and shared by the agents of a group (fresh every tick).

## Action space

``Box(low, high, shape=(1,), float32)`` with the agent's activation range: the neuron's next
voltage. In a leaky group (leak ``λ``) the voltage becomes ``λ v + (1 − λ) a``. Actions outside
the range raise ``InvalidActionError`` (or are clipped with ``out_of_range="clip"``); NaN or
inf always raise. Each action is one number: an array of one element (the space's shape ``(1,)``)
or a scalar.

## Rewards

Every agent receives the task's reward on the tick where the task steps and 0 on the other
ticks, so one task step's reward is counted once per agent per task step. On that tick every
agent's info is ``{"task_stepped": True, "task_action": ..., "task": task_info}``
(``task_action``: the decoded action the task received, e.g. an integer for a ``Discrete``
task); on the other ticks infos are empty (with ``clock="async"``: ``{"fired": ...}``, see
Clock). ``task_info`` is a shallow copy of the info the task's ``step`` returned
(at an episode end the last step's, not the autoreset's). Each agent has its own info dict; the
``"task"`` dict is shared by the agents of the tick (treat it as read-only). Between task steps
an agent's empty info dict may be the same object as on the previous such tick; once anybody
writes into one, a fresh set is handed out, so a written dict never reappears.

## Clock

With ``clock="sync"`` (default) every agent's action takes effect on every tick. With
``clock="async"`` there is no global clock for the neurons: on each tick every agent fires with
probability ``firing_rate`` (independently per agent, from a stream seeded by
``reset(seed=...)``); an agent that does not fire keeps its voltage (in a leaky group it decays
to ``λ v``) and its action, still required and checked, is ignored. Every agent's info then
holds ``"fired"`` (bool) on every tick: whether its action of that tick took effect. The task
still steps every ``delay`` ticks; ``firing_rate=1`` is ``clock="sync"`` bit for bit.

## Starting state

Hidden and output voltages are 0; input neurons hold ``ε(s_0)`` of the task's reset.

## Episode end

The task's termination terminates every agent; the task's truncation (e.g. its time limit)
or ``max_cycles`` ticks truncates every agent. After that ``env.agents`` is empty and
``step`` raises ``ResetNeeded`` until ``reset``. The last observation holds the final task
observation in the input neurons.

## Arguments

```python
neuron_v0.parallel_env(task="Pendulum-v1", topology=None, delay=None, observe="presynaptic",
                       max_cycles=None, render_mode=None, hidden=(64, 64), encoder=None,
                       out_of_range="error", device="cpu", task_kwargs=None, decoder=None,
                       clock="sync", firing_rate=1.0)
```

* ``task``: Gymnasium id or callable returning an env (its spaces: see ``neuron_env.spaces``).
* ``topology``: a ``neuron_env.Topology``; default ``Topology.for_task(task, hidden, encoder=encoder,
  decoder=decoder)``, a tanh MLP sized through the encoder and decoder.
* ``delay``: ticks per task step; default the topology's depth (acyclic) or 1 (cyclic).
* ``observe``: ``"presynaptic"`` or ``"all"``.
* ``max_cycles``: truncate after this many ticks (``None``: only the task ends episodes).
* ``render_mode``: ``"rgb_array"``/``"human"``: the task's frame beside a picture of the network's
  activity (voltages per group, the tick, the reward); ``None`` renders nothing.
* ``encoder``: ``None`` (the observation space's default), ``"identity"``, ``"affine"`` (finite
  bounds onto ``[-1, 1]``), ``"projection"``, a ``torch.nn.Module`` (a frozen encoder) or a
  ``neuron_env.spaces.ObservationEncoder``.
* ``decoder``: ``None`` (the action space's default), ``"sample"`` (Discrete/MultiDiscrete) or a
  ``neuron_env.spaces.ActionDecoder``.
* ``clock``, ``firing_rate``: ``"sync"``, or ``"async"`` with a firing probability in ``(0, 1]``.
* ``out_of_range``: ``"error"`` or ``"clip"``.
* ``device``: torch device of the voltages.

## Version history

* v0: initial release (neuron-env 0.1.0). Later, without changing Box tasks' behaviour: any task
  space through ``encoder``/``decoder``, and the asynchronous clock (``clock``, ``firing_rate``).
"""

from __future__ import annotations

from typing import Any

from pettingzoo.utils.conversions import parallel_to_aec_wrapper
from pettingzoo.utils.wrappers import OrderEnforcingWrapper

from neuron_env.parallel import NeuronParallelEnv, parallel_env

metadata = NeuronParallelEnv.metadata

__all__ = ["env", "metadata", "parallel_env", "raw_env"]


def raw_env(**kwargs: Any) -> parallel_to_aec_wrapper:
    """The AEC view without the order-enforcing wrapper."""
    return parallel_to_aec_wrapper(parallel_env(**kwargs))


def env(**kwargs: Any) -> OrderEnforcingWrapper:
    """The AEC view of ``parallel_env``.

    Agents act one after another; the tick happens once every agent has acted.
    """
    return OrderEnforcingWrapper(raw_env(**kwargs))
