"""``FeedbackDDPG`` (``--learner feedback``): locality, per-neuron loop, ceiling, checkpoints, registry."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable

import numpy as np
import pytest
import torch
from neuron_env.agents.errors import CheckpointError, LearnerConfigError
from neuron_env.agents.feedback import FeedbackConfig, FeedbackDDPG, group_depths
from neuron_env.agents.local_ddpg import LocalDDPG
from neuron_env.agents.registry import make_learner
from neuron_env.agents.replay import Batch

from neuron_env import NeuronGroup, NeuronVecEnv, Projection, Topology
from neuron_env.dynamics import activate

from .conftest import assert_states_equal, settled_task_step

GAMMA, TAU, LR_C, LR_A = 0.9, 0.1, 0.05, 0.2
PIPELINED = ["random", "sign", "weights"]
#: Every kind the per-neuron reference covers (``"direct"``: the output's messages straight to every hidden neuron).
LOOPED = [*PIPELINED, "direct", "backprop"]
#: The hand-written per-neuron reference below uses a critic on the task context and plain SGD actor steps
#: (the shipped ``FeedbackConfig()`` has Adam and the observation context: tested further down).
TINY_SGD: dict[str, object] = {"critic_context": "task", "actor_optimizer": "sgd"}


def skip_topology() -> Topology:
    """in -> h1 -> h2 -> out with a masked skip h1 -> out (h1 is two hops from out on one path, one on the other)."""
    mask = np.array([[1, 0, 1]])
    groups = [NeuronGroup("in", 2, "identity", "input"), NeuronGroup("h1", 3, "tanh"),
              NeuronGroup("h2", 2, "relu"), NeuronGroup("out", 1, "tanh", "output")]
    return Topology(groups, [Projection("in", "h1"), Projection("h1", "h2"), Projection("h2", "out"),
                             Projection("h1", "out", mask), Projection("in", "h2")])


def random_batch(topology: Topology, size: int, generator: torch.Generator) -> Batch:
    """A settled batch: agents' voltages are their actions, as ``FeedbackDDPG.sample`` returns them."""
    v = torch.rand(size, topology.num_neurons, generator=generator, dtype=torch.float64) * 2 - 1
    inputs = topology.group_slice["in"]
    v[:, inputs] = torch.randn(size, inputs.stop - inputs.start, generator=generator, dtype=torch.float64)
    v_next = torch.randn(size, topology.num_neurons, generator=generator, dtype=torch.float64)
    return Batch(v, v[:, topology.agent_neuron_index].clone(), torch.randn(size, generator=generator,
                                                                          dtype=torch.float64),
                 v_next, (torch.rand(size, generator=generator) < 0.3).double())


# ----------------------------------------------------------------------------- locality audit
def perturbed(groups: list[str], targets: bool = True, online: bool = True) -> Callable[[FeedbackDDPG], None]:
    """Add noise to the actor (``online``) and the target actor and critics (``targets``) of ``groups``."""

    def perturb(learner: FeedbackDDPG) -> None:
        g = torch.Generator().manual_seed(123)
        for i, lay in enumerate(learner.layouts):
            if lay.name not in groups:
                continue
            tensors = [learner.actor[i]] if online else []
            if targets:
                tensors += [learner.target_actor[i], *learner.critic[i].values(), *learner.target_critic[i].values()]
            for t in tensors:
                t.add_(torch.randn(t.shape, generator=g, dtype=t.dtype) * 0.3)

    return perturb


def run_two_updates(feedback: str, perturb: Callable[[FeedbackDDPG], None] | None = None,
                    replace_first: bool = False) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Every group's parameters after updates t and t+1 from one fixed state (h1 has stepped already)."""
    topology = Topology.mlp(2, [3, 3, 3], 1)
    learner = FeedbackDDPG(topology, feedback=feedback, batch_size=6, lr_actor=LR_A, seed=1, dtype=torch.float64)
    generator = torch.Generator().manual_seed(7)
    for _ in range(5):  # fill the pipeline: h1 (depth 3) steps from the 4th update on
        learner.update(random_batch(topology, 6, generator))
    first, second, other = (random_batch(topology, 6, generator) for _ in range(3))
    fresh = FeedbackDDPG(topology, feedback=feedback, batch_size=6, lr_actor=LR_A, seed=1, dtype=torch.float64)
    fresh.load_state_dict(copy.deepcopy(learner.state_dict()))
    if perturb is not None:
        perturb(fresh)
    fresh.update(other if replace_first else first)
    after_t = [w.clone() for w in fresh.actor]
    fresh.update(second)
    return after_t, [w.clone() for w in fresh.actor]


H1, H2, H3, OUT = 0, 1, 2, 3


@pytest.mark.parametrize("feedback", PIPELINED)
def test_locality_audit_non_neighbours_leave_the_update_bitwise_unchanged(feedback: str) -> None:
    """DESIGN.md §1's audit on h1 -> h2 -> h3 -> out.

    A hidden neuron reads its own parameters and feedback synapses, its presynaptic voltages and its
    postsynaptic neighbours' messages (for "sign"/"weights" also their weights onto it). The output neuron
    may read one thing beyond its neighbours: the target network's settled voltages at the next observation
    (activity, not parameters), which its TD target needs, so target copies of h1/h2 reach its update;
    target copies of non-neighbours never reach a hidden neuron's.
    """
    base_t, base_next = run_two_updates(feedback)
    # h3 and out are neither pre- nor postsynaptic to h1
    after_t, _ = run_two_updates(feedback, perturbed(["h3", "out"]))
    assert torch.equal(after_t[H1], base_t[H1])
    # out is three hops from h1: its change needs more than two updates to arrive
    after_t, after_next = run_two_updates(feedback, perturbed(["out"]))
    assert torch.equal(after_t[H1], base_t[H1]) and torch.equal(after_next[H1], base_next[H1])
    # ... but it reaches its neighbour h3 (now for "weights", which reads its weights; by next update anyway)
    assert not torch.equal(after_next[H3], base_next[H3])
    if feedback == "weights":
        assert not torch.equal(after_t[H3], base_t[H3])
    # the output's update reads neither h1 nor h2 (the next state is settled by the target copies)
    after_t, _ = run_two_updates(feedback, perturbed(["h1", "h2"], targets=False))
    assert torch.equal(after_t[OUT], base_t[OUT])
    # ... except through the target network's settled activity, the documented read of its TD target
    after_t, _ = run_two_updates(feedback, perturbed(["h1", "h2"], online=False))
    assert not torch.equal(after_t[OUT], base_t[OUT])
    # target copies (actor and critic) of non-neighbours leave a hidden neuron's update unchanged, twice over
    after_t, after_next = run_two_updates(feedback, perturbed(["h3", "out"], online=False))
    assert torch.equal(after_t[H1], base_t[H1]) and torch.equal(after_next[H1], base_next[H1])
    # positive direction: a neighbour's change does reach h1, through its message or weights
    _, after_next = run_two_updates(feedback, perturbed(["h2"]))
    assert not torch.equal(after_next[H1], base_next[H1])


@pytest.mark.parametrize("feedback", PIPELINED)
def test_hidden_groups_learn_on_queued_batches_not_the_new_one(feedback: str) -> None:
    base_t, _ = run_two_updates(feedback)
    after_t, _ = run_two_updates(feedback, replace_first=True)
    for group in (H1, H2, H3):
        assert torch.equal(after_t[group], base_t[group])
    assert not torch.equal(after_t[OUT], base_t[OUT])


def test_direct_feedback_locality_audit_reads_the_outputs_messages_and_no_other_hidden_group() -> None:
    """DFA's audit on h1 -> h2 -> h3 -> out: each hidden neuron's feedback synapses come from the output neurons.

    So the output is h1's neighbour through them (its message arrives one update later); h2 and h3, its
    forward neighbour and a group two hops on, reach h1's update through nothing but the batch voltages.
    """
    base_t, base_next = run_two_updates("direct")
    after_t, after_next = run_two_updates("direct", perturbed(["h2", "h3"], targets=False))
    assert torch.equal(after_t[H1], base_t[H1]) and torch.equal(after_next[H1], base_next[H1])
    after_t, after_next = run_two_updates("direct", perturbed(["out"]))
    assert torch.equal(after_t[H1], base_t[H1])  # this update's message is the one sent before the change
    assert not torch.equal(after_next[H1], base_next[H1])  # one hop: the next update reads it
    # target copies reach the output's TD target (documented), and so h1 one update later; nothing else does
    after_t, after_next = run_two_updates("direct", perturbed(["h2", "h3"], online=False))
    assert torch.equal(after_t[H1], base_t[H1])


def test_direct_feedback_steps_every_hidden_group_from_the_second_update() -> None:
    topology = Topology.mlp(2, [3, 3, 3], 1)
    learner = FeedbackDDPG(topology, feedback="direct", batch_size=4, dtype=torch.float64)
    assert learner.depths == [1, 1, 1, 0] and sorted(learner.feedback_weights) == [-12, -8, -4]
    assert [tuple(w.shape) for _, w in sorted(learner.feedback_weights.items(), reverse=True)] == [(1, 3)] * 3
    generator = torch.Generator().manual_seed(0)
    for update in range(3):
        before = [w.clone() for w in learner.actor]
        learner.update(random_batch(topology, 4, generator))
        moved = [not torch.equal(a, b) for a, b in zip(before, learner.actor, strict=True)]
        assert moved == [update >= 1] * 3 + [True]


def test_backprop_fails_the_locality_audit_by_design() -> None:
    base_t, _ = run_two_updates("backprop")
    after_t, _ = run_two_updates("backprop", perturbed(["out"]))
    assert not torch.equal(after_t[H1], base_t[H1])


@pytest.mark.parametrize("feedback", PIPELINED)
def test_a_group_steps_once_its_messages_have_arrived(feedback: str) -> None:
    topology = Topology.mlp(2, [3, 3, 3], 1)
    learner = FeedbackDDPG(topology, feedback=feedback, batch_size=4, dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    for update in range(5):
        before = [w.clone() for w in learner.actor]
        stats = learner.update(random_batch(topology, 4, generator))
        moved = [not torch.equal(a, b) for a, b in zip(before, learner.actor, strict=True)]
        # depths: h1 3, h2 2, h3 1, out 0
        assert moved == [update >= 3, update >= 2, update >= 1, True]
        assert sorted(k for k in stats if k.startswith("feedback_slope/")) == sorted(
            f"feedback_slope/h{j}" for j in (1, 2, 3) if update >= 4 - j)


# ------------------------------------------------------------------ batched == per-neuron loop
def d_act(potential: torch.Tensor, activation: str) -> torch.Tensor:
    """σ' from the definitions, independently of the package."""
    if activation == "tanh":
        return 1 - torch.tanh(potential) ** 2
    if activation == "relu":
        return (potential > 0).double()
    raise NotImplementedError(activation)


class Neuron:
    """One neuron's parameters and wiring, in plain per-neuron form."""

    def __init__(self, topology: Topology, learner: FeedbackDDPG, agent: int) -> None:
        """Copy neuron ``agent``'s parameters out of ``learner`` (its critic context as the learner's)."""
        self.group = next(g for g in topology.agent_groups
                          if agent in range(*topology.agent_slice[g.name].indices(10**6)))
        gi = topology.agent_groups.index(self.group)
        self.row = agent - topology.agent_slice[self.group.name].start
        self.agent, self.neuron = agent, int(topology.agent_neuron_index[agent])
        self.pre = topology.presynaptic_index[self.group.name]
        self.output = self.group.role == "output"
        inputs = np.arange(topology.group_slice["in"].start, topology.group_slice["in"].stop)
        self.context = (inputs if learner.critic_context == "observation"
                        else np.concatenate([self.pre, [i for i in inputs if i not in self.pre]]).astype(int))
        weights, targets = learner.weights, learner.target_weights
        incoming = topology.incoming[self.group.name]
        self.k = torch.cat([weights.blocks[i][self.row] for i in incoming]).clone()
        self.b = weights.biases[gi][self.row].clone()
        self.k_target = torch.cat([targets.blocks[i][self.row] for i in incoming]).clone()
        self.b_target = targets.biases[gi][self.row].clone()
        self.mask = torch.cat([torch.ones(topology.group[topology.projections[i].source].size, dtype=torch.float64)
                               if topology.projections[i].mask is None
                               else torch.tensor(topology.projections[i].mask[self.row], dtype=torch.float64)
                               for i in incoming])
        self.critic = {k: v[self.row].clone() for k, v in learner.critic[gi].items()}
        self.target_critic = {k: v[self.row].clone() for k, v in learner.target_critic[gi].items()}
        self.depth = 0
        #: (postsynaptic neuron, position of this neuron in its presynaptic list, fixed random feedback weight)
        self.post: list[tuple[Neuron, int, float]] = []

    def mu(self, v: torch.Tensor, target: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        k, b = (self.k_target, self.b_target) if target else (self.k, self.b)
        potential = v[:, self.pre] @ k + b
        return activate(potential, self.group.activation), d_act(potential, self.group.activation)


def wire(topology: Topology, learner: FeedbackDDPG) -> list[Neuron]:
    neurons = [Neuron(topology, learner, a) for a in range(topology.num_agents)]
    by_index = {n.neuron: n for n in neurons}
    if learner.feedback == "direct":  # a feedback synapse from each output neuron to each hidden one, one hop
        groups = [group.name for group in topology.agent_groups]
        for n in (n for n in neurons if not n.output):
            for m in (m for m in neurons if m.output):
                key = -1 - (groups.index(n.group.name) * len(groups) + groups.index(m.group.name))
                n.post.append((m, -1, float(learner.feedback_weights[key][m.row, n.row])))
            n.depth = 1
        return neurons
    for p_index, p in enumerate(topology.projections):
        if p.source == "in":
            continue
        source = topology.group_slice[p.source]
        for m in (n for n in neurons if n.group.name == p.target):
            for n in (by_index[i] for i in range(source.start, source.stop)):
                position = int(np.nonzero(m.pre == n.neuron)[0][0])
                fixed = (float(learner.feedback_weights[p_index][m.row, n.row]) if learner.feedback_weights
                         else 0.0)
                n.post.append((m, position, fixed))
    for _ in neurons:  # longest path to the output (a few sweeps suffice for these networks)
        for n in neurons:
            if n.post:
                n.depth = 1 + max(m.depth for m, _, _ in n.post)
    return neurons


def bilinear_critic_step(n: Neuron, x: torch.Tensor, xn: torch.Tensor, a: torch.Tensor, a_next: torch.Tensor,
                         r: torch.Tensor, term: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """The bilinear critic's TD(0) SGD step from the formulas; returns its slope ``∂Q/∂a`` after the step."""
    p, q = n.critic, n.target_critic
    d = (r + GAMMA * (1 - term) * (xn @ q["theta_v"] + a_next * (q["theta_a"] + xn @ q["w"]))
         - (x @ p["theta_v"] + a * (p["theta_a"] + x @ p["w"])))
    p["theta_v"] = p["theta_v"] + LR_C * (d[:, None] * x).mean(0)
    p["theta_a"] = p["theta_a"] + LR_C * (d * a).mean()
    p["w"] = p["w"] + LR_C * ((d * a)[:, None] * x).mean(0)
    return p["theta_a"] + x @ p["w"]


def neuron_mlp_q(params: dict[str, torch.Tensor], x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """One neuron's MLP sub-critic ``[x, a] -> relu -> relu -> 1`` written with autograd ops."""
    z1 = x @ params["w1x"] + a[:, None] * params["w1a"] + params["b1"]
    return torch.relu(torch.relu(z1) @ params["w2"] + params["b2"]) @ params["w3"] + params["b3"]


def shipped_critic_step(config: FeedbackConfig) -> Callable[..., torch.Tensor]:
    """The MLP critic's step by autograd and ``torch.optim.Adam`` (one optimizer per neuron), as shipped."""
    optimizers: dict[Neuron, torch.optim.Adam] = {}

    def step(n: Neuron, x: torch.Tensor, xn: torch.Tensor, a: torch.Tensor, a_next: torch.Tensor,
             r: torch.Tensor, term: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        if n not in optimizers:
            n.critic = {k: v.clone().requires_grad_(True) for k, v in n.critic.items()}
            optimizers[n] = torch.optim.Adam(list(n.critic.values()), lr=config.lr_critic)
        with torch.no_grad():
            y = r + config.gamma * (1 - term) * neuron_mlp_q(n.target_critic, xn, a_next)
        optimizers[n].zero_grad()
        ((y - neuron_mlp_q(n.critic, x, a)) ** 2).mean().backward()
        optimizers[n].step()
        at_mu = mu.clone().requires_grad_(True)
        (slope,) = torch.autograd.grad(neuron_mlp_q(n.critic, x, at_mu).sum(), at_mu)
        return slope

    return step


def sgd_actor_step(n: Neuron, step: torch.Tensor) -> None:
    n.k = n.k + LR_A * step[:-1] * n.mask
    n.b = n.b + LR_A * step[-1]


def adam_actor_step(config: FeedbackConfig) -> Callable[[Neuron, torch.Tensor], None]:
    """Ascent along ``step`` by ``torch.optim.Adam`` on the neuron's ``[K^n, b^n]`` (masked gradient)."""
    optimizers: dict[Neuron, tuple[torch.Tensor, torch.optim.Adam]] = {}

    def apply(n: Neuron, step: torch.Tensor) -> None:
        if n not in optimizers:
            row = torch.cat([n.k, n.b[None]]).clone().requires_grad_(True)
            optimizers[n] = row, torch.optim.Adam([row], lr=config.lr_actor)
        row, optimizer = optimizers[n]
        row.grad = -torch.cat([step[:-1] * n.mask, step[-1:]])
        optimizer.step()
        n.k, n.b = row.detach()[:-1].clone(), row.detach()[-1].clone()

    return apply


def reference_update(neurons: list[Neuron], batch: Batch, feedback: str, t: int,
                     history: dict[int, torch.Tensor], messages: dict[int, dict[Neuron, torch.Tensor]],
                     topology: Topology, critic_step: Callable[..., torch.Tensor] = bilinear_critic_step,
                     actor_step: Callable[[Neuron, torch.Tensor], None] = sgd_actor_step, tau: float = TAU) -> None:
    v, actions, r, v_next, term = batch
    history[t] = v
    settled = torch.zeros_like(v_next)
    settled[:, topology.group_slice["in"]] = v_next[:, topology.group_slice["in"]]
    for n in sorted(neurons, key=lambda n: -n.depth):  # inputs first: deepest groups settle first
        settled[:, n.neuron] = n.mu(settled, target=True)[0]
    sent: dict[Neuron, torch.Tensor] = {}
    steps = []
    for n in neurons:  # outputs: the critic's TD step, then its slope at μ
        if not n.output:
            continue
        x, xn, a, a_next = v[:, n.context], settled[:, n.context], actions[:, n.agent], settled[:, n.neuron]
        mu, dmu = n.mu(v)
        slope = critic_step(n, x, xn, a, a_next, r, term, mu)
        sent[n] = dmu * slope
        steps.append((n, slope, dmu, v))
    for n in sorted((n for n in neurons if not n.output), key=lambda n: n.depth):
        if feedback == "backprop":
            learn_on, received = v, [sent[m] for m, _, _ in n.post]
        else:
            if t - n.depth < 0:
                continue
            learn_on = history[t - n.depth]
            # the message about batch t - depth_n, which m computed at update t - depth_n + depth_m
            received = [messages.get(t - n.depth + m.depth, {}).get(m) for m, _, _ in n.post]
            if any(message is None for message in received):
                continue
        slope = torch.zeros(len(learn_on), dtype=torch.float64)
        for (m, position, fixed), message in zip(n.post, received, strict=True):
            if feedback in ("random", "direct"):
                weight = fixed
            elif feedback == "sign":
                weight = float(torch.sign(m.k[position])) * abs(fixed)
            else:
                weight = float(m.k[position])  # the weight as it is before this update's steps
            slope = slope + weight * message
        _, dmu = n.mu(learn_on)
        sent[n] = dmu * slope
        steps.append((n, slope, dmu, learn_on))
    for n, slope, dmu, learn_on in steps:
        pre1 = torch.cat([learn_on[:, n.pre], torch.ones(len(learn_on), 1, dtype=torch.float64)], 1)
        actor_step(n, ((slope * dmu)[:, None] * pre1).mean(0))
    for n in neurons:
        n.k_target = (1 - tau) * n.k_target + tau * n.k
        n.b_target = (1 - tau) * n.b_target + tau * n.b
        n.target_critic = {k: (1 - tau) * n.target_critic[k] + tau * n.critic[k].detach() for k in n.critic}
    messages[t] = sent


def assert_matches_reference(learner: FeedbackDDPG, neurons: list[Neuron], topology: Topology,
                             atol: float = 1e-10) -> None:
    """Every neuron's weights, target weights and critic equal the per-neuron reference's."""
    weights, targets = learner.weights, learner.target_weights
    for n in neurons:
        gi = topology.agent_groups.index(n.group)
        incoming = topology.incoming[n.group.name]
        torch.testing.assert_close(torch.cat([weights.blocks[i][n.row] for i in incoming]), n.k, atol=atol, rtol=0)
        torch.testing.assert_close(weights.biases[gi][n.row], n.b, atol=atol, rtol=0)
        torch.testing.assert_close(torch.cat([targets.blocks[i][n.row] for i in incoming]), n.k_target,
                                   atol=atol, rtol=0)
        for name, value in n.critic.items():
            torch.testing.assert_close(learner.critic[gi][name][n.row], value.detach(), atol=atol, rtol=0)
        for name, value in n.target_critic.items():
            torch.testing.assert_close(learner.target_critic[gi][name][n.row], value, atol=atol, rtol=0)


@pytest.mark.parametrize("feedback", LOOPED)
@pytest.mark.parametrize("build", [lambda: Topology.mlp(2, [3, 2], 1), skip_topology], ids=["mlp", "skip"])
def test_batched_update_equals_per_neuron_loop(feedback: str, build: Callable[[], Topology]) -> None:
    topology = build()
    learner = FeedbackDDPG(topology, feedback=feedback, critic="bilinear", gamma=GAMMA, tau=TAU, lr_critic=LR_C,
                           lr_actor=LR_A, batch_size=7, seed=3, dtype=torch.float64, **TINY_SGD)
    g = torch.Generator().manual_seed(5)
    for params in learner.critic:  # non-zero critics so every term of the formulas matters
        for p in params.values():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.5)
    learner.target_critic = [{k: v.clone() * 0.9 for k, v in p.items()} for p in learner.critic]
    neurons = wire(topology, learner)
    forward_depths = group_depths(topology)  # "direct": every hidden group one hop from the outputs
    assert {n.group.name: n.depth for n in neurons} == (
        forward_depths if feedback != "direct" else {name: min(depth, 1) for name, depth in forward_depths.items()})
    history: dict[int, torch.Tensor] = {}
    messages: dict[int, dict[Neuron, torch.Tensor]] = {}
    generator = torch.Generator().manual_seed(11)
    for t in range(5):  # the pipeline fills, then two more updates with every group stepping
        batch = random_batch(topology, 7, generator)
        learner.update(batch)
        reference_update(neurons, batch, feedback, t, history, messages, topology)
        assert_matches_reference(learner, neurons, topology)
    assert all(not torch.equal(w, w0) for w, w0 in zip(learner.actor, FeedbackDDPG(
        topology, feedback=feedback, critic="bilinear", seed=3, dtype=torch.float64).actor, strict=True))
    for p, block in zip(topology.projections, learner.weights.blocks, strict=True):
        if p.mask is not None:  # masked connections stay exactly zero
            assert torch.all(block[torch.tensor(p.mask) == 0] == 0)


@pytest.mark.parametrize("feedback", LOOPED)
@pytest.mark.parametrize("build", [lambda: Topology.mlp(2, [3, 2], 1), skip_topology], ids=["mlp", "skip"])
def test_shipped_config_update_equals_per_neuron_loop(feedback: str, build: Callable[[], Topology]) -> None:
    """``FeedbackConfig()`` as shipped (MLP output critic by Adam on the observation, Adam actor steps, its γ, τ and
    step sizes) against per-neuron autograd and ``torch.optim.Adam``, one optimizer per neuron."""
    topology = build()
    config = FeedbackConfig(feedback=feedback)
    learner = FeedbackDDPG(topology, config, seed=3, dtype=torch.float64)
    neurons = wire(topology, learner)
    critic_step, actor_step = shipped_critic_step(config), adam_actor_step(config)
    history: dict[int, torch.Tensor] = {}
    messages: dict[int, dict[Neuron, torch.Tensor]] = {}
    generator = torch.Generator().manual_seed(11)
    for t in range(6):
        batch = random_batch(topology, 9, generator)
        learner.update(batch)
        reference_update(neurons, batch, feedback, t, history, messages, topology, critic_step, actor_step,
                         tau=config.tau)
        assert_matches_reference(learner, neurons, topology, atol=1e-9)
    moved = [not torch.equal(w, w0) for w, w0 in zip(learner.actor, FeedbackDDPG(
        topology, config, seed=3, dtype=torch.float64).actor, strict=True)]
    assert all(moved)


def test_skip_connection_messages_wait_in_the_synapse() -> None:
    learner = FeedbackDDPG(skip_topology(), batch_size=4)
    assert learner.depths == [2, 1, 0]
    delays = {(e.projection, e.target): e.delay for e in learner.edges[0]}
    assert delays == {(1, 1): 1, (3, 2): 2}  # h1 -> h2 one update, h1 -> out two
    assert [len(box) for box in learner.outbox] == [0, 1, 2] and learner.queue_length == 2


def test_a_group_without_a_path_to_an_output_gets_no_messages_and_keeps_its_weights() -> None:
    groups = [NeuronGroup("in", 2, "identity", "input"), NeuronGroup("h1", 3, "tanh"),
              NeuronGroup("dead", 2, "tanh"), NeuronGroup("out", 1, "tanh", "output")]
    topology = Topology(groups, [Projection("in", "h1"), Projection("h1", "out"), Projection("in", "dead")])
    assert group_depths(topology) == {"h1": 1, "dead": None, "out": 0}
    learner = FeedbackDDPG(topology, batch_size=4, dtype=torch.float64)
    dead = [lay.name for lay in learner.layouts].index("dead")
    before = learner.actor[dead].clone()
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        stats = learner.update(random_batch(topology, 4, generator))
    assert torch.equal(learner.actor[dead], before) and "feedback_slope/dead" not in stats


# ------------------------------------------------------------------------------- the ceiling
def mlp_critic_q(params: dict[str, torch.Tensor], x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Neuron 0's MLP sub-critic with autograd, from its parameters (test-only)."""
    z1 = x @ params["w1x"][0] + a[:, None] * params["w1a"][0] + params["b1"][0]
    z2 = torch.relu(z1) @ params["w2"][0] + params["b2"][0]
    return torch.relu(z2) @ params["w3"][0] + params["b3"][0]


@pytest.mark.parametrize("feedback", ["weights", "backprop"])
def test_weights_feedback_is_exact_backprop_when_the_pipeline_is_trivial(feedback: str) -> None:
    topology = Topology.mlp(2, [3, 3], 1)
    learner = FeedbackDDPG(topology, feedback=feedback, critic_context="observation", lr_actor=0.0, lr_critic=0.0,
                           tau=0.0, dtype=torch.float64, seed=2)
    generator = torch.Generator().manual_seed(4)
    v = learner.settle(torch.randn(9, topology.num_neurons, generator=generator, dtype=torch.float64))
    batch = Batch(v, v[:, learner.agent_neuron_index].clone(), torch.randn(9, dtype=torch.float64),
                  torch.randn(9, topology.num_neurons, generator=generator, dtype=torch.float64),
                  torch.zeros(9, dtype=torch.float64))
    for _ in range(3):  # the same batch, nothing moves: every message is about this batch
        learner.update(batch)
    weights = learner.weights
    h1, h2 = topology.group_slice["h1"], topology.group_slice["h2"]
    x = v[:, topology.group_slice["in"]]

    def q_from_h1(a1: torch.Tensor) -> torch.Tensor:
        a2 = torch.tanh(a1 @ weights.blocks[1].T + weights.biases[1])
        return q_from_h2(a2)

    def q_from_h2(a2: torch.Tensor) -> torch.Tensor:
        out = torch.tanh(a2 @ weights.blocks[2].T + weights.biases[2])[:, 0]
        return mlp_critic_q(learner.critic[2], x, out)

    for group, index, q in (("h1", h1, q_from_h1), ("h2", h2, q_from_h2)):
        a = v[:, index].clone().requires_grad_(True)
        (expected,) = torch.autograd.grad(q(a).sum(), a)
        slope = learner.slopes[topology.agent_groups.index(topology.group[group])]
        assert slope is not None
        torch.testing.assert_close(slope, expected, atol=1e-12, rtol=0)
    a_out = torch.tanh(v[:, h2] @ weights.blocks[2].T + weights.biases[2])[:, 0].requires_grad_(True)
    (expected,) = torch.autograd.grad(mlp_critic_q(learner.critic[2], x, a_out).sum(), a_out)
    out_slope = learner.slopes[2]
    assert out_slope is not None
    torch.testing.assert_close(out_slope[:, 0], expected, atol=1e-12, rtol=0)


# ------------------------------------------------------------------------- feedback matrices
def test_random_feedback_is_fixed_scaled_like_the_init_and_masked() -> None:
    topology = skip_topology()
    a, b = FeedbackDDPG(topology, seed=5), FeedbackDDPG(topology, seed=5)
    assert sorted(a.feedback_weights) == [1, 2, 3]  # h1->h2, h2->out, h1->out (not the input's projections)
    for p, matrix in a.feedback_weights.items():
        projection = topology.projections[p]
        assert matrix.shape == (topology.group[projection.target].size, topology.group[projection.source].size)
        assert matrix.abs().max() <= 1 / np.sqrt(len(topology.presynaptic_index[projection.target]))
        assert torch.equal(matrix, b.feedback_weights[p])
    assert a.feedback_weights[3][0, 1] == 0  # masked like the forward block
    assert not torch.equal(a.feedback_weights[1], FeedbackDDPG(topology, seed=6).feedback_weights[1])
    scaled = FeedbackDDPG(topology, seed=5, feedback_scale=2.0)
    torch.testing.assert_close(scaled.feedback_weights[1], a.feedback_weights[1] * 2.0 * np.sqrt(5))
    sign = FeedbackDDPG(topology, feedback="sign", seed=5)
    edge = sign.edges[0][0]
    torch.testing.assert_close(sign.feedback_matrix(edge),
                               torch.sign(sign.actor[edge.target][:, edge.columns]) * a.feedback_weights[1].abs())
    assert FeedbackDDPG(topology, feedback="weights").feedback_weights == {}


# -------------------------------------------------------------------------- checkpoint, options
def filled(feedback: str, seed: int = 4) -> FeedbackDDPG:
    topology = Topology.mlp(3, [4, 4], 1)
    learner = FeedbackDDPG(topology, feedback=feedback, seed=seed)  # FeedbackConfig() as shipped
    v = torch.randn(32, topology.num_neurons, generator=torch.Generator().manual_seed(seed))
    learner.store(v, torch.rand(32, topology.num_agents) * 2 - 1, torch.randn(32), v, torch.zeros(32))
    return learner


@pytest.mark.parametrize("feedback", ["random", "weights"])
def test_state_dict_round_trip_continues_identically(feedback: str) -> None:
    a = filled(feedback)
    a.update()  # the pipeline is half full: a batch queued, messages in flight
    stream = io.BytesIO()
    torch.save(a.state_dict(), stream)
    stream.seek(0)
    b = filled(feedback, seed=99)
    b.load_state_dict(torch.load(stream, weights_only=True))
    v = torch.randn(5, a.topology.num_neurons)
    assert torch.equal(a.act(v), b.act(v))
    for _ in range(3):
        stats_a, stats_b = a.update(), b.update()
        assert stats_a.keys() == stats_b.keys()
        assert all(torch.equal(stats_a[k], stats_b[k]) for k in stats_a)
    for wa, wb in zip(a.actor, b.actor, strict=True):
        assert torch.equal(wa, wb)
    assert torch.equal(a.act(v), b.act(v))
    # everything continues identically: critics and their flat targets, Adam moments, queue, outbox, generator
    assert_states_equal(a.state_dict(), b.state_dict())


def test_sign_feedback_reads_the_online_weights_not_the_target_copies() -> None:
    learner = FeedbackDDPG(Topology.mlp(2, [3, 3], 1), feedback="sign", seed=4)
    for target in learner.target_actor:  # target copies of the opposite sign
        target.mul_(-1)
    for edges in learner.edges:
        for edge in edges:
            online = learner.actor[edge.target][:, edge.columns]
            expected = torch.sign(online) * learner.feedback_weights[edge.projection].abs()
            assert torch.equal(learner.feedback_matrix(edge), expected)


def test_a_mismatched_checkpoint_is_a_checkpoint_error() -> None:
    state = filled("random").state_dict()
    with pytest.raises(CheckpointError, match="feedback='random'"):
        filled("sign").load_state_dict(state)
    with pytest.raises(CheckpointError, match="'ddpg'"):
        filled("random").load_state_dict(LocalDDPG(Topology.mlp(3, [4, 4], 1), critic="mlp").state_dict())
    other = FeedbackDDPG(Topology.mlp(3, [4, 4, 4], 1))
    with pytest.raises(CheckpointError):
        other.load_state_dict(state)


@pytest.mark.parametrize(("options", "match"), [
    ({"feedback": "transpose"}, "feedback='transpose' is unknown"),
    ({"feedback_scale": -1.0}, "feedback_scale=-1.0 must be"),
    ({"feedback": "weights", "feedback_scale": 0.5}, "applies to feedback='random', 'sign' or 'direct' only"),
    ({"granularity": "per_tick"}, "settled transitions only"),
    ({"critic": "deep"}, "critic='deep' is unknown"),
])
def test_bad_options_raise_clear_errors(options: dict, match: str) -> None:
    with pytest.raises(LearnerConfigError, match=match):
        make_learner("feedback", Topology.mlp(3, [4], 1), options)


def test_a_cyclic_network_is_refused() -> None:
    with pytest.raises(LearnerConfigError, match="acyclic, leak-free"):
        FeedbackDDPG(Topology.recurrent(3, 4, 1))


def test_freeze_hidden_keeps_hidden_groups_while_outputs_learn_and_messages_flow() -> None:
    topology = Topology.mlp(3, [4, 4], 1)
    learner = FeedbackDDPG.from_config(topology, FeedbackConfig(freeze_hidden=True, batch_size=8), seed=1)
    assert learner.actor_lrs == [0.0, 0.0, learner.lr_actor] and learner.name == "feedback"
    v = torch.randn(32, topology.num_neurons)
    learner.store(v, torch.rand(32, topology.num_agents) * 2 - 1, torch.randn(32), v, torch.zeros(32))
    before = [w.clone() for w in learner.actor]
    for _ in range(4):
        stats = learner.update()
    assert torch.equal(learner.actor[0], before[0]) and torch.equal(learner.actor[1], before[1])
    assert not torch.equal(learner.actor[2], before[2])
    assert {"td_error", "q_slope", "feedback_slope/h1", "feedback_slope/h2"} <= stats.keys()


def test_with_frozen_hidden_groups_the_feedback_kind_changes_nothing() -> None:
    # why the credit-assignment study pairs the sign rule and the ceiling with the random rule's floor
    topology = Topology.mlp(3, [4, 4], 1)
    v = torch.randn(32, topology.num_neurons, generator=torch.Generator().manual_seed(2))
    actions = torch.rand(32, topology.num_agents, generator=torch.Generator().manual_seed(3)) * 2 - 1
    learners = {}
    for feedback in ("random", "sign", "direct", "weights"):
        learner = FeedbackDDPG.from_config(topology, FeedbackConfig(freeze_hidden=True, batch_size=8,
                                                                    feedback=feedback), seed=1)
        learner.store(v, actions, v[:, 0], v, torch.zeros(32))
        for _ in range(5):
            learner.update()
        learners[feedback] = learner
    for feedback in ("sign", "direct", "weights"):
        assert all(torch.equal(a, b) for a, b in zip(learners["random"].actor, learners[feedback].actor, strict=True))
        assert torch.equal(learners["random"].act(v, explore=False), learners[feedback].act(v, explore=False))
        # the same random stream ahead (noise, replay sampling): a whole run stays the same run
        assert torch.equal(learners["random"].generator.get_state(), learners[feedback].generator.get_state())
        assert not torch.equal(learners[feedback].actor[2], FeedbackDDPG(topology, seed=1).actor[2])  # outputs learned


# --------------------------------------------------------------------------------- registry
def test_registry_smoke_drive_and_deterministic_forward_pass() -> None:
    topology = Topology.mlp(3, [8, 8], 1)
    learner = make_learner("feedback", topology, {"batch_size": 16, "feedback": "random", "freeze_hidden": None},
                           seed=0)
    assert isinstance(learner, FeedbackDDPG) and learner.granularity == "settled" and learner.off_policy
    env = NeuronVecEnv("Pendulum-v1", topology, num_envs=2, validate=False)
    voltages, _ = env.reset(seed=0)
    stats: dict[str, torch.Tensor] = {}
    for task_step in range(300):
        warm = task_step < 50
        voltages, step = settled_task_step(learner, env, voltages, uniform=warm)
        if not warm and learner.ready():
            stats = learner.update()
        learner.reset_noise(step.terminated | step.truncated)
    assert learner.num_updates == 250 and learner.num_transitions == 600
    assert {"td_error", "td_error/out", "q_slope", "feedback_slope/h1", "feedback_slope/h2"} <= stats.keys()
    assert all(torch.isfinite(s) for s in stats.values())
    # deterministic acting, one level per tick, is the forward pass of learner.weights
    inputs = voltages.clone()
    for level in range(1, env.delay + 1):
        actions = learner.act(voltages, explore=False, level=level)
        voltages = voltages.clone()
        voltages[:, learner.agent_neuron_index] = actions
    torch.testing.assert_close(voltages, learner.settle(inputs))
    weights = learner.weights
    expected = inputs[:, topology.group_slice["in"]]
    for block, bias in zip(weights.blocks, weights.biases, strict=True):
        expected = torch.tanh(expected @ block.T + bias)
    torch.testing.assert_close(voltages[:, topology.group_slice["out"]], expected)


# ------------------------------------------------------------------------------- compact replay rows
def test_compact_replay_rows_keep_the_outputs_actions_and_learn_exactly_as_full_rows() -> None:
    class FullRows(FeedbackDDPG):
        replays_hidden_actions = True

    topology = Topology.mlp(3, [8, 8], 1)
    options = {"batch_size": 16, "feedback": "random", "noise_scale_hidden": 0.1, "replay_voltages": "current"}
    compact, full = (cls(topology, seed=3, dtype=torch.float64, **options) for cls in (FeedbackDDPG, FullRows))
    assert compact.replay_voltages == "current" and compact.buffer.actions.shape[1] == 1
    assert full.buffer.actions.shape[1] == topology.num_agents
    generator = torch.Generator().manual_seed(0)
    for _ in range(60):  # the same transitions (hidden actions with noise) into both
        voltages = torch.rand(2, topology.num_neurons, generator=generator, dtype=torch.float64) * 2 - 1
        actions = voltages[:, compact.agent_neuron_index]
        rewards, terminated = -torch.rand(2, generator=generator, dtype=torch.float64), torch.zeros(2)
        next_voltages = torch.rand(2, topology.num_neurons, generator=generator, dtype=torch.float64)
        for learner in (compact, full):
            learner.store(voltages, actions, rewards, next_voltages, terminated)
            learner.update()
    for a, b in zip(compact.actor + compact.target_actor, full.actor + full.target_actor, strict=True):
        assert torch.equal(a, b)
    assert all(torch.equal(p, full.critic[-1][k]) for k, p in compact.critic[-1].items())
    # a checkpoint written with full rows loads into the compact buffer (its output column kept)
    compact.load_state_dict(full.state_dict())
    assert torch.equal(compact.buffer.actions[:120, 0], full.buffer.actions[:120, -1])

