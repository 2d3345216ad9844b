"""E1 ``subcritic-correlation``: do per-neuron critics agree with the global critic?

The draft's question: if each neuron ``n`` of a trained DDPG actor had its own critic ``Q^n``,
seeing only what the neuron sees (its layer's input ``x``) and what it does (its own output
``a^n``), would ``Q^n`` track the global critic ``Q^μ``, and would its action-derivative
``∂Q^n/∂a^n`` point the same way as the global one? The draft's code reported Pearson
r = 0.389 between ``Q^n`` and ``Q^μ`` on MountainCarContinuous.

What it does
------------
1. Trains Stable-Baselines3 DDPG on the task (``baselines.sb3_ddpg.train_sb3``,
   with all of the baseline's outputs in ``OUT/ddpg``).
2. Attaches sub-critics to ``neurons_per_layer`` randomly chosen neurons of every layer of the
   actor (``h1``, ``h2``, …, ``out``, the groups of ``Topology.from_module(model.actor.mu)``).
   Forward hooks on the actor read each layer's input and output; each sub-critic is a 3-layer
   MLP ``Q^n(x, a^n)`` (ReLU, ``subcritic_hidden`` units), and the sub-critics of one layer are
   stacked into one batched module: an update of all of them is a few batched matrix products,
   with no Python loop over neurons.
3. Trains them by TD on DDPG's own replay buffer:
   ``y = r + γ (1 − d) Q^n_target(x', a^n(s'))``, with ``x'``, ``a^n(s')`` the neuron's input and
   the actor's own activation at the next state, a soft-updated target copy (``τ`` as DDPG's),
   Adam. The neuron's action at the current state is what the neuron did in the transition: the
   replay's (noisy) action for output neurons, the actor's activation for hidden neurons (the
   replay carries no other information about what a hidden neuron did).
   ``protocol="joint"`` trains them alongside DDPG, one update per DDPG gradient step;
   ``protocol="two-phase"`` (the draft's) trains DDPG first, then freezes the actor and trains
   only the sub-critics for ``subcritic_updates`` steps.
4. On held-out transitions (a fixed ``holdout_fraction`` of replay slots never used for
   training), per neuron: Pearson r between ``Q^n(x(s), a^n(s))`` and ``Q^μ(s, μ(s))``, and
   between ``∂Q^n/∂a^n`` and ``∂Q^μ(s, μ(s))/∂a^n``, the latter by autograd through the actor's
   remaining layers and the critic (measurement only), plus the fraction of samples where the
   two derivatives agree in sign, counted over the samples where the global derivative is not
   exactly 0 (it is 0 wherever the actor's tanh output saturates, reported as
   ``global_derivative_zero_fraction``). Layer figures are the mean and median over its neurons.

Outputs in ``OUT``: ``subcritic_correlation.json`` (config, DDPG summary, per-layer and overall
figures) and ``subcritic_correlation.png`` (per-neuron r by layer; ``Q^n`` against ``Q^μ``).

Command line::

    neuron-env experiment subcritic-correlation --task Pendulum-v1 --steps 10000 --out runs/e1
    neuron-env experiment subcritic-correlation --task MountainCarContinuous-v0 --steps 50000 --protocol two-phase
    neuron-env experiment subcritic-correlation --layers h2 out --neurons-per-layer 32 --out runs/e1-h2

One module: one experiment (configuration, data, measurement, plot and command line), runnable alone.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from neuron_env.agents.critics import mlp_q
from neuron_env.baselines.errors import BaselineConfigError, MissingDependencyError
from neuron_env.baselines.sb3_ddpg import BaselineConfig, train_sb3
from torch import nn

from neuron_env.run_output import atomic_write_json
from neuron_env.topology import Topology

PROTOCOLS: tuple[str, ...] = ("joint", "two-phase")
#: Pearson r between Q^n and Q^μ that the draft's code reported on MountainCarContinuous-v0.
DRAFT_REFERENCE_R = 0.389


@dataclass
class SubcriticConfig:
    """Configuration of the sub-critic correlation experiment (E1)."""

    task: str = "Pendulum-v1"
    """Gymnasium id of the task (MountainCarContinuous-v0 is the draft's)."""
    steps: int = 10_000
    """DDPG task steps (phase 1)."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden sizes of the DDPG actor and critic (the local run's network)."""
    activation: str = "tanh"
    """Hidden activation of actor and critic."""
    learning_starts: int = 1000
    """Random-action steps before DDPG (and the joint sub-critics) start learning."""
    seed: int = 0
    """Seed of DDPG, of the neuron choice, of the sub-critics and of the held-out split."""
    out: str = "runs/subcritic-correlation"
    """Output directory (the DDPG run's files go to ``OUT/ddpg``)."""
    protocol: str = "joint"
    """``joint``: sub-critics learn alongside DDPG; ``two-phase``: DDPG first, then sub-critics on a frozen actor."""
    subcritic_updates: int = 10_000
    """Sub-critic updates of phase 2 (two-phase protocol only)."""
    neurons_per_layer: int = 8
    """Neurons chosen at random per layer (all of a smaller layer)."""
    layers: tuple[str, ...] | None = None
    """Layers (groups ``h1``, ``h2``, …, ``out``) to probe; ``None``: all."""
    subcritic_hidden: int = 32
    """Units of each of the sub-critic's two hidden layers."""
    subcritic_lr: float = 1e-3
    """Adam learning rate of the sub-critics."""
    batch_size: int = 256
    """Minibatch of one sub-critic update."""
    holdout_fraction: float = 0.1
    """Fraction of replay slots held out of sub-critic training, for measurement."""
    eval_samples: int = 2000
    """Held-out transitions the figures are measured on (at most)."""
    eval_every: int = 1000
    """DDPG evaluation period in task steps."""
    eval_episodes: int = 5
    """Deterministic episodes per DDPG evaluation."""
    noise_std: float | None = None
    """Override DDPG's exploration noise scale (default: the zoo's for the task)."""
    threads: int | None = 1
    """``torch.set_num_threads`` for the run."""
    progress: bool = True
    """Show progress bars."""
    ddpg_extra: dict[str, Any] = field(default_factory=dict)
    """Further ``baselines.sb3_ddpg.BaselineConfig`` overrides for the DDPG run."""

    def validate(self) -> None:
        """Check the options.

        Raises:
            BaselineConfigError: Naming the bad option and the fix.
        """
        if self.protocol not in PROTOCOLS:
            raise BaselineConfigError(f"protocol {self.protocol!r} is unknown; choose one of {PROTOCOLS}")
        if not 0.0 < self.holdout_fraction < 1.0:
            raise BaselineConfigError(f"holdout_fraction {self.holdout_fraction!r} must lie in (0, 1)")
        for name in ("steps", "neurons_per_layer", "subcritic_hidden", "batch_size", "eval_samples"):
            if getattr(self, name) < 1:
                raise BaselineConfigError(f"{name} {getattr(self, name)!r} must be >= 1")
        if self.subcritic_updates < 0:
            raise BaselineConfigError(f"subcritic_updates {self.subcritic_updates!r} must be >= 0")
        if self.protocol == "joint" and self.learning_starts >= self.steps:
            raise BaselineConfigError(
                f"learning_starts={self.learning_starts} >= steps={self.steps}: the joint protocol would never "
                "train the sub-critics; lower --learning-starts or use --protocol two-phase"
            )


# ---------------------------------------------------------------------------------------------- probes
class ActorProbe:
    """Forward hooks that record each layer's input and output of an actor's ``nn.Sequential``.

    A *layer* is a ``Linear`` module and the modules after it up to the next ``Linear``
    (its activation). Layer ``i`` is named after group ``i + 1`` of ``Topology.from_module``:
    ``h1``, ``h2``, …, ``out``. The hooks record only while ``active`` is true.

    Args:
        mu: The actor's ``nn.Sequential`` (``model.actor.mu`` for SB3 DDPG/TD3).
    """

    def __init__(self, mu: nn.Module) -> None:
        topology, _ = Topology.from_module(mu)
        self.topology = topology
        names = [group.name for group in topology.agent_groups]
        leaves = _flatten(mu)
        starts = [i for i, m in enumerate(leaves) if isinstance(m, nn.Linear)]
        self.layers: dict[str, tuple[nn.Linear, nn.Module]] = {}
        for name, start, stop in zip(names, starts, [*starts[1:], len(leaves)], strict=True):
            self.layers[name] = (leaves[start], leaves[stop - 1])
        self.inputs: dict[str, torch.Tensor] = {}
        self.outputs: dict[str, torch.Tensor] = {}
        self.active = False
        self._handles = []
        for name, (linear, last) in self.layers.items():
            self._handles.append(linear.register_forward_hook(self._input_hook(name)))
            self._handles.append(last.register_forward_hook(self._output_hook(name)))

    def _input_hook(self, name: str) -> Any:
        def hook(module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            if self.active:
                self.inputs[name] = args[0]

        return hook

    def _output_hook(self, name: str) -> Any:
        def hook(module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            if self.active:
                self.outputs[name] = output

        return hook

    def record(self, forward: Any, *args: Any) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], Any]:
        """Run ``forward(*args)`` with the hooks on; return (inputs, outputs, forward's result)."""
        self.active = True
        try:
            result = forward(*args)
        finally:
            self.active = False
        inputs, outputs = dict(self.inputs), dict(self.outputs)
        self.inputs.clear()
        self.outputs.clear()
        return inputs, outputs, result

    def remove(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def _flatten(module: nn.Module) -> list[nn.Module]:
    if isinstance(module, nn.Sequential):
        return [leaf for child in module for leaf in _flatten(child)]
    return [module]


class LayerSubcritics(nn.Module):
    """``k`` independent 3-layer MLP critics ``Q^n(x, a^n)`` for ``k`` neurons of one layer, stacked.

    Every neuron has its own weights; the forward pass for all of them is three batched
    products, ``[B, d] × [k, d, H] → [k, B, H] → [k, B, H] → [B, k]``.

    Args:
        input_dim: Size ``d`` of the layer's input ``x``.
        num_neurons: Number ``k`` of neurons (critics).
        hidden: Units ``H`` of each hidden layer.
        generator: Random generator of the initial weights (``nn.Linear``'s uniform rule).
    """

    def __init__(self, input_dim: int, num_neurons: int, hidden: int, generator: torch.Generator) -> None:
        super().__init__()

        def uniform(shape: tuple[int, ...], fan_in: int) -> nn.Parameter:
            bound = 1.0 / math.sqrt(fan_in)
            return nn.Parameter((torch.rand(shape, generator=generator) * 2 - 1) * bound)

        k, d, h = num_neurons, input_dim, hidden
        self.w1x = uniform((k, d, h), d + 1)
        self.w1a = uniform((k, h), d + 1)
        self.b1 = uniform((k, h), d + 1)
        self.w2 = uniform((k, h, h), h)
        self.b2 = uniform((k, h), h)
        self.w3 = uniform((k, h), h)
        self.b3 = uniform((k,), h)

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """``Q^n(x, a^n)`` for every neuron: ``x`` ``[B, d]``, ``a`` ``[B, k]`` → ``[B, k]``.

        The same batched forward pass as ``LocalDDPG``'s ``mlp`` sub-critics (``critics.mlp_q``);
        here autograd trains it, for measurement only.
        """
        return mlp_q(dict(self.named_parameters()), x, a)


class SubcriticProbe:
    """Sub-critics on chosen neurons of an SB3 DDPG/TD3 actor, TD-trained on the model's replay buffer.

    Args:
        model: A Stable-Baselines3 DDPG or TD3 model (its actor, critic, replay buffer, γ, τ).
        config: The experiment's configuration (neuron choice, sizes, learning rate, held-out split).
    """

    def __init__(self, model: Any, config: SubcriticConfig) -> None:
        self.model = model
        self.config = config
        self.probe = ActorProbe(model.actor.mu)
        groups = {g.name: g for g in self.probe.topology.agent_groups}
        wanted = list(config.layers) if config.layers else list(groups)
        unknown = [name for name in wanted if name not in groups]
        if unknown:
            raise BaselineConfigError(f"layers {unknown} are not layers of the actor; choose from {list(groups)}")
        self.output_layer = self.probe.topology.output_group.name
        rng = np.random.default_rng(config.seed)
        generator = torch.Generator().manual_seed(config.seed)
        self.neurons: dict[str, torch.Tensor] = {}
        critics = {}
        for name in wanted:
            size = groups[name].size
            chosen = np.sort(rng.choice(size, size=min(config.neurons_per_layer, size), replace=False))
            self.neurons[name] = torch.as_tensor(chosen, dtype=torch.long)
            input_dim = self.probe.layers[name][0].in_features
            critics[name] = LayerSubcritics(input_dim, len(chosen), config.subcritic_hidden, generator)
        self.critics = nn.ModuleDict(critics)
        self.targets = copy.deepcopy(self.critics).requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.critics.parameters(), lr=config.subcritic_lr)
        buffer = model.replay_buffer
        self.holdout = rng.random(buffer.buffer_size) < config.holdout_fraction
        self.rng = rng
        self.updates = 0
        self.last_loss: dict[str, float] = {}

    # ------------------------------------------------------------------ data
    def _size(self) -> int:
        buffer = self.model.replay_buffer
        return buffer.buffer_size if buffer.full else buffer.pos

    def _batch(self, index: np.ndarray) -> tuple[torch.Tensor, ...]:
        buffer = self.model.replay_buffer
        device = self.model.device
        done = buffer.dones[index, 0] * (1.0 - buffer.timeouts[index, 0])

        def tensor(array: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.asarray(array, dtype=np.float32), device=device)

        return (
            tensor(buffer.observations[index, 0]),
            tensor(buffer.actions[index, 0]),
            tensor(buffer.rewards[index, 0]),
            tensor(buffer.next_observations[index, 0]),
            tensor(done),
        )

    def _train_index(self, batch_size: int) -> np.ndarray:
        size = self._size()
        index = self.rng.integers(0, size, size=2 * batch_size + 8)
        index = index[~self.holdout[index]]
        while len(index) < batch_size:  # pragma: no cover - only with tiny buffers
            more = self.rng.integers(0, size, size=2 * batch_size + 8)
            index = np.concatenate([index, more[~self.holdout[more]]])
        return index[:batch_size]

    def held_out_index(self, limit: int) -> np.ndarray:
        """Up to ``limit`` held-out replay slots (never used for training)."""
        slots = np.flatnonzero(self.holdout[: self._size()])
        if len(slots) > limit:
            slots = np.sort(self.rng.choice(slots, size=limit, replace=False))
        return slots

    def _neuron_actions(self, name: str, outputs: dict[str, torch.Tensor], replay_actions: torch.Tensor | None
                        ) -> torch.Tensor:
        if replay_actions is not None and name == self.output_layer:
            return replay_actions[:, self.neurons[name]]
        return outputs[name][:, self.neurons[name]]

    # ------------------------------------------------------------------ training
    def update(self) -> dict[str, float]:
        """One TD update of every sub-critic (all layers, all neurons); returns the loss per layer."""
        if self._size() < 2:
            return {}
        obs, actions, reward, next_obs, done = self._batch(self._train_index(self.config.batch_size))
        actor = self.model.actor
        with torch.no_grad():
            inputs, outputs, _ = self.probe.record(actor, obs)
            next_inputs, next_outputs, _ = self.probe.record(actor, next_obs)
        gamma = float(self.model.gamma)
        loss = torch.zeros(())
        losses = {}
        for name, critic in self.critics.items():
            q = critic(inputs[name], self._neuron_actions(name, outputs, actions))
            with torch.no_grad():
                next_q = self.targets[name](next_inputs[name], self._neuron_actions(name, next_outputs, None))
                target = reward[:, None] + gamma * (1.0 - done[:, None]) * next_q
            layer_loss = ((q - target) ** 2).mean(0)  # [k]: each neuron's own TD loss
            losses[name] = float(layer_loss.detach().mean())
            loss = loss + layer_loss.sum()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        with torch.no_grad():
            online = list(self.critics.parameters())
            target_params = list(self.targets.parameters())
            torch._foreach_lerp_(target_params, online, float(self.model.tau))
        self.updates += 1
        self.last_loss = losses
        return losses

    # ------------------------------------------------------------------ measurement
    def values_and_derivatives(self, obs: torch.Tensor) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, ...]]]:
        """Both critics and their action-derivatives at the actor's own actions, for states ``obs``.

        Returns:
            ``(q_mu, per_layer)``: ``Q^μ(s, μ(s))`` ``[B]``, and per probed layer the arrays
            ``(q_n, local_grad, global_grad)``, each ``[B, k]``: ``Q^n(x(s), a^n(s))``,
            ``∂Q^n/∂a^n`` and ``∂Q^μ(s, μ(s))/∂a^n`` (autograd through the actor's later layers and
            the critic; the actor's and critic's parameters are left without gradients).
        """
        actor, critic = self.model.actor, self.model.critic
        names = list(self.critics)
        obs = obs.detach().requires_grad_(True)  # layer outputs carry gradients even with a frozen actor
        with torch.enable_grad():
            inputs, outputs, action = self.probe.record(actor, obs)
            q_mu = critic.q1_forward(obs, action)[:, 0]
            grads = torch.autograd.grad(q_mu.sum(), [outputs[name] for name in names])
            per_layer = {}
            for name, global_grad in zip(names, grads, strict=True):
                a = outputs[name][:, self.neurons[name]].detach().requires_grad_(True)
                q_n = self.critics[name](inputs[name].detach(), a)
                (local_grad,) = torch.autograd.grad(q_n.sum(), a)
                per_layer[name] = (
                    q_n.detach().cpu().numpy(),
                    local_grad.cpu().numpy(),
                    global_grad[:, self.neurons[name]].cpu().numpy(),
                )
        return q_mu.detach().cpu().numpy(), per_layer

    def measure(self, limit: int) -> dict[str, Any]:
        """Correlations with the global critic on up to ``limit`` held-out transitions, per layer.

        Returns:
            ``{"held_out_samples": n, "layers": {name: figures}, "q_mu": array}``; see the module docstring.
        """
        index = self.held_out_index(limit)
        obs = self._batch(index)[0]
        q_mu, per_layer = self.values_and_derivatives(obs)
        layers = {}
        for name, (q_n, local_grad, global_grad) in per_layer.items():
            layers[name] = _layer_figures(q_n, q_mu, local_grad, global_grad)
            layers[name]["neurons"] = self.neurons[name].tolist()
            layers[name]["layer_size"] = int(self.probe.topology.group[name].size)
            layers[name]["td_loss"] = self.last_loss.get(name, math.nan)
        return {"held_out_samples": int(len(index)), "layers": layers, "q_mu": q_mu}

    def remove(self) -> None:
        """Remove the actor hooks."""
        self.probe.remove()


def pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r between matching columns of ``x`` and ``y`` (``[n, k]`` each); NaN where one is constant."""
    x = x - x.mean(0)
    y = y - y.mean(0)
    denominator = np.sqrt((x**2).sum(0) * (y**2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (x * y).sum(0) / denominator
    return np.where(denominator > 1e-12, r, np.nan)


def _summary(values: np.ndarray) -> dict[str, float]:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return {"mean": math.nan, "median": math.nan, "min": math.nan, "max": math.nan}
    return {"mean": float(finite.mean()), "median": float(np.median(finite)),
            "min": float(finite.min()), "max": float(finite.max())}


def _layer_figures(q_n: np.ndarray, q_mu: np.ndarray, local_grad: np.ndarray, global_grad: np.ndarray
                   ) -> dict[str, Any]:
    value_r = pearson(q_n, np.repeat(q_mu[:, None], q_n.shape[1], axis=1))
    derivative_r = pearson(local_grad, global_grad)
    live = global_grad != 0  # exactly 0 where the actor's tanh output saturates: no direction to agree with
    with np.errstate(invalid="ignore", divide="ignore"):
        sign = ((np.sign(local_grad) == np.sign(global_grad)) & live).sum(0) / live.sum(0)
    value = _summary(value_r)
    derivative = _summary(derivative_r)
    return {
        "value_r": [float(r) for r in value_r],
        "value_r_mean": value["mean"],
        "value_r_median": value["median"],
        "value_r_min": value["min"],
        "value_r_max": value["max"],
        "derivative_r": [float(r) for r in derivative_r],
        "derivative_r_mean": derivative["mean"],
        "derivative_r_median": derivative["median"],
        "derivative_sign_agreement": [float(s) for s in sign],
        "derivative_sign_agreement_mean": _summary(sign)["mean"],
        "global_derivative_zero_fraction": float(1.0 - live.mean()),
        "_q_n": q_n,
    }


def _joint_callback(config: SubcriticConfig, holder: dict[str, SubcriticProbe]) -> Any:
    """An SB3 callback that attaches the probe when training starts and updates it with DDPG."""
    from stable_baselines3.common.callbacks import BaseCallback

    class JointSubcritics(BaseCallback):
        """One sub-critic update per DDPG gradient step, once DDPG learns."""

        def _on_training_start(self) -> None:
            holder["probe"] = SubcriticProbe(self.model, config)

        def _on_step(self) -> bool:
            if self.num_timesteps > self.model.learning_starts:
                for _ in range(max(1, int(self.model.gradient_steps))):
                    holder["probe"].update()
            return True

    return JointSubcritics()


def _plot(path: Path, layers: dict[str, Any], q_mu: np.ndarray, title: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("the plot needs matplotlib: pip install 'neuron-env[baselines]'") from error
    names = list(layers)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    jitter = np.random.default_rng(0)
    for i, name in enumerate(names):
        for offset, key, color in ((-0.17, "value_r", "tab:blue"), (0.17, "derivative_r", "tab:orange")):
            values = np.asarray(layers[name][key], dtype=float)
            xs = i + offset + jitter.uniform(-0.05, 0.05, len(values))
            left.scatter(xs, values, s=14, color=color, alpha=0.7,
                         label=("r(Qⁿ, Q^μ)" if key == "value_r" else "r(∂Qⁿ/∂aⁿ, ∂Q^μ/∂aⁿ)") if i == 0 else None)
            finite = values[np.isfinite(values)]
            if len(finite):
                left.hlines(finite.mean(), i + offset - 0.12, i + offset + 0.12, color="black", lw=2)
    left.axhline(0.0, color="grey", lw=0.8)
    left.axhline(DRAFT_REFERENCE_R, color="grey", lw=0.8, ls="--", label=f"draft (MountainCar) r = {DRAFT_REFERENCE_R}")
    left.set_xticks(range(len(names)), names)
    left.set_ylim(-1.05, 1.05)
    left.set_ylabel("Pearson r per neuron (bar: layer mean)")
    left.set_title("held-out agreement with the global critic")
    left.legend(fontsize=8, loc="lower left")
    shown = min(400, len(q_mu))
    for i, name in enumerate(names):
        q_n = layers[name]["_q_n"][:shown]
        right.scatter(np.repeat(q_mu[:shown], q_n.shape[1]), q_n.reshape(-1), s=3, alpha=0.25, color=f"C{i}",
                      label=f"{name} ({q_n.shape[1]} neurons)")
    low, high = float(np.min(q_mu)), float(np.max(q_mu))
    right.plot([low, high], [low, high], color="black", lw=0.8)
    right.set_xlabel("Q^μ(s, μ(s))")
    right.set_ylabel("Qⁿ(x, aⁿ)")
    right.set_title("sub-critic values against the global critic")
    right.legend(fontsize=8, markerscale=4)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def run_subcritic_correlation(config: SubcriticConfig) -> dict[str, Any]:
    """Run E1 end to end; write ``subcritic_correlation.json`` and ``.png`` into ``config.out``.

    Returns:
        The dict written to the JSON file: ``config``, ``ddpg`` (the baseline's summary),
        ``layers`` (per-layer figures), ``overall``, ``held_out_samples``, ``subcritic_updates``,
        ``draft_reference_r`` and ``wall_time_s``.

    Raises:
        BaselineConfigError: On an invalid option.
    """
    config.validate()
    start = time.perf_counter()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    ddpg_config = BaselineConfig(
        algo="ddpg", task=config.task, hidden=tuple(config.hidden), activation=config.activation,
        steps=config.steps, seed=config.seed, out=str(out / "ddpg"), eval_every=config.eval_every,
        eval_episodes=config.eval_episodes, learning_starts=config.learning_starts, noise_std=config.noise_std,
        threads=config.threads, progress=config.progress, **config.ddpg_extra,
    )
    holder: dict[str, SubcriticProbe] = {}
    callbacks: Sequence[Any] = (_joint_callback(config, holder),) if config.protocol == "joint" else ()
    model, ddpg_summary = train_sb3(ddpg_config, callbacks=callbacks)
    if config.protocol == "two-phase":
        probe = SubcriticProbe(model, config)
        model.actor.requires_grad_(False)
        from tqdm import tqdm

        for _ in tqdm(range(config.subcritic_updates), disable=not config.progress, desc="phase 2: sub-critics",
                      unit="update", mininterval=1.0, dynamic_ncols=True):
            probe.update()
        model.actor.requires_grad_(True)
    else:
        probe = holder["probe"]
    measured = probe.measure(config.eval_samples)
    probe.remove()
    layers = measured["layers"]
    q_n_arrays = {name: figures.pop("_q_n") for name, figures in layers.items()}
    all_value = np.concatenate([np.asarray(f["value_r"], dtype=float) for f in layers.values()])
    all_derivative = np.concatenate([np.asarray(f["derivative_r"], dtype=float) for f in layers.values()])
    result: dict[str, Any] = {
        "experiment": "subcritic-correlation",
        "config": asdict(config),
        "ddpg": {k: v for k, v in ddpg_summary.items() if k != "config"},
        "protocol": config.protocol,
        "subcritic_updates": probe.updates,
        "held_out_samples": measured["held_out_samples"],
        "layers": layers,
        "overall": {
            "neurons": int(len(all_value)),
            "value_r_mean": _summary(all_value)["mean"],
            "value_r_median": _summary(all_value)["median"],
            "derivative_r_mean": _summary(all_derivative)["mean"],
            "derivative_r_median": _summary(all_derivative)["median"],
            "derivative_sign_agreement_mean": _summary(np.asarray(
                [s for f in layers.values() for s in f["derivative_sign_agreement"]], dtype=float))["mean"],
        },
        "draft_reference_r": DRAFT_REFERENCE_R,
        "wall_time_s": time.perf_counter() - start,
    }
    atomic_write_json(out / "subcritic_correlation.json", result)
    for name, q_n in q_n_arrays.items():
        layers[name]["_q_n"] = q_n
    overall = result["overall"]
    title = (f"E1 sub-critic correlation: {config.task}, DDPG {config.steps} steps "
             f"(final eval {ddpg_summary['final_eval_return_mean']:.1f}), {config.protocol}, "
             f"{probe.updates} sub-critic updates;\noverall r(Q) = {overall['value_r_mean']:.3f}, "
             f"r(dQ/da) = {overall['derivative_r_mean']:.3f}")
    _plot(out / "subcritic_correlation.png", layers, measured["q_mu"], title)
    for figures in layers.values():
        figures.pop("_q_n", None)
    return result
