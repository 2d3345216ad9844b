"""BenchMARL: neuron-env as a BenchMARL task, with settings sized to the network's clock.

BenchMARL runs its algorithms (MAPPO, IPPO, MADDPG, IDDPG, MASAC, ISAC) on *tasks*. This module
is the neuron-env task, ready to import, and the settings this package recommends for it:

    from neuron_env.integrations.benchmarl import make_experiment, neuron_task, recommended_settings

    task = neuron_task("Pendulum-v1", hidden=(8, 8))         # a BenchMARL TaskClass: 17 agents, delay 3
    settings = recommended_settings(task, max_task_steps=20_000)
    experiment = make_experiment(task, "mappo", settings=settings, seed=0)
    experiment.run()

Every non-input layer of the network is one BenchMARL agent group (``h1``, ``h2``, ``out``),
whose neurons share one policy (``share_policy_params=True``, BenchMARL's default); the global
state MAPPO's and MADDPG's centralised critics see is every neuron's voltage.

The env
-------
``neuron_task(..., env="native")`` (the default) builds the task's envs on
``NeuronTorchRLEnv``, the batched TorchRL env: BenchMARL takes it as a vectorised env (like
VMAS), so ``n_envs_per_worker`` task copies run in one env with no per-agent Python loop.
``env="pettingzoo"`` builds TorchRL's ``PettingZooWrapper`` around ``neuron_v0.parallel_env``
instead, which BenchMARL copies ``n_envs_per_worker`` times in a ``SerialEnv`` and which
converts every agent's data one by one; it is many times slower (``docs/integrations.md`` has
the measurement) and is kept for comparison.

The clock, and why the settings differ from BenchMARL's
-------------------------------------------------------
One BenchMARL *frame* is one env step, and an env step here is one **tick**; the task steps,
and pays its reward, once every ``delay`` ticks (the network's depth: 3 for
``Topology.mlp(3, [8, 8], 1)``). BenchMARL's defaults count frames as if every frame were a
task step, which the issue this module answers (issue 26) found silently harmful: with the old
example's ``max_cycles=100`` every Pendulum episode was cut at 33 of its 200 task steps, and
``gamma=0.99`` per tick is 0.97 per task step. ``recommended_settings`` converts from the
task's point of view:

* ``max_cycles`` (the task config; BenchMARL's ``max_steps``) = ``delay × task_episode_steps``:
  training and evaluation episodes as long as the task's own (600 ticks for Pendulum-v1 at
  delay 3).
* ``gamma`` = ``task_gamma ** (1 / delay)``: consecutive task rewards are discounted by
  ``task_gamma`` (BenchMARL's 0.99), the task's horizon of 100 task steps.
* ``lmbda`` (MAPPO, IPPO) = ``task_lmbda ** (1 / delay)``: GAE mixes its TD errors over as many
  task steps as BenchMARL's 0.9 does on a task that steps every frame.
* ``on_policy_collected_frames_per_batch`` and ``off_policy_collected_frames_per_batch`` = whole
  task episodes, the fewest that reach BenchMARL's 6000 frames (10 Pendulum episodes at delay 3):
  on a fixed-length task every batch then ends on an episode boundary, so the logged returns are
  complete episodes and on-policy advantages never bootstrap across a cut.
* ``*_n_envs_per_worker`` = the largest divisor of the episodes per batch up to BenchMARL's 10:
  each copy collects the same whole number of episodes.
* ``off_policy_n_optimizer_steps`` = ``frames_per_batch / 6``: BenchMARL's 1000 gradient steps per
  6000 frames, kept when the batch is rounded to whole episodes.
* ``on_policy_minibatch_size`` = ``min(400, frames_per_batch)``: BenchMARL's, never above a batch.
* ``evaluation_interval`` = a whole number of batches, so of episodes (BenchMARL evaluates only
  when the frame count is a multiple of it): about ``evaluations`` (10) evaluations over
  ``max_task_steps``, or without a budget BenchMARL's 120 000 frames rounded to whole batches.
  ``evaluation_episodes`` stays 10, each one full ``max_cycles``-tick episode.
* ``max_n_frames`` = ``delay × max_task_steps`` rounded up to whole batches: a budget stated in
  task steps, as every other learner of this package states it.

**These are first-principles defaults that issue 26's study will measure**, not tuned values:
the study compares them with BenchMARL's own defaults on the same seeds. Learning rates,
network sizes and exploration stay BenchMARL's.

Installing
----------
BenchMARL 1.5.2 needs torchrl 0.11.1 (the ``dev`` and ``integrations`` extras have 0.14) and a
torch/torchvision pair that import together, so it lives in a venv of its own:

    make test-marl        # builds .venv-marl (torch 2.14.1, torchvision 0.29.1, the benchmarl extra), runs its tests

or by hand: ``pip install torch==2.14.1 torchvision==0.29.1`` then
``pip install torch==2.14.1 torchvision==0.29.1 -e ".[benchmarl]"``. This module imports
BenchMARL only inside the functions that need it: ``task_config``,
``recommended_settings``, ``group_map`` and ``RecommendedSettings`` work without
it, and the others raise one ``ImportError`` naming that command.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from functools import cache
from typing import Any

import torch

from neuron_env.parallel import DEFAULT_HIDDEN, NeuronParallelEnv, per_tick_discount, task_topology
from neuron_env.topology import Topology

# ``NeuronTaskClass`` and ``NeuronTask`` are public too; they subclass BenchMARL's classes, so the
# module's ``__getattr__`` builds them on first use and they stay out of ``__all__``.
__all__ = [
    "ALGORITHMS",
    "ENV_KINDS",
    "INSTALL_HINT",
    "MODEL_INITS",
    "RecommendedSettings",
    "UnitGainLinear",
    "config_topology",
    "group_map",
    "make_experiment",
    "native_env",
    "neuron_task",
    "recommended_settings",
    "task_config",
]

#: How the task's envs are built: ``"native"`` (``NeuronTorchRLEnv``) or ``"pettingzoo"``
#: (TorchRL's ``PettingZooWrapper`` around ``neuron_v0.parallel_env``).
ENV_KINDS: tuple[str, ...] = ("native", "pettingzoo")

#: BenchMARL algorithms for continuous actions (every neuron's action is a voltage).
ALGORITHMS: tuple[str, ...] = ("mappo", "ippo", "maddpg", "iddpg", "masac", "isac")

#: How to get BenchMARL, as the missing-dependency error says it.
INSTALL_HINT = ('run `make test-marl` (builds .venv-marl) or, in a venv of its own, `pip install torch==2.14.1 '
                'torchvision==0.29.1 -e ".[benchmarl]"`')

# BenchMARL 1.5.2's defaults (benchmarl/conf/experiment/base_experiment.yaml, conf/algorithm/mappo.yaml)
# that the recommendations start from.
BENCHMARL_FRAMES_PER_BATCH = 6000
BENCHMARL_N_ENVS_PER_WORKER = 10
BENCHMARL_MINIBATCH_SIZE = 400
BENCHMARL_OPTIMIZER_STEPS_PER_FRAME = 1000 / 6000
BENCHMARL_EVALUATION_INTERVAL = 120_000
BENCHMARL_GAMMA = 0.99
BENCHMARL_LMBDA = 0.9


class UnitGainLinear(torch.nn.Linear):
    """``nn.Linear`` that starts by passing its input's variation on: weights N(0, 1/fan_in), biases 0.

    PyTorch's default init (weights uniform in ±1/√fan_in, variance 1/(3·fan_in)) divides a
    signal's variance by about three per layer (its std by √3), so a 256-256 policy MLP starts as
    a nearly constant function of its input. On a network of agents each agent's input is the
    actions of the agents before it, and the task state fades from layer to layer (the MARL
    study's ``sharing.md``). LeCun's variance, 1/fan_in, keeps each layer's pre-activation
    variance equal to its input's at init (tanh still compresses large values).
    """

    def reset_parameters(self) -> None:
        """Weights N(0, 1/fan_in), biases 0."""
        torch.nn.init.normal_(self.weight, std=self.in_features ** -0.5)
        if self.bias is not None:
            torch.nn.init.zeros_(self.bias)


#: How ``make_experiment`` initializes every policy and critic MLP layer: ``"pytorch"`` (BenchMARL's
#: ``nn.Linear``) or ``"unit-gain"`` (``UnitGainLinear``).
MODEL_INITS: dict[str, type[torch.nn.Linear]] = {"pytorch": torch.nn.Linear, "unit-gain": UnitGainLinear}


# ---------------------------------------------------------------------- pure parts (no BenchMARL)
def task_config(
    task: str = "Pendulum-v1",
    *,
    hidden: Sequence[int] = DEFAULT_HIDDEN,
    topology: str = "mlp",
    activation: str = "tanh",
    delay: int | None = None,
    max_cycles: int | None = None,
    observe: str = "presynaptic",
    env: str = "native",
    state: bool = True,
    agent_id: bool = False,
    out_of_range: str = "error",
    task_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The resolved config of a neuron-env BenchMARL task: plain data, every default filled in.

    BenchMARL keeps a task's config as a dict (it logs it and pickles it with checkpoints), so
    the network is described by its arguments, not by a ``Topology`` object. One copy of the
    task is made to read its time limit and the network's delay.

    Args:
        task: A Gymnasium id.
        hidden: Hidden sizes (``topology="recurrent"`` or ``"sparse"``: ``hidden[0]`` neurons).
        topology: ``"mlp"``, ``"recurrent"`` or ``"sparse"`` (``neuron_env.parallel.task_topology``).
        activation: Activation of the hidden neurons (the output layer is tanh).
        delay: Ticks per task step; ``None``: the network's depth (1 when recurrent).
        max_cycles: Ticks per episode, training and evaluation; ``None``: a full task episode,
            ``delay × the task's max_episode_steps``. With ``env="native"`` it must be a multiple
            of ``delay`` (the native env bounds episodes through the task's time limit).
        observe: ``"presynaptic"`` or ``"all"``.
        env: ``"native"`` (``NeuronTorchRLEnv``, batched) or ``"pettingzoo"`` (TorchRL's
            ``PettingZooWrapper``); see the module page.
        state: Give every neuron's voltage as the global ``"state"`` (MAPPO's and MADDPG's
            centralised critics read it; without it they concatenate the observations).
        agent_id: Append each neuron's one-hot index within its layer to its observation
            (``NeuronTorchRLEnv(agent_id=True)``; ``env="native"`` only). The neurons of a layer
            observe the same voltages, so under BenchMARL's ``share_policy_params=True`` their
            shared policy acts the same for all of them without it.
        out_of_range: ``"error"`` or ``"clip"`` for actions outside a neuron's range (BenchMARL's
            policies squash into bounded ranges; relu or identity layers need ``"clip"``).
        task_kwargs: Keyword arguments of ``gym.make`` (plain data).

    Returns:
        ``{"task", "topology", "hidden", "activation", "delay", "task_episode_steps",
        "max_cycles", "observe", "env", "state", "agent_id", "out_of_range", "task_kwargs"}``.

    Raises:
        ValueError: On a task that is not an id, an unknown ``env``, a task without a time limit
            and no ``max_cycles``, a ``max_cycles`` the chosen env cannot bound episodes by, or
            ``agent_id`` with ``env="pettingzoo"``.
    """
    if not isinstance(task, str):
        raise ValueError(f"task={task!r} must be a Gymnasium id such as 'Pendulum-v1' (BenchMARL configs are data)")
    if env not in ENV_KINDS:
        raise ValueError(f"env={env!r} is unknown; use one of {list(ENV_KINDS)}")
    if not isinstance(agent_id, bool):
        raise ValueError(f"agent_id={agent_id!r} must be True or False")
    _check_agent_id_env(agent_id, env)
    if max_cycles is not None and (isinstance(max_cycles, bool) or not isinstance(max_cycles, int) or max_cycles < 1):
        raise ValueError(f"max_cycles={max_cycles!r} must be a positive number of ticks (None: a full task episode)")
    kwargs = dict(task_kwargs or {})
    network = task_topology(task, topology, tuple(hidden), activation, task_kwargs=kwargs)
    probe = NeuronParallelEnv(task, network, delay=delay, observe=observe, task_kwargs=kwargs)
    resolved_delay, episode_steps = probe.delay, probe.task_episode_steps
    probe.close()
    if max_cycles is None:
        if episode_steps is None:
            raise ValueError(f"task {task!r} has no time limit: pass max_cycles=<ticks per episode> "
                             f"(a multiple of delay={resolved_delay})")
        max_cycles = resolved_delay * episode_steps
    if env == "native" and max_cycles % resolved_delay:
        fitting = max(resolved_delay, max_cycles // resolved_delay * resolved_delay)
        raise ValueError(f"max_cycles={max_cycles} is not a multiple of delay={resolved_delay}: the native env ends "
                         f"episodes on task steps; use max_cycles={fitting}, or env='pettingzoo'")
    return {
        "task": task, "topology": topology, "hidden": [int(size) for size in hidden], "activation": activation,
        "delay": resolved_delay, "task_episode_steps": episode_steps, "max_cycles": max_cycles,
        "observe": observe, "env": env, "state": bool(state), "agent_id": bool(agent_id), "out_of_range": out_of_range,
        "task_kwargs": kwargs,
    }


def _check_agent_id_env(agent_id: bool, env: str) -> None:
    """Refuse ``agent_id`` on an env that cannot append the one-hots (only the native env does)."""
    if agent_id and env != "native":
        raise ValueError(f"agent_id=True needs env='native' (NeuronTorchRLEnv appends the one-hots), not env={env!r}")


def config_topology(config: Mapping[str, Any]) -> Topology:
    """The network a resolved task config (``task_config``) describes."""
    return task_topology(config["task"], config["topology"], tuple(config["hidden"]), config["activation"],
                         task_kwargs=dict(config["task_kwargs"]))


def group_map(topology: Topology) -> dict[str, list[str]]:
    """BenchMARL's agent groups of a network: ``{layer: [agent ids]}``, every non-input layer one group.

    The same grouping TorchRL's ``PettingZooWrapper`` infers from the ``<group>_<i>`` ids and
    ``NeuronTorchRLEnv.group_map`` holds.
    """
    return {group.name: list(topology.agent_ids[topology.agent_slice[group.name]])
            for group in topology.agent_groups}


@dataclass(frozen=True)
class RecommendedSettings:
    """BenchMARL settings sized to the network's clock: first-principles defaults issue 26's study will measure.

    Field names are BenchMARL's (``ExperimentConfig`` attributes, and ``lmbda`` of MAPPO/IPPO);
    ``None`` leaves BenchMARL's value. ``apply`` writes them into BenchMARL's config objects.
    Frames are ticks. The module page has each setting's reason in one table.
    """

    gamma: float
    """Discount per frame (tick): ``task_gamma ** (1 / delay)``, the task's horizon in task steps."""
    lmbda: float
    """GAE λ per tick for MAPPO/IPPO: ``task_lmbda ** (1 / delay)`` (ignored by algorithms without it)."""
    on_policy_collected_frames_per_batch: int
    """Whole task episodes: ``episodes_per_batch × max_cycles``."""
    on_policy_n_envs_per_worker: int
    """Env copies; divides ``episodes_per_batch``, so each copy collects whole episodes."""
    on_policy_minibatch_size: int
    """BenchMARL's 400 frames, never more than a batch."""
    off_policy_collected_frames_per_batch: int
    """The same whole episodes as the on-policy batch."""
    off_policy_n_envs_per_worker: int
    """As ``on_policy_n_envs_per_worker``."""
    off_policy_n_optimizer_steps: int
    """BenchMARL's 1000 gradient steps per 6000 frames, scaled to the batch."""
    evaluation_interval: int
    """Frames between evaluations: a whole number of batches (BenchMARL requires it), so of episodes."""
    evaluation_episodes: int
    """Evaluation episodes, each one full ``max_cycles``-tick episode (one env copy each)."""
    max_n_frames: int | None
    """``delay × max_task_steps`` rounded up to whole batches; ``None``: BenchMARL's budget is kept."""
    max_n_iters: int | None
    """``None`` (the budget is ``max_n_frames``), kept explicit so that ``apply`` clears the default."""
    episodes_per_batch: int
    """Task episodes per batch (information; not a BenchMARL field)."""
    evaluation_interval_episodes: int
    """``evaluation_interval`` in training episodes (information; not a BenchMARL field)."""

    #: Fields that describe the settings but are no BenchMARL attribute.
    INFORMATION = ("episodes_per_batch", "evaluation_interval_episodes")

    def experiment_fields(self) -> dict[str, Any]:
        """The ``ExperimentConfig`` attributes to set (``lmbda``, ``None`` budgets and information left out)."""
        skip = {"lmbda", *self.INFORMATION}
        values = {key: value for key, value in asdict(self).items() if key not in skip}
        if values["max_n_frames"] is None:  # no budget given: keep BenchMARL's max_n_frames/max_n_iters
            del values["max_n_frames"], values["max_n_iters"]
        return values

    def apply(self, experiment_config: Any, algorithm_config: Any | None = None) -> None:
        """Write the settings into BenchMARL's ``ExperimentConfig`` (and an algorithm config that has ``lmbda``).

        Args:
            experiment_config: A ``benchmarl.experiment.ExperimentConfig``.
            algorithm_config: A BenchMARL algorithm config; its ``lmbda`` is set where it has one
                (MAPPO, IPPO).

        Raises:
            AttributeError: If ``experiment_config`` lacks one of the fields (not an ``ExperimentConfig``).
        """
        for key, value in self.experiment_fields().items():
            if not hasattr(experiment_config, key):
                raise AttributeError(f"{type(experiment_config).__name__} has no attribute {key!r}; pass a "
                                     "benchmarl.experiment.ExperimentConfig")
            setattr(experiment_config, key, value)
        if algorithm_config is not None and hasattr(algorithm_config, "lmbda"):
            algorithm_config.lmbda = self.lmbda


def recommended_settings(
    task: Mapping[str, Any] | Any,
    *,
    task_gamma: float = BENCHMARL_GAMMA,
    task_lmbda: float = BENCHMARL_LMBDA,
    episodes_per_batch: int | None = None,
    max_task_steps: int | None = None,
    evaluations: int = 10,
    evaluation_episodes: int = 10,
) -> RecommendedSettings:
    """The BenchMARL settings this package recommends for a task, from its clock (see the module page).

    **First-principles defaults that issue 26's study will measure.** Pure arithmetic on the
    task's ``delay`` and ``max_cycles``; BenchMARL is not needed.

    Args:
        task: A ``task_config`` dict or a task from ``neuron_task`` (its ``config``).
        task_gamma: Discount per *task step* (BenchMARL's 0.99); the result's ``gamma`` is per tick.
        task_lmbda: GAE λ per task step (BenchMARL's 0.9); the result's ``lmbda`` is per tick.
        episodes_per_batch: Task episodes per collected batch; ``None``: the fewest whole episodes
            that reach BenchMARL's 6000 frames.
        max_task_steps: The training budget in task steps; ``None`` keeps BenchMARL's budget.
        evaluations: About how many evaluations over ``max_task_steps`` (without a budget:
            one every 120 000 frames, BenchMARL's interval, rounded to whole batches).
        evaluation_episodes: Episodes per evaluation.

    Returns:
        The settings; ``settings.apply(experiment_config, algorithm_config)`` writes them.

    Raises:
        ValueError: On a task config without ``delay``/``max_cycles``, a discount outside
            ``[0, 1]`` or a count below 1.
    """
    config = getattr(task, "config", task)
    try:
        delay, episode_ticks = int(config["delay"]), int(config["max_cycles"])
    except (KeyError, TypeError):
        raise ValueError(f"task {task!r} has no 'delay' and 'max_cycles'; pass task_config(...) or "
                         "neuron_task(...)") from None
    for name, value in (("episodes_per_batch", episodes_per_batch), ("max_task_steps", max_task_steps),
                        ("evaluations", evaluations), ("evaluation_episodes", evaluation_episodes)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name}={value!r} must be an integer >= 1")
    if not 0.0 <= task_lmbda <= 1.0:
        raise ValueError(f"task_lmbda={task_lmbda!r} must be in [0, 1], e.g. 0.9")
    episodes = episodes_per_batch or math.ceil(BENCHMARL_FRAMES_PER_BATCH / episode_ticks)
    frames_per_batch = episodes * episode_ticks
    n_envs = max(d for d in range(1, min(episodes, BENCHMARL_N_ENVS_PER_WORKER) + 1) if episodes % d == 0)
    if max_task_steps is not None:
        batches = math.ceil(max_task_steps * delay / frames_per_batch)
        max_n_frames: int | None = batches * frames_per_batch
        every = max(1, math.ceil(batches / evaluations))
    else:
        max_n_frames = None
        every = max(1, round(BENCHMARL_EVALUATION_INTERVAL / frames_per_batch))
    return RecommendedSettings(
        gamma=per_tick_discount(task_gamma, delay),
        lmbda=float(task_lmbda) ** (1.0 / delay),
        on_policy_collected_frames_per_batch=frames_per_batch,
        on_policy_n_envs_per_worker=n_envs,
        on_policy_minibatch_size=min(BENCHMARL_MINIBATCH_SIZE, frames_per_batch),
        off_policy_collected_frames_per_batch=frames_per_batch,
        off_policy_n_envs_per_worker=n_envs,
        off_policy_n_optimizer_steps=max(1, round(frames_per_batch * BENCHMARL_OPTIMIZER_STEPS_PER_FRAME)),
        evaluation_interval=every * frames_per_batch,
        evaluation_episodes=evaluation_episodes,
        max_n_frames=max_n_frames,
        max_n_iters=None,
        episodes_per_batch=episodes,
        evaluation_interval_episodes=every * episodes,
    )


# ---------------------------------------------------------------------- BenchMARL parts (imported lazily)
def _import_benchmarl() -> None:
    """Import BenchMARL, or raise one ``ImportError`` saying how to get it."""
    try:
        import benchmarl  # noqa: F401
    except (ImportError, RuntimeError) as error:  # RuntimeError: a torchvision that does not match torch
        raise ImportError(f"neuron_env.integrations.benchmarl needs BenchMARL ({error}); {INSTALL_HINT}") from None


@cache
def _benchmarl_classes() -> dict[str, type]:
    """Build ``NeuronTaskClass`` and ``NeuronTask`` on BenchMARL's base classes (once, on first use)."""
    _import_benchmarl()
    from benchmarl.environments.common import Task, TaskClass
    from torchrl.data import Composite

    class NeuronTaskClass(TaskClass):
        """A BenchMARL task whose env is a neuron-env network on a Gymnasium task.

        Args:
            name: The task's name in BenchMARL's logs and folder names (``neuron_task``
                uses the Gymnasium id).
            config: ``task_config``'s keyword arguments, or its result; missing keys take
                ``task_config``'s defaults, so ``NeuronTask.NEURON.get_task(config={...})``
                works too.
        """

        def __init__(self, name: str, config: dict[str, Any] | None) -> None:
            config = dict(config or {})
            if "delay" not in config or "task_episode_steps" not in config:  # not resolved yet
                config.pop("task_episode_steps", None)
                config = task_config(**config)
            super().__init__(name=name, config=config)

        def get_env_fun(self, num_envs: int, continuous_actions: bool, seed: int | None,
                        device: Any) -> Callable[[], Any]:
            """A function building the env: ``num_envs`` copies in one native env, or one PettingZoo env.

            BenchMARL wraps an env without a batch size (the PettingZoo one) in a ``SerialEnv`` of
            ``num_envs`` copies itself; the native env is already batched.
            """
            config = copy.deepcopy(self.config)
            return lambda: _make_env(config, num_envs, seed, device)

        def supports_continuous_actions(self) -> bool:
            """Every neuron's action is a ``Box(1,)`` voltage."""
            return True

        def supports_discrete_actions(self) -> bool:
            """No discrete actions (whatever the task's action space: neurons act with voltages)."""
            return False

        def has_render(self, env: Any) -> bool:
            """No rendering in BenchMARL's evaluations (``neuron_v0`` renders with ``render_mode``)."""
            return False

        def max_steps(self, env: Any) -> int:
            """Ticks of an evaluation rollout: ``max_cycles``, a full episode by default."""
            return int(self.config["max_cycles"])

        def group_map(self, env: Any) -> dict[str, list[str]]:
            """One group per non-input layer (``h1``, ``h2``, ``out``)."""
            return {name: list(agents) for name, agents in env.group_map.items()}

        def observation_spec(self, env: Any) -> Any:
            """Each group's ``observation`` (presynaptic voltages), without the batch dimension."""
            spec = env.full_observation_spec_unbatched.clone()
            for name in self.group_map(env):
                for key in list(spec[name].keys()):
                    if key != "observation":
                        del spec[(name, key)]
            if "state" in spec.keys():
                del spec["state"]
            return spec

        def state_spec(self, env: Any) -> Any:
            """Every neuron's voltage, when the config's ``state`` is on."""
            spec = env.full_observation_spec_unbatched
            return Composite({"state": spec["state"].clone()}) if "state" in spec.keys() else None

        def action_spec(self, env: Any) -> Any:
            """Each group's ``action``: one voltage per neuron, bounded by its activation."""
            return env.full_action_spec_unbatched

        def action_mask_spec(self, env: Any) -> None:
            """No action masks."""
            return None

        def info_spec(self, env: Any) -> None:
            """No per-agent infos."""
            return None

        @staticmethod
        def env_name() -> str:
            """The environment's name in BenchMARL's logs."""
            return "neuron_env"

    class NeuronTask(Task):
        """BenchMARL's enum view: ``NeuronTask.NEURON.get_task(config={"task": "Pendulum-v1", ...})``."""

        NEURON = None

        @staticmethod
        def associated_class() -> type[TaskClass]:
            """The task class of ``NEURON``."""
            return NeuronTaskClass

    # Pickle finds classes by module and name: BenchMARL pickles the task into every experiment
    # folder, and the module's ``__getattr__`` hands out these same objects.
    for cls in (NeuronTaskClass, NeuronTask):
        cls.__module__, cls.__qualname__ = __name__, cls.__name__
    return {"NeuronTaskClass": NeuronTaskClass, "NeuronTask": NeuronTask}


def __getattr__(name: str) -> Any:
    """``NeuronTaskClass`` and ``NeuronTask``, built on BenchMARL's classes on first use."""
    if name in ("NeuronTaskClass", "NeuronTask"):
        return _benchmarl_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def native_env(config: Mapping[str, Any], num_envs: int, *, device: str | torch.device = "cpu",
               full_task_episodes: bool = False) -> Any:
    """The ``NeuronTorchRLEnv`` of a resolved task config: its network, clock, observations and episode bound.

    Args:
        config: A ``task_config`` result (a config saved before ``agent_id`` existed reads as ``False``).
        num_envs: Task copies in the env.
        device: Torch device.
        full_task_episodes: Bound episodes by the task's own limit even when ``max_cycles`` is
            shorter (an evaluation of full episodes); otherwise by ``max_cycles``.

    Returns:
        A ``NeuronTorchRLEnv`` (TorchRL needed).
    """
    from neuron_env.integrations.torchrl import NeuronTorchRLEnv

    task_kwargs = dict(config["task_kwargs"])
    delay, max_cycles = config["delay"], config["max_cycles"]
    if not full_task_episodes and max_cycles != delay * (config["task_episode_steps"] or 0):
        task_kwargs["max_episode_steps"] = max_cycles // delay  # a shorter (or any) bound: the task's limit
    return NeuronTorchRLEnv(config["task"], config_topology(config), num_envs=num_envs, device=device,
                            observe=config["observe"], return_state=config["state"],
                            agent_id=config.get("agent_id", False), delay=delay,
                            out_of_range=config["out_of_range"], task_kwargs=task_kwargs)


def _make_env(config: Mapping[str, Any], num_envs: int, seed: int | None, device: Any) -> Any:
    """The TorchRL env of a resolved task config (see ``NeuronTaskClass.get_env_fun``)."""
    if config["env"] == "native":
        env = native_env(config, num_envs, device=device)
        if seed is not None:
            env.set_seed(seed)
        return env
    _check_agent_id_env(config.get("agent_id", False), config["env"])
    topology = config_topology(config)
    delay, max_cycles = config["delay"], config["max_cycles"]
    import warnings

    from torchrl.envs.libs.pettingzoo import PettingZooWrapper

    from neuron_env import neuron_v0

    parallel = neuron_v0.parallel_env(task=config["task"], topology=topology, delay=delay, observe=config["observe"],
                                      max_cycles=max_cycles, out_of_range=config["out_of_range"],
                                      task_kwargs=dict(config["task_kwargs"]))
    with warnings.catch_warnings():  # "PettingZoo in TorchRL is tested using version == 1.24.3"
        warnings.filterwarnings("ignore", message="PettingZoo in TorchRL is tested")
        return PettingZooWrapper(env=parallel, categorical_actions=True, device=device, seed=seed,
                                 return_state=config["state"])


def neuron_task(task: str = "Pendulum-v1", **settings: Any) -> Any:
    """A BenchMARL task (a ``TaskClass``) running a neuron-env network on a Gymnasium task.

    Args:
        task: A Gymnasium id.
        **settings: ``task_config``'s keyword arguments: ``hidden``, ``topology``,
            ``activation``, ``delay``, ``max_cycles`` (default: a full task episode in ticks),
            ``observe``, ``env`` (``"native"`` or ``"pettingzoo"``), ``state``, ``agent_id``,
            ``out_of_range``, ``task_kwargs``.

    Returns:
        A ``NeuronTaskClass`` named after the task id, its ``config`` resolved (``delay``,
        ``task_episode_steps``, ``max_cycles`` filled in).

    Raises:
        ImportError: Without BenchMARL (naming how to install it).
        ValueError: On settings ``task_config`` refuses.
    """
    classes = _benchmarl_classes()
    return classes["NeuronTaskClass"](name=task, config=task_config(task, **settings))


def make_experiment(
    task: Any,
    algorithm: str = "mappo",
    *,
    settings: RecommendedSettings | str | None = None,
    seed: int = 0,
    model_cells: Sequence[int] | None = None,
    model_init: str = "pytorch",
    max_n_iters: int | None = None,
    save_folder: str | None = None,
    loggers: Sequence[str] = (),
    evaluation: bool = False,
    experiment_overrides: Mapping[str, Any] | None = None,
    algorithm_overrides: Mapping[str, Any] | None = None,
    callbacks: Sequence[Any] = (),
) -> Any:
    """A BenchMARL ``Experiment`` on a neuron task: BenchMARL's defaults, the recommended settings, quiet logs.

    Args:
        task: A task from ``neuron_task``.
        algorithm: One of ``ALGORITHMS``.
        settings: The settings to apply; ``None``: ``recommended_settings(task)``; ``"benchmarl"``:
            none, BenchMARL's own configs as its yaml files give them (its 3 000 000-frame budget
            included: set ``max_n_frames`` in ``experiment_overrides``).
        seed: The experiment's seed.
        model_cells: Hidden sizes of every policy and critic MLP; ``None``: BenchMARL's ``[256, 256]``.
        model_init: How their layers start: ``"pytorch"`` (BenchMARL's ``nn.Linear``) or
            ``"unit-gain"`` (``UnitGainLinear``: weights N(0, 1/fan_in), biases 0).
        max_n_iters: Stop after this many iterations (overrides the settings' frame budget).
        save_folder: Where BenchMARL writes its experiment folder; ``None``: a new temporary folder.
        loggers: BenchMARL loggers (``"csv"``, ``"tensorboard"``, ``"wandb"``); none by default.
        evaluation: Evaluate every ``settings.evaluation_interval`` frames (BenchMARL evaluates
            only with a logger or ``create_json``: this turns on ``create_json``).
        experiment_overrides: Further ``ExperimentConfig`` attributes, set last.
        algorithm_overrides: Attributes of the algorithm's config (e.g. ``lmbda``, ``scale_mapping``,
            ``share_param_critic``), set after the settings.
        callbacks: BenchMARL ``Callback`` objects (anything with its ``on_*`` methods) the experiment
            notifies, e.g. to evaluate the policy on a protocol of your own during training.

    Returns:
        A ``benchmarl.experiment.Experiment``; ``experiment.run()`` trains.

    Raises:
        ImportError: Without BenchMARL.
        ValueError: On an unknown ``algorithm`` or ``model_init``, or a ``settings`` string other than
            ``"benchmarl"``.
        AttributeError: On an unknown ``experiment_overrides`` or ``algorithm_overrides`` key.
    """
    _import_benchmarl()
    from benchmarl.algorithms import algorithm_config_registry
    from benchmarl.experiment import Experiment, ExperimentConfig
    from benchmarl.models.mlp import MlpConfig

    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm={algorithm!r} is not one of {list(ALGORITHMS)} (continuous-action algorithms)")
    if model_init not in MODEL_INITS:
        raise ValueError(f"model_init={model_init!r} is not one of {list(MODEL_INITS)}")
    if isinstance(settings, str) and settings != "benchmarl":
        raise ValueError(f"settings={settings!r}: pass RecommendedSettings, None (the recommended ones) or "
                         "'benchmarl' (BenchMARL's own configs)")
    config = ExperimentConfig.get_from_yaml()
    algorithm_config = algorithm_config_registry[algorithm].get_from_yaml()
    if settings != "benchmarl":
        (settings or recommended_settings(task)).apply(config, algorithm_config)
    if max_n_iters is not None:
        config.max_n_iters, config.max_n_frames = max_n_iters, None
    config.loggers = list(loggers)
    config.evaluation = evaluation
    config.create_json = evaluation
    config.render = False
    config.checkpoint_at_end = False
    config.save_folder = save_folder or tempfile.mkdtemp(prefix="benchmarl-neuron-")
    for key, value in (experiment_overrides or {}).items():
        if key not in {field.name for field in fields(ExperimentConfig)}:
            raise AttributeError(f"ExperimentConfig has no attribute {key!r} (experiment_overrides)")
        setattr(config, key, value)
    for key, value in (algorithm_overrides or {}).items():
        if key not in {field.name for field in fields(algorithm_config)}:
            raise AttributeError(f"{type(algorithm_config).__name__} has no attribute {key!r} (algorithm_overrides)")
        setattr(algorithm_config, key, value)
    model = MlpConfig.get_from_yaml()  # BenchMARL's: 256-256, nn.Linear, Tanh
    cells = list(model.num_cells if model_cells is None else model_cells)
    model = dataclasses.replace(model, num_cells=cells, layer_class=MODEL_INITS[model_init])
    return Experiment(task=task, algorithm_config=algorithm_config, model_config=model, critic_model_config=model,
                      seed=seed, config=config, callbacks=list(callbacks))
