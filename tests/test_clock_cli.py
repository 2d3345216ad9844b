"""Time reaches the trainer: ``--clock``/``--firing-rate`` on every command, and the learners' capabilities.

* ``train``, ``compare``, ``enjoy`` and ``render`` take the flags; a run records them in
  ``config.json`` and ``--resume``, ``enjoy`` and ``render`` restore them (a run recorded before
  them is ``sync``);
* every registered learner (parametrized over the registry, so a learner registered later is
  covered) × network kind × clock either trains for a few task steps or refuses in the one line of
  ``neuron_env.agents.capabilities``, exit status 2, before any folder is made;
* ``--clock async --firing-rate 1`` trains bit for bit as ``--clock sync`` for every learner that
  declares the async clock; the trainer hands ``fired`` to ``store`` under the async clock only,
  and ``ddpg`` stores a silent neuron's transition with the action that had its effect;
* a firing rate outside (0, 1] is refused in one line naming ``--firing-rate`` and the range.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import torch
from neuron_env.agents.capabilities import (
    able_learners,
    capabilities,
    capability_refusal,
    default_learner,
    settles,
    topology_kinds,
)
from neuron_env.agents.commands import train_config_from_args
from neuron_env.agents.errors import LearnerConfigError
from neuron_env.agents.local_ddpg import LocalDDPG
from neuron_env.agents.off_policy import OffPolicyNetwork
from neuron_env.agents.registry import LEARNERS, learner_class, learner_options
from neuron_env.agents.train import TrainConfig, build_topology, load_checkpoint, train
from neuron_env.baselines.cli import compare_config_from_args
from neuron_env.baselines.compare_config import LOCAL_METHODS, command_line, plan_runs
from neuron_env.baselines.runners import execute_run

import neuron_env.parallel
from neuron_env import Topology
from neuron_env.cli import build_parser, main
from neuron_env.parallel import task_topology
from neuron_env.vector import NeuronVecEnv
from tests.conftest import assert_states_equal

#: The module (``neuron_env.agents.enjoy`` the name is the function ``enjoy``, re-exported by the package).
enjoy_module = importlib.import_module("neuron_env.agents.enjoy")
TASK = "Pendulum-v1"
#: A few task steps, one evaluation episode at the end, nothing else written.
TINY = ["--task", TASK, "--steps", "6", "--learning-starts", "3", "--eval-every", "0", "--eval-episodes", "1",
        "--checkpoint-every", "1000", "--log-every", "1000", "--no-progress", "--no-tensorboard"]
#: Network kinds by the flags that make them (the kinds ``capabilities.topology_kinds`` tells apart).
NETWORKS: dict[str, list[str]] = {
    "acyclic": ["--topology", "mlp", "--hidden", "4"],
    "recurrent": ["--topology", "recurrent", "--hidden", "4"],
    "recurrent-leaky": ["--topology", "recurrent", "--hidden", "4", "--leak", "0.3"],
}
CLOCK_FLAGS: dict[str, list[str]] = {"sync": [], "async": ["--clock", "async", "--firing-rate", "0.5"]}
ASYNC_RECURRENT = ["--learner", "ddpg", *NETWORKS["recurrent-leaky"], *CLOCK_FLAGS["async"]]


def network(kind: str) -> Topology:
    """The network ``NETWORKS[kind]`` builds on ``TASK``."""
    flags = NETWORKS[kind]
    leak = float(flags[flags.index("--leak") + 1]) if "--leak" in flags else 0.0
    return task_topology(TASK, flags[1], [4], "tanh", leak)


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The one line a refused command printed on stderr (asserting it is one line)."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture(scope="module")
def async_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished ``ddpg`` run on a leaky recurrent network under the async clock at 0.5."""
    out = tmp_path_factory.mktemp("async") / "run"
    assert main(["train", *TINY, *ASYNC_RECURRENT, "--out", str(out)]) == 0
    return out


# ---------------------------------------------------------------------------------- train records and restores
def test_train_records_the_clock_and_the_network(async_run: Path, tmp_path: Path) -> None:
    record = json.loads((async_run / "config.json").read_text())
    assert (record["clock"], record["firing_rate"], record["topology"], record["leak"]) == ("async", 0.5,
                                                                                           "recurrent", 0.3)
    assert load_checkpoint(async_run)["config"]["clock"] == "async"
    assert main(["train", *TINY, "--learner", "ddpg", "--out", str(tmp_path / "sync")]) == 0
    record = json.loads((tmp_path / "sync" / "config.json").read_text())
    assert (record["clock"], record["firing_rate"]) == ("sync", 1.0)


def test_resume_restores_the_clock_and_ends_where_the_uninterrupted_run_does(tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    flags = [*TINY, *ASYNC_RECURRENT, "--checkpoint-every", "6", "--checkpoint-replay"]
    assert main(["train", *flags, "--steps", "12", "--out", str(tmp_path / "whole")]) == 0
    assert main(["train", *flags, "--out", str(tmp_path / "cut")]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "cut"), "--clock", "sync"]) == 2
    assert "cannot change --clock" in error_line(capsys)
    assert main(["train", "--resume", str(tmp_path / "cut"), "--steps", "12", "--checkpoint-replay",
                 "--no-progress"]) == 0
    resumed, whole = load_checkpoint(tmp_path / "cut"), load_checkpoint(tmp_path / "whole")
    assert resumed["config"]["clock"] == "async" and resumed["config"]["firing_rate"] == 0.5
    assert_states_equal(resumed["learner"], whole["learner"])
    assert_states_equal(resumed["weights"], whole["weights"])


def test_a_run_recorded_before_the_clock_loads_as_sync(async_run: Path, tmp_path: Path) -> None:
    payload = load_checkpoint(async_run)
    payload["config"] = {k: v for k, v in payload["config"].items() if k not in ("clock", "firing_rate")}
    old = tmp_path / "old"
    old.mkdir()
    torch.save(payload, old / "checkpoint.pt")
    config = TrainConfig.from_record(payload["config"])
    assert (config.clock, config.firing_rate) == ("sync", 1.0)
    with mock.patch.object(enjoy_module, "NeuronVecEnv", wraps=NeuronVecEnv) as made:
        assert main(["enjoy", "--checkpoint", str(old), "--episodes", "1"]) == 0
    assert (made.call_args.kwargs["clock"], made.call_args.kwargs["firing_rate"]) == ("sync", 1.0)


@pytest.mark.parametrize(("flags", "expected"), [
    ([], ("async", 0.5)),                                   # the run's own clock
    (["--clock", "sync"], ("sync", 1.0)),                   # another clock: its rate is 1
    (["--firing-rate", "0.25"], ("async", 0.25)),           # the run's async clock at another rate
])
def test_enjoy_and_render_restore_the_run_clock_or_take_the_flags(async_run: Path, tmp_path: Path,
                                                                  flags: list[str], expected: tuple) -> None:
    with mock.patch.object(enjoy_module, "NeuronVecEnv", wraps=NeuronVecEnv) as made:
        assert main(["enjoy", "--checkpoint", str(async_run), "--episodes", "1", *flags]) == 0
    assert (made.call_args.kwargs["clock"], made.call_args.kwargs["firing_rate"]) == expected
    made_parallel = mock.patch.object(neuron_env.parallel, "NeuronParallelEnv",
                                      wraps=neuron_env.parallel.NeuronParallelEnv)
    with made_parallel as made:
        assert main(["render", "--checkpoint", str(async_run), "--out", str(tmp_path / "x.gif"), "--max-ticks", "3",
                     "--no-progress", *flags]) == 0
    assert (made.call_args.kwargs["clock"], made.call_args.kwargs["firing_rate"]) == expected


# ---------------------------------------------------------------------------------- compare
def test_compare_takes_records_and_runs_the_network_and_clock(tmp_path: Path) -> None:
    args = build_parser().parse_args([
        "compare", "--tasks", TASK, "--methods", "random", "local-mlp", "--topology", "recurrent", "--hidden", "4",
        "--leak", "0.3", "--clock", "async", "--firing-rate", "0.5", "--steps", "6", "--learning-starts", "3",
        "--eval-every", "6", "--eval-episodes", "1", "--seeds", "1", "--out", str(tmp_path / "cmp")])
    config = compare_config_from_args(args)
    config.validate()
    assert "--topology recurrent --leak 0.3 --clock async --firing-rate 0.5" in command_line(config)
    random_spec, local_spec = plan_runs(config)
    assert set(random_spec.identity()).isdisjoint({"topology", "leak", "clock", "firing_rate"})
    assert {k: local_spec.identity()[k] for k in ("topology", "leak", "clock", "firing_rate")} == {
        "topology": "recurrent", "leak": 0.3, "clock": "async", "firing_rate": 0.5}
    folder = local_spec.folder(config.out)
    assert execute_run(local_spec, folder)["status"] == "completed"
    record = json.loads((folder / "config.json").read_text())
    assert (record["topology"], record["leak"], record["clock"], record["firing_rate"]) == (
        "recurrent", 0.3, "async", 0.5)


def test_compare_takes_records_and_runs_the_sparse_networks_density(tmp_path: Path) -> None:
    args = build_parser().parse_args([
        "compare", "--tasks", TASK, "--methods", "random", "local-mlp", "--topology", "sparse", "--hidden", "6",
        "--density", "0.5", "--steps", "6", "--learning-starts", "3", "--eval-every", "6", "--eval-episodes", "1",
        "--seeds", "1", "--out", str(tmp_path / "cmp")])
    config = compare_config_from_args(args)
    config.validate()
    assert "--topology sparse --density 0.5" in command_line(config)
    random_spec, local_spec = plan_runs(config)
    assert "density" not in random_spec.identity() and local_spec.identity()["density"] == 0.5
    folder = local_spec.folder(config.out)
    assert execute_run(local_spec, folder)["status"] == "completed"
    assert json.loads((folder / "config.json").read_text())["density"] == 0.5


@pytest.mark.parametrize("command", ["train", "compare"])
@pytest.mark.parametrize(("flags", "expected"), [
    (["--topology", "sparse", "--density", "1.5"], "density=1.5 (--density) must lie in (0, 1]"),
    (["--topology", "recurrent", "--leak", "1.5"], "leak=1.5 (--leak) must lie in [0, 1)")])
def test_a_network_option_out_of_range_is_refused_before_any_run(command: str, flags: list[str], expected: str,
                                                                 tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    flags = [*flags, "--hidden", "6", "--out", str(tmp_path / "x")]
    argv = (["train", *TINY, *flags] if command == "train"
            else ["compare", "--tasks", TASK, "--methods", "random", "local-mlp", *flags])
    assert main(argv) == 2
    assert error_line(capsys).endswith(expected)
    assert not (tmp_path / "x").exists()


def test_compare_runs_ddpg_per_tick_under_the_async_clock_on_an_mlp(tmp_path: Path) -> None:
    args = build_parser().parse_args(["compare", "--tasks", TASK, "--methods", "local-mlp", "--hidden", "4",
                                      "--clock", "async", "--firing-rate", "0.5", "--steps", "6",
                                      "--learning-starts", "3", "--eval-every", "6", "--eval-episodes", "1",
                                      "--seeds", "1", "--out", str(tmp_path / "cmp")])
    config = compare_config_from_args(args)
    config.validate()
    (spec,) = plan_runs(config)
    assert execute_run(spec, spec.folder(config.out))["granularity"] == "per_tick"


def test_compare_refuses_a_local_method_that_cannot_train_the_network(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cmp"
    assert main(["compare", "--tasks", TASK, "--methods", "random", "local-feedback", "--topology", "recurrent",
                 "--hidden", "4", "--leak", "0.3", "--out", str(out)]) == 2
    line = error_line(capsys)
    learners = able_learners(network("recurrent-leaky"), "sync")
    able = ", ".join(f"--learner {name}" for name in learners)
    methods = ", ".join(method for method, (learner, _) in LOCAL_METHODS.items() if learner in learners)
    assert line == ("neuron-env compare: error: method local-feedback: learner 'feedback' cannot train a recurrent, "
                    "leaky network: it trains acyclic, leak-free networks on the sync clock; learners that can: "
                    f"{able}; compare methods that can: {methods}")
    assert able.startswith("--learner ddpg") and methods.startswith("local-linear, local-compatible, local-bilinear")
    assert not out.exists()


# ---------------------------------------------------------------------------------- every learner × network × clock
@pytest.mark.parametrize("clock", list(CLOCK_FLAGS))
@pytest.mark.parametrize("kind", list(NETWORKS))
@pytest.mark.parametrize("learner", LEARNERS)
def test_every_learner_trains_or_refuses_in_one_line(learner: str, kind: str, clock: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    topology = network(kind)
    topologies, clocks = capabilities(learner)
    declared = set(topology_kinds(topology)) <= set(topologies) and clock in clocks
    # a learner whose granularity option defaults to None learns settled transitions on an acyclic network
    settled_by_default = (clock == "async" and settles(topology) and "granularity" in learner_options(learner)
                          and getattr(learner_class(learner).config_class(), "granularity", None) is None)
    out = tmp_path / "run"
    code = main(["train", *TINY, "--learner", learner, *NETWORKS[kind], *CLOCK_FLAGS[clock], "--out", str(out)])
    if declared and not settled_by_default:
        assert code == 0, capsys.readouterr().err
        record = json.loads((out / "config.json").read_text())
        assert (record["learner"], record["clock"]) == (learner, clock)
        return
    assert code == 2
    line = error_line(capsys)
    assert line == f"neuron-env train: error: {capability_refusal(learner, topology, clock)}"
    assert not out.exists()  # refused before any work
    if settled_by_default and declared:
        assert "pass --granularity per_tick" in line
        assert main(["train", *TINY, "--learner", learner, *NETWORKS[kind], *CLOCK_FLAGS[clock],
                     "--granularity", "per_tick", "--out", str(out)]) == 0
        return
    assert f"learner {learner!r} cannot train" in line and "it trains" in line
    for able in able_learners(topology, clock):
        assert f"--learner {able}" in line


def test_the_refusals_read_as_documented() -> None:
    recurrent_leaky = network("recurrent-leaky")
    # the learners that can are the registry's (a learner registered later that declares them joins the list)
    assert capability_refusal("feedback", recurrent_leaky).startswith(
        "learner 'feedback' cannot train a recurrent, leaky network: it trains acyclic, leak-free networks on the sync "
        "clock; learners that can: --learner ddpg")
    assert capability_refusal("es", network("acyclic"), "async").startswith(
        "learner 'es' cannot train an acyclic, leak-free network on the async clock: it trains acyclic, leak-free "
        "networks on the sync clock; learners that can: --learner ddpg --granularity per_tick")
    assert capability_refusal("ddpg", recurrent_leaky, "async") is None
    # a learner built directly refuses with the same line (require_settled): one message, not two
    with pytest.raises(LearnerConfigError) as refused:
        from neuron_env.agents.registry import make_learner

        make_learner("feedback", recurrent_leaky, {})
    assert str(refused.value) == capability_refusal("feedback", recurrent_leaky)


# ---------------------------------------------------------------------------------- async p = 1 is sync, bit for bit
ASYNC_LEARNERS = [name for name in LEARNERS if "async" in capabilities(name)[1]]


def async_network(learner: str) -> str:
    """The first network kind the learner trains under the async clock with its default options."""
    return next(kind for kind in NETWORKS if capability_refusal(learner, network(kind), "async") is None)


@pytest.mark.parametrize("learner", ASYNC_LEARNERS or [pytest.param(None, marks=pytest.mark.skip(
    reason="no registered learner declares the async clock yet"))])
def test_async_at_firing_rate_one_trains_bit_for_bit_as_sync(learner: str, tmp_path: Path) -> None:
    flags = [*TINY, "--steps", "20", "--learning-starts", "8", "--checkpoint-replay", "--learner", learner,
             *NETWORKS[async_network(learner)]]
    runs = {}
    for name, clock in (("sync", []), ("async1", ["--clock", "async", "--firing-rate", "1"]),
                        ("async05", CLOCK_FLAGS["async"])):
        assert main(["train", *flags, *clock, "--out", str(tmp_path / name)]) == 0
        runs[name] = (load_checkpoint(tmp_path / name),
                      json.loads((tmp_path / name / "summary.json").read_text())["final_eval_returns"])
    assert runs["async1"][0]["config"]["clock"] == "async"
    assert_states_equal(runs["async1"][0]["learner"], runs["sync"][0]["learner"])
    assert_states_equal(runs["async1"][0]["weights"], runs["sync"][0]["weights"])
    assert runs["async1"][1] == runs["sync"][1]
    # and the clock is really used: at 0.5 the run differs
    assert not all(torch.equal(a, b) for a, b in zip(runs["async05"][0]["weights"]["blocks"],
                                                     runs["sync"][0]["weights"]["blocks"], strict=True))


# ---------------------------------------------------------------------------------- who fired reaches store
def test_the_trainer_hands_fired_to_store_under_the_async_clock_only(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    seen: list[Any] = []
    original = OffPolicyNetwork.store

    def spy(self: OffPolicyNetwork, *args: Any, **kwargs: Any) -> None:
        seen.append(kwargs.get("fired", "absent"))
        original(self, *args, **kwargs)

    monkeypatch.setattr(OffPolicyNetwork, "store", spy)
    base = {"task": TASK, "learner": "ddpg", "topology": "recurrent", "hidden": [4], "leak": 0.3, "steps": 5,
            "learning_starts": 2, "eval_every": 0, "eval_episodes": 1, "progress": False, "tensorboard": False}
    train(TrainConfig(**base, out=str(tmp_path / "sync")))
    assert seen and all(fired == "absent" for fired in seen)
    seen.clear()
    train(TrainConfig(**base, clock="async", firing_rate=0.5, out=str(tmp_path / "async")))
    topology = network("recurrent-leaky")
    assert len(seen) == 5 and all(f.dtype == torch.bool and f.shape == (1, topology.num_agents) for f in seen)
    assert not bool(torch.cat(seen).all())


def test_ddpg_stores_a_silent_neurons_transition_with_the_action_that_had_its_effect() -> None:
    topology = Topology.recurrent(3, 4, 1, leak=0.3)  # h leaks (a silent h decays: drive 0), out does not (holds)
    learner = LocalDDPG(topology, batch_size=4)
    assert learner.granularity == "per_tick"
    voltages = torch.randn(2, topology.num_neurons)
    actions = torch.rand(2, topology.num_agents) * 2 - 1
    fired = torch.tensor([[True, False, True, False, False], [False, True, True, True, True]])
    learner.store(voltages, actions, torch.ones(2), voltages, torch.zeros(2), fired=fired)
    held = voltages[:, topology.agent_neuron_index]
    leaky = torch.tensor([g.leak > 0 for g in topology.agent_groups for _ in range(g.size)])
    expected = torch.where(fired, actions, torch.where(leaky, torch.zeros_like(held), held))
    assert torch.equal(learner.buffer.actions[:2], expected)
    assert torch.equal(learner.buffer.actions[0, 4], held[0, 4]) and learner.buffer.actions[0, 1] == 0
    # every agent fired: the actions are stored as given (firing_rate=1 is the sync clock)
    learner.store(voltages, actions, torch.ones(2), voltages, torch.zeros(2), fired=torch.ones_like(fired))
    assert torch.equal(learner.buffer.actions[2:4], actions)
    settled = LocalDDPG(Topology.mlp(3, [4], 1))
    with pytest.raises(LearnerConfigError, match="granularity='per_tick'"):
        settled.store(torch.zeros(1, 8), torch.zeros(1, 5), torch.zeros(1), torch.zeros(1, 8), torch.zeros(1),
                      fired=torch.ones(1, 5, dtype=torch.bool))


# ---------------------------------------------------------------------------------- bad firing rates
@pytest.mark.parametrize("rate", ["0", "1.5", "-1"])
def test_a_bad_firing_rate_is_refused_in_one_line_on_every_command(rate: str, async_run: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    commands = {
        "train": ["train", *TINY, *ASYNC_RECURRENT[:-1], rate, "--out", str(tmp_path / "t")],
        "compare": ["compare", "--tasks", TASK, "--methods", "random", "local-mlp", "--clock", "async",
                    "--firing-rate", rate, "--out", str(tmp_path / "c")],
        "enjoy": ["enjoy", "--checkpoint", str(async_run), "--firing-rate", rate],
        "render": ["render", "--checkpoint", str(async_run), "--out", str(tmp_path / "r.gif"), "--firing-rate", rate],
    }
    for command, argv in commands.items():
        assert main(argv) == 2, command
        line = error_line(capsys)
        assert line.startswith(f"neuron-env {command}: error: firing_rate={float(rate)!r} (--firing-rate) must lie "
                               "in (0, 1]"), line
    assert not any((tmp_path / name).exists() for name in ("t", "c", "r.gif"))


def test_a_firing_rate_below_one_needs_the_async_clock(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", *TINY, "--firing-rate", "0.5", "--out", str(tmp_path / "t")]) == 2
    assert error_line(capsys) == ("neuron-env train: error: firing_rate=0.5 (--firing-rate) needs clock='async' "
                                  "(--clock async); the sync clock fires every neuron on every tick")


@pytest.mark.parametrize("network, expected", [("acyclic", "feedback"), ("recurrent", "eprop"),
                                               ("recurrent-leaky", "eprop")])
def test_train_without_learner_takes_the_networks_default(tmp_path: Path, network: str, expected: str) -> None:
    args = build_parser().parse_args(["train", *TINY, *NETWORKS[network], "--out", str(tmp_path / "run")])
    config = train_config_from_args(args)[0]
    assert config.learner == expected == default_learner(build_topology(config))


def test_the_issues_recurrent_leaky_command_trains_with_the_default_and_resumes(tmp_path: Path,
                                                                               capsys: pytest.CaptureFixture) -> None:
    # `neuron-env train --task MountainCarContinuous-v0 --topology recurrent --hidden 8 --leak 0.3`, shortened
    command = ["train", "--task", "MountainCarContinuous-v0", "--topology", "recurrent", "--hidden", "8", "--leak",
               "0.3", "--steps", "40", "--learning-starts", "10", "--batch-size", "8", "--checkpoint-every", "20",
               "--checkpoint-replay", "--eval-every", "0", "--eval-episodes", "1", "--no-progress", "--no-tensorboard"]
    assert main([*command, "--out", str(tmp_path / "whole")]) == 0
    assert main([*command, "--steps", "20", "--out", str(tmp_path / "split")]) == 0
    assert main(["train", "--resume", str(tmp_path / "split"), "--steps", "40", "--no-progress"]) == 0
    whole, split = (json.loads((tmp_path / name / "summary.json").read_text()) for name in ("whole", "split"))
    assert whole["learner"] == split["learner"] == "eprop"
    assert split["steps"] == 40 and split["updates"] == whole["updates"] > 0
    assert split["final_eval_return_mean"] == whole["final_eval_return_mean"]
    a, b = load_checkpoint(tmp_path / "whole")["weights"], load_checkpoint(tmp_path / "split")["weights"]
    for wa, wb in zip(a["blocks"] + a["biases"], b["blocks"] + b["biases"], strict=True):
        assert torch.equal(wa, wb)


#: (value, the kind it belongs to, the network's words in the refusal) of each network option.
NETWORK_OPTIONS = {"leak": ("0.3", "recurrent", "has no leak"), "density": ("0.5", "sparse", "is dense")}


@pytest.mark.parametrize(("option", "topology"),
                         [("leak", "mlp"), ("leak", "sparse"), ("density", "mlp"), ("density", "recurrent")])
def test_a_network_option_the_kind_has_not_is_refused_in_one_line(option: str, topology: str, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    value, kind, words = NETWORK_OPTIONS[option]
    expected = (f"{option}={value} (--{option}) applies to --topology {kind} only; the {topology!r} network {words}: "
                f"drop --{option} or use --topology {kind}")
    flags = ["--topology", topology, f"--{option}", value]
    for command, argv in {"train": ["train", *TINY, *flags, "--out", str(tmp_path / "t")],
                          "compare": ["compare", "--tasks", TASK, "--methods", "random", *flags,
                                      "--out", str(tmp_path / "c")],
                          "rollout": ["rollout", "--task", TASK, *flags]}.items():
        assert main(argv) == 2, command
        line = error_line(capsys)
        assert line.startswith(f"neuron-env {command}: error: ") and line.endswith(expected), line
    assert not (tmp_path / "t").exists() and not (tmp_path / "c").exists()
