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
inf always raise.

Each action is **one finite real number**, the same contract in the parallel view, the AEC view,
``SubEnv`` and the TorchRL env (``neuron_env.actions``). Accepted forms:

* a Python ``float``, ``int`` or ``bool`` (``True`` is 1.0);
* a numpy scalar of a real dtype (``np.float32(0.5)``);
* a numpy array of shape ``(1,)`` or ``()`` of a real dtype (bool, integer or floating), such
  as the space samples: ``np.array([0.5], dtype=np.float32)``;
* a torch tensor of shape ``(1,)`` or ``()`` of a real dtype, on any device;
* a list or tuple holding one such number (``[0.5]``).

Anything else raises ``InvalidActionError`` naming the agent and showing the value: strings and
bytes (even ``"0.5"``), complex numbers, ``None``, other objects, other shapes (``(2,)``,
``(1, 1)``, a list of two numbers), NaN, ±inf, or a magnitude float32 cannot hold. The parallel
view refuses the whole tick (nothing changes; fix the action and step again). The AEC view
checks each action at the ``step`` of the agent that gives it: the bad action is not recorded,
the agent stays selected and may act again, and the cycle goes on.

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

## Ticks, episodes and discounts for clients

A MARL library counts env steps, and an env step here is a tick. Every view (parallel, AEC,
``NeuronTorchRLEnv``) tells a client what it needs to size its episodes and discounts:

* ``env.delay``: ticks per task step (the network's depth by default);
* ``env.task_episode_steps``: the task's own episode bound in task steps (its ``TimeLimit``,
  e.g. 200 for Pendulum-v1), ``None`` where only the task's termination ends an episode;
* ``env.ticks_per_task_episode``: ``delay × task_episode_steps``, the ticks of a full task
  episode: give a library's episode bound (``max_cycles``, rollout ``max_steps``) at least this;
* ``env.per_tick_discount(task_gamma)``: ``task_gamma ** (1 / delay)``, the per-tick discount that
  discounts consecutive task rewards by ``task_gamma`` (``neuron_env.parallel.per_tick_discount``
  is the same as a function of ``(task_gamma, delay)``).

```python
env = neuron_v0.parallel_env(task="Pendulum-v1", topology=Topology.mlp(3, [8, 8], 1))
env.delay, env.task_episode_steps, env.ticks_per_task_episode   # 3, 200, 600
env.per_tick_discount(0.99)                                     # 0.99 ** (1 / 3) = 0.99666
```

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
  space through ``encoder``/``decoder``, and the asynchronous clock (``clock``, ``firing_rate``). The action
  contract (see Action space) now refuses strings, bytes, complex numbers and ``(1, 1)`` arrays,
  which earlier versions accepted in some views, and the AEC view checks each action at its agent.
"""

from __future__ import annotations

from typing import Any

from pettingzoo.utils.conversions import parallel_to_aec_wrapper
from pettingzoo.utils.wrappers import OrderEnforcingWrapper

from neuron_env.parallel import NeuronParallelEnv, parallel_env

metadata = NeuronParallelEnv.metadata

__all__ = ["NeuronAECEnv", "env", "metadata", "parallel_env", "raw_env"]


class NeuronAECEnv(parallel_to_aec_wrapper):
    """PettingZoo's AEC view of ``NeuronParallelEnv`` that checks each action when its agent gives it.

    PettingZoo's ``parallel_to_aec_wrapper`` buffers every agent's action and hands them all to
    the parallel env when the last agent acts, so a bad action from an earlier agent would be
    reported at the last agent, stay buffered, and fail every later tick until ``reset``. Here
    ``step`` checks the action first (``NeuronParallelEnv.check_action``: the action contract,
    finiteness and range, the checks the tick applies) and raises ``InvalidActionError`` naming
    the agent that gave it; the bad action is not buffered and the same agent may act again.

    Args:
        env: The parallel env to view.

    Attributes:
        env: The parallel env it views; ``delay``, ``task_episode_steps``,
            ``ticks_per_task_episode`` and ``per_tick_discount`` are its (see ``NeuronParallelEnv``).
    """

    def __init__(self, env: NeuronParallelEnv) -> None:
        super().__init__(env)
        self.env: NeuronParallelEnv = env

    @property
    def delay(self) -> int:
        """Ticks per task step (a tick happens once every agent has acted)."""
        return self.env.delay

    @property
    def task_episode_steps(self) -> int | None:
        """The task's episode bound in task steps, or ``None`` if unbounded."""
        return self.env.task_episode_steps

    @property
    def ticks_per_task_episode(self) -> int | None:
        """Ticks of a full task episode, ``delay × task_episode_steps`` (``None`` if unbounded)."""
        return self.env.ticks_per_task_episode

    def per_tick_discount(self, task_gamma: float) -> float:
        """The discount per tick matching ``task_gamma`` per task step (``task_gamma ** (1 / delay)``)."""
        return self.env.per_tick_discount(task_gamma)

    def step(self, action: Any) -> None:
        """Record the selected agent's action (checked first); the tick runs once every agent has acted.

        Args:
            action: The action of ``agent_selection``: one finite real number in its range, in
                any accepted form (``neuron_env.actions``); ``None`` for an agent that is done.

        Raises:
            InvalidActionError: Naming the selected agent, if its action is refused; nothing
                is recorded and the agent stays selected.
        """
        agent = self.agent_selection
        if not (self.terminations[agent] or self.truncations[agent]):
            action = self.env.check_action(agent, action)  # a new float32 array of shape (1,)
        super().step(action)


def raw_env(**kwargs: Any) -> NeuronAECEnv:
    """The AEC view without the order-enforcing wrapper."""
    return NeuronAECEnv(parallel_env(**kwargs))


def env(**kwargs: Any) -> OrderEnforcingWrapper:
    """The AEC view of ``parallel_env``.

    Agents act one after another; the tick happens once every agent has acted. Each action is
    checked when its agent gives it: a refused action raises ``InvalidActionError`` at that
    agent's ``step``, is not recorded, and the agent may act again (``NeuronAECEnv``).
    """
    return OrderEnforcingWrapper(raw_env(**kwargs))
