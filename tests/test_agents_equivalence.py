"""The batched LocalDDPG.update() against a hand-written per-neuron loop of the formulas."""

from __future__ import annotations

import copy
import sys

import numpy as np
import pytest
import torch
from neuron_env.agents import LocalDDPG, LocalDDPGConfig
from neuron_env.agents.replay import Batch
from torch import nn

from neuron_env import NeuronGroup, Projection, Topology
from neuron_env.dynamics import activate

GAMMA, TAU, LR_C, LR_A, H = 0.9, 0.1, 0.05, 0.03, 5


def masked_recurrent() -> Topology:
    mask = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0]])
    groups = [NeuronGroup("in", 2, "identity", "input"), NeuronGroup("h", 3, "tanh", leak=0.5),
              NeuronGroup("out", 1, "sigmoid", "output")]
    return Topology(groups, [Projection("in", "h"), Projection("h", "h", mask), Projection("h", "out")])


CASES = {
    "mlp-settled-presynaptic": (lambda: Topology.mlp(2, [3, 2], 1), "settled", "presynaptic"),
    "mlp-settled-task": (lambda: Topology.mlp(2, [3, 2], 1, activation="relu"), "settled", "task"),
    "mlp-settled-all": (lambda: Topology.mlp(2, [3, 2], 1), "settled", "all"),
    "mlp-per_tick-all": (lambda: Topology.mlp(2, [3, 2], 1), "per_tick", "all"),
    "recurrent-masked-task": (masked_recurrent, "per_tick", "task"),
}


def d_act(potential: torch.Tensor, activation: str) -> torch.Tensor:
    """σ' written from the definitions, independently of the package."""
    if activation == "tanh":
        return 1 - torch.tanh(potential) ** 2
    if activation == "sigmoid":
        s = torch.sigmoid(potential)
        return s * (1 - s)
    if activation == "relu":
        return (potential > 0).double()
    return torch.ones_like(potential)


class Neuron:
    """One neuron's everything, in plain per-neuron form."""

    def __init__(self, topology: Topology, learner: LocalDDPG, agent: int, context: str) -> None:
        group = next(g for g in topology.agent_groups if agent in range(*topology.agent_slice[g.name].indices(10**6)))
        self.group, self.row = group, agent - topology.agent_slice[group.name].start
        self.agent = agent
        self.neuron = int(topology.agent_neuron_index[agent])
        self.pre = topology.presynaptic_index[group.name]
        inputs = np.arange(topology.group_slice["in"].start, topology.group_slice["in"].stop)
        if context == "presynaptic":
            self.context = self.pre
        elif context == "task":
            self.context = np.concatenate([self.pre, [i for i in inputs if i not in self.pre]]).astype(int)
        elif learner.granularity == "settled":  # all that settled before this group acts
            order = [g.name for g in topology.groups]
            upto = order.index(group.name)
            self.context = np.concatenate([np.arange(topology.group_slice[n].start, topology.group_slice[n].stop)
                                           for n in order[:upto]])
        else:
            self.context = np.arange(topology.num_neurons)
        weights = learner.weights
        self.k = torch.cat([weights.blocks[i][self.row] for i in topology.incoming[group.name]]).clone()
        gi = topology.agent_groups.index(group)
        self.b = weights.biases[gi][self.row].clone()
        masks = [torch.ones(topology.group[topology.projections[i].source].size, dtype=torch.float64)
                 if topology.projections[i].mask is None
                 else torch.as_tensor(topology.projections[i].mask[self.row], dtype=torch.float64)
                 for i in topology.incoming[group.name]]
        self.mask = torch.cat(masks)
        self.k_target, self.b_target = self.k.clone(), self.b.clone()
        p = {k: v[self.row].clone() for k, v in learner.critic[gi].items()}
        self.critic = p
        if learner.critic_kind == "mlp":
            c = len(self.context)
            net = nn.Sequential(nn.Linear(c + 1, H), nn.ReLU(), nn.Linear(H, H), nn.ReLU(), nn.Linear(H, 1)).double()
            with torch.no_grad():
                net[0].weight[:, :c] = p["w1x"].T
                net[0].weight[:, c] = p["w1a"]
                net[0].bias[:] = p["b1"]
                net[2].weight[:] = p["w2"].T
                net[2].bias[:] = p["b2"]
                net[4].weight[0] = p["w3"]
                net[4].bias[0] = p["b3"]
            self.net, self.target_net = net, copy.deepcopy(net)
            self.optimizer = torch.optim.Adam(net.parameters(), lr=LR_C)
        else:
            self.target_critic = {k: v.clone() for k, v in p.items()}

    def mu(self, v: torch.Tensor, target: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        k, b = (self.k_target, self.b_target) if target else (self.k, self.b)
        potential = v[:, self.pre] @ k + b
        return activate(potential, self.group.activation), d_act(potential, self.group.activation)


def reference_settle(topology: Topology, neurons: list[Neuron], v_next: torch.Tensor) -> torch.Tensor:
    settled = torch.zeros_like(v_next)
    settled[:, topology.group_slice["in"]] = v_next[:, topology.group_slice["in"]]
    for n in neurons:  # agent order = group order = level order for these MLPs
        settled[:, n.neuron] = n.mu(settled, target=True)[0]
    return settled


def reference_update(topology: Topology, neurons: list[Neuron], batch: Batch, kind: str, settled: bool) -> None:
    v, actions, r, v_next, term = batch
    if settled:
        v_next = reference_settle(topology, neurons, v_next)
    nd = 1 - term
    for n in neurons:  # the Python loop over neurons the learner must not have
        x, xn = v[:, n.context], v_next[:, n.context]
        a = actions[:, n.agent]
        a_next = n.mu(v_next, target=True)[0]
        mu, dmu = n.mu(v)
        pre1 = torch.cat([v[:, n.pre], torch.ones(len(v), 1, dtype=v.dtype)], 1)
        p, t = n.critic, getattr(n, "target_critic", None)
        if kind == "linear":
            d = r + GAMMA * nd * (xn @ t["theta_v"] + t["theta_a"] * a_next) - (x @ p["theta_v"] + p["theta_a"] * a)
            p["theta_v"] = p["theta_v"] + LR_C * (d[:, None] * x).mean(0)
            p["theta_a"] = p["theta_a"] + LR_C * (d * a).mean()
            slope = p["theta_a"].expand(len(v))
        elif kind == "compatible":
            phi = dmu[:, None] * pre1 * torch.cat([n.mask, torch.ones(1, dtype=v.dtype)])
            q = (a - mu) * (phi @ p["w"]) + x @ p["theta_v"]
            d = r + GAMMA * nd * (xn @ t["theta_v"]) - q
            p["w"] = p["w"] + LR_C * (d[:, None] * (a - mu)[:, None] * phi).mean(0)
            p["theta_v"] = p["theta_v"] + LR_C * (d[:, None] * x).mean(0)
            slope = phi @ p["w"]
        elif kind == "bilinear":
            def q(par: dict, xx: torch.Tensor, aa: torch.Tensor) -> torch.Tensor:
                return xx @ par["theta_v"] + aa * (par["theta_a"] + xx @ par["w"])
            d = r + GAMMA * nd * q(t, xn, a_next) - q(p, x, a)
            p["theta_v"] = p["theta_v"] + LR_C * (d[:, None] * x).mean(0)
            p["theta_a"] = p["theta_a"] + LR_C * (d * a).mean()
            p["w"] = p["w"] + LR_C * ((d * a)[:, None] * x).mean(0)
            slope = p["theta_a"] + x @ p["w"]
        else:
            with torch.no_grad():
                y = r + GAMMA * nd * n.target_net(torch.cat([xn, a_next[:, None]], 1))[:, 0]
            loss = ((y - n.net(torch.cat([x, a[:, None]], 1))[:, 0]) ** 2).mean()
            n.optimizer.zero_grad()
            loss.backward()
            n.optimizer.step()
            a_mu = mu.clone().requires_grad_(True)
            q_mu = n.net(torch.cat([x, a_mu[:, None]], 1)).sum()
            (slope,) = torch.autograd.grad(q_mu, a_mu)
        step = (slope * dmu)[:, None] * pre1
        n.k = n.k + LR_A * step[:, :-1].mean(0) * n.mask
        n.b = n.b + LR_A * step[:, -1].mean()
    for n in neurons:
        n.k_target = (1 - TAU) * n.k_target + TAU * n.k
        n.b_target = (1 - TAU) * n.b_target + TAU * n.b
        if kind == "mlp":
            with torch.no_grad():
                for pt, pp in zip(n.target_net.parameters(), n.net.parameters(), strict=True):
                    pt.mul_(1 - TAU).add_(TAU * pp)
        else:
            n.target_critic = {k: (1 - TAU) * n.target_critic[k] + TAU * n.critic[k] for k in n.critic}


def random_batch(topology: Topology, size: int, generator: torch.Generator) -> Batch:
    n, a = topology.num_neurons, topology.num_agents
    v = torch.rand(size, n, generator=generator, dtype=torch.float64) * 2 - 1
    v[:, :2] = torch.randn(size, 2, generator=generator, dtype=torch.float64)
    v_next = torch.rand(size, n, generator=generator, dtype=torch.float64) * 2 - 1
    return Batch(v, torch.rand(size, a, generator=generator, dtype=torch.float64) * 2 - 1,
                 torch.randn(size, generator=generator, dtype=torch.float64), v_next,
                 (torch.rand(size, generator=generator) < 0.3).double())


@pytest.mark.parametrize("kind", ["linear", "compatible", "bilinear", "mlp"])
@pytest.mark.parametrize("case", list(CASES))
def test_batched_update_equals_per_neuron_loop(kind: str, case: str) -> None:
    build, granularity, context = CASES[case]
    topology = build()
    learner = LocalDDPG(topology, critic=kind, gamma=GAMMA, tau=TAU, lr_critic=LR_C, lr_actor=LR_A, batch_size=7,
                        seed=3, critic_context=context, granularity=granularity, critic_hidden=H,
                        dtype=torch.float64)
    check_against_per_neuron_loop(topology, learner, kind, granularity, context)


def test_shipped_config_update_equals_per_neuron_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """``LocalDDPGConfig()`` as shipped (MLP sub-critics by Adam on the task context, SGD actor, its γ, τ,
    step sizes and critic width), on the settled 2-4-3-2 network, against the per-neuron reference."""
    shipped = LocalDDPGConfig()
    module = sys.modules[__name__]
    for name, value in (("GAMMA", shipped.gamma), ("TAU", shipped.tau), ("LR_C", shipped.lr_critic),
                        ("LR_A", shipped.lr_actor), ("H", shipped.critic_hidden)):
        monkeypatch.setattr(module, name, value)
    topology = Topology.mlp(2, [4, 3], 2)
    learner = LocalDDPG(topology, seed=3, dtype=torch.float64)
    assert learner.config == shipped and learner.granularity == "settled"
    check_against_per_neuron_loop(topology, learner, shipped.critic, "settled", shipped.critic_context)


def check_against_per_neuron_loop(topology: Topology, learner: LocalDDPG, kind: str, granularity: str | None,
                                  context: str) -> None:
    if kind != "mlp":  # non-zero critics so every term of the formulas matters
        g = torch.Generator().manual_seed(5)
        for params in learner.critic:
            for p in params.values():
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.5)
        learner.target_critic = [{k: v.clone() * 0.9 for k, v in p.items()} for p in learner.critic]
    neurons = [Neuron(topology, learner, i, context) for i in range(topology.num_agents)]
    for n in neurons:
        if kind != "mlp":
            gi = topology.agent_groups.index(n.group)
            n.target_critic = {k: v[n.row].clone() for k, v in learner.target_critic[gi].items()}
    generator = torch.Generator().manual_seed(11)
    for _ in range(3):
        batch = random_batch(topology, 7, generator)
        learner.update(batch)
        reference_update(topology, neurons, batch, kind, granularity == "settled")
    weights, targets = learner.weights, learner.target_weights
    for n in neurons:
        gi = topology.agent_groups.index(n.group)
        k = torch.cat([weights.blocks[i][n.row] for i in topology.incoming[n.group.name]])
        k_target = torch.cat([targets.blocks[i][n.row] for i in topology.incoming[n.group.name]])
        torch.testing.assert_close(k, n.k, atol=1e-6, rtol=0)
        torch.testing.assert_close(weights.biases[gi][n.row], n.b, atol=1e-6, rtol=0)
        torch.testing.assert_close(k_target, n.k_target, atol=1e-6, rtol=0)
        params = learner.critic[gi]
        if kind == "mlp":
            c = len(n.context)
            torch.testing.assert_close(params["w1x"][n.row], n.net[0].weight[:, :c].T, atol=1e-6, rtol=0)
            torch.testing.assert_close(params["w1a"][n.row], n.net[0].weight[:, c], atol=1e-6, rtol=0)
            torch.testing.assert_close(params["w2"][n.row], n.net[2].weight.T, atol=1e-6, rtol=0)
            torch.testing.assert_close(params["b3"][n.row], n.net[4].bias[0], atol=1e-6, rtol=0)
            torch.testing.assert_close(learner.target_critic[gi]["w3"][n.row], n.target_net[4].weight[0],
                                       atol=1e-6, rtol=0)
        else:
            for name, value in n.critic.items():
                torch.testing.assert_close(params[name][n.row], value, atol=1e-6, rtol=0)
                torch.testing.assert_close(learner.target_critic[gi][name][n.row], n.target_critic[name],
                                           atol=1e-6, rtol=0)
    # masked connections stay exactly zero
    for p, block in zip(topology.projections, weights.blocks, strict=True):
        if p.mask is not None:
            assert torch.all(block[torch.as_tensor(p.mask) == 0] == 0)
