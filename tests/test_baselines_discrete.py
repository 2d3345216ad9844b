"""Baselines for tasks with Discrete actions: SB3 DQN/PPO, wrong-algo errors, and compare's per-task reference."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("stable_baselines3")

from neuron_env.baselines import (  # noqa: E402
    METRICS_COLUMNS,
    SUMMARY_KEYS,
    BaselineConfig,
    BaselineConfigError,
    resolve_hyperparameters,
)
from neuron_env.baselines.compare import (  # noqa: E402
    CompareConfig,
    command_line,
    compute_scores,
    plan_runs,
    render_scores_md,
)
from neuron_env.baselines.sb3_discrete import schedule  # noqa: E402

from neuron_env.cli import main  # noqa: E402

TINY_BASELINE = ["--hidden", "8", "--eval-episodes", "2", "--no-progress", "--no-tensorboard"]
MACHINE = {"cpu_count": 2, "torch": "x", "python": "3", "platform": "p", "date": "today"}


def read_metrics(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


# ------------------------------------------------------------------------------------------ baseline --algo dqn|ppo
def run_cli_baseline(out, capsys, algo: str, *flags: str) -> tuple[str, list[dict], dict]:
    """``neuron-env baseline --algo ALGO`` on CartPole-v1: (printed text, metrics rows, summary)."""
    assert main(["baseline", "--algo", algo, "--task", "CartPole-v1", *flags, "--out", str(out), *TINY_BASELINE]) == 0
    printed = capsys.readouterr().out
    columns, rows = read_metrics(out / "metrics.csv")
    assert tuple(columns) == METRICS_COLUMNS
    return printed, rows, json.loads((out / "summary.json").read_text())


def test_cli_dqn_on_cartpole_writes_every_output(tmp_path, capsys):
    out = tmp_path / "dqn"
    printed, rows, summary = run_cli_baseline(out, capsys, "dqn", "--steps", "300", "--learning-starts", "50",
                                              "--eval-every", "100")
    assert "sb3-dqn on CartPole-v1 (seed 0): 300 steps" in printed
    assert [int(r["step"]) for r in rows] == [100, 200, 300]  # the zoo's train_freq 256 does not overrun the budget
    assert int(rows[-1]["updates"]) == 128  # one training phase at step 256: the zoo's 128 gradient steps
    assert set(SUMMARY_KEYS) <= set(summary)
    _, episodes = read_metrics(out / "episodes.csv")  # one row per training episode, as the trainer writes
    assert len(episodes) == summary["episodes"] > 0
    assert sum(int(e["length"]) for e in episodes) <= 300
    assert all(float(e["return"]) == int(e["length"]) for e in episodes)  # CartPole: reward 1 per step
    assert summary["method"] == "sb3-dqn" and summary["steps"] == 300 and summary["status"] == "completed"
    assert summary["num_agents"] == 8 + 2  # hidden neurons + one output per action
    assert summary["hyperparameters"]["source"] == "rl-zoo" and summary["hyperparameters"]["net_arch"] == [8]
    assert summary["hyperparameters"]["target_update_interval"] == 10
    assert math.isfinite(summary["final_eval_return_mean"]) and len(summary["final_eval_returns"]) == 2
    assert json.loads((out / "config.json").read_text()) == summary["config"]
    assert (out / "model.zip").exists() and not (out / "tb").exists()


def test_cli_ppo_on_cartpole_writes_every_output(tmp_path, capsys):
    out = tmp_path / "ppo"
    printed, rows, summary = run_cli_baseline(out, capsys, "ppo", "--steps", "512", "--eval-every", "128",
                                              "--activation", "relu")
    assert "sb3-ppo on CartPole-v1" in printed
    assert [int(r["step"]) for r in rows] == [128, 256, 384, 512]  # 8 copies: 128 is a multiple of 8
    params = summary["hyperparameters"]
    assert params["n_envs"] == 8 and params["n_steps"] == 32 and params["learning_rate"] == "lin_0.001"
    assert summary["method"] == "sb3-ppo" and summary["steps"] == 512
    assert summary["updates"] == 2 * 20  # two rollouts of 256 transitions, 20 epochs of one 256-minibatch
    assert summary["transitions"] == 256 and summary["num_agents"] == 8 + 2
    assert (out / "model.zip").exists()


def test_ppo_stops_at_its_budget_not_at_the_end_of_its_rollout(tmp_path):
    from neuron_env.baselines import run_baseline

    summary = run_baseline(BaselineConfig(
        algo="ppo", task="CartPole-v1", hidden=(4,), steps=300, eval_every=100, eval_episodes=1, out=str(tmp_path),
        progress=False, tensorboard=False, save_model=False))
    assert 300 <= summary["steps"] < 300 + 8  # 8 copies step together; a full second rollout would end at 512
    _, rows = read_metrics(tmp_path / "metrics.csv")
    assert [int(r["step"]) for r in rows] == [104, 200, 304, summary["steps"]][: len(rows)]


@pytest.mark.parametrize(("argv", "words"), [
    (["--algo", "ddpg", "--task", "CartPole-v1"], ("Discrete action space", "Discrete(2)", "--algo dqn", "--algo ppo")),
    (["--algo", "td3", "--task", "Acrobot-v1"], ("Discrete action space", "--algo dqn")),
    (["--algo", "dqn", "--task", "Pendulum-v1"], ("Box action space", "--algo ddpg", "--algo td3", "--algo ppo")),
    (["--algo", "dqn", "--task", "CartPole-v1", "--noise-std", "0.1"], ("noise_std does not apply", "ddpg/td3")),
    (["--algo", "ppo", "--task", "CartPole-v1", "--learning-starts", "10"], ("learning_starts does not apply",)),
], ids=["ddpg-discrete", "td3-discrete", "dqn-box", "dqn-noise", "ppo-learning-starts"])
def test_wrong_algo_is_one_line_and_no_folder(argv, words, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["baseline", *argv, "--out", str(out), "--no-progress"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("neuron-env baseline: error:")
    for word in words:
        assert word in error
    assert not out.exists()


def test_zoo_tables_and_sb3_defaults():
    dqn = resolve_hyperparameters(BaselineConfig(algo="dqn", task="CartPole-v1", hidden=None))
    assert dqn["source"] == "rl-zoo" and dqn["steps"] == 50_000 and dqn["train_freq"] == 256
    assert dqn["gradient_steps"] == 128 and dqn["exploration_fraction"] == 0.16 and dqn["buffer_size"] == 50_000
    assert dqn["net_arch"] == [256, 256] and dqn["activation"] == "relu"
    acrobot = resolve_hyperparameters(BaselineConfig(algo="dqn", task="Acrobot-v1", exploration_final_eps=0.2))
    assert acrobot["target_update_interval"] == 250 and acrobot["learning_starts"] == 0
    assert acrobot["exploration_final_eps"] == 0.2 and acrobot["net_arch"] == [64, 64]  # the override, --hidden
    ppo = resolve_hyperparameters(BaselineConfig(algo="ppo", task="Acrobot-v1", hidden=None, n_envs=4))
    assert ppo["n_envs"] == 4 and ppo["n_steps"] == 256 and ppo["gae_lambda"] == 0.94 and ppo["steps"] == 1_000_000
    assert ppo["net_arch"] == [64, 64] and ppo["activation"] == "tanh" and "buffer_size" not in ppo
    other = resolve_hyperparameters(BaselineConfig(algo="ppo", task="FrozenLake-v1", steps=1000))
    assert other["source"] == "sb3-defaults" and other["n_steps"] == 2048 and other["n_envs"] == 1
    assert schedule("lin_0.5")(0.5) == pytest.approx(0.25) and schedule(0.3) == 0.3


@pytest.mark.parametrize(("kwargs", "word"), [
    ({"algo": "dqn", "task": "CartPole-v1", "exploration_fraction": 1.5}, "exploration_fraction"),
    ({"algo": "ppo", "task": "CartPole-v1", "n_envs": 0}, "n_envs"),
    ({"algo": "ppo", "task": "CartPole-v1", "clip_range": 0.0}, "clip_range"),
    ({"algo": "ddpg", "task": "Pendulum-v1", "n_steps": 8}, "n_steps does not apply"),
])
def test_bad_discrete_options_raise_typed_errors(kwargs, word):
    with pytest.raises(BaselineConfigError, match=word):
        BaselineConfig(**kwargs).validate()


# ------------------------------------------------------------------------------------------ compare
def test_compare_on_cartpole_names_sb3_dqn_as_the_reference_and_runs_a_local_learner(tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", "--tasks", "CartPole-v1", "--methods", "random", "sb3-dqn", "local-feedback",
            "--reference", "auto", "--steps", "300", "--seeds", "1", "--eval-every", "100", "--eval-episodes", "2",
            "--learning-starts", "50", "--hidden", "8", "--no-tensorboard", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    capsys.readouterr()
    scores = json.loads((out / "scores.json").read_text())
    cartpole = scores["tasks"]["CartPole-v1"]
    assert scores["reference"] == "auto" and cartpole["reference"] == "sb3-dqn"
    assert cartpole["action_space"] == "Discrete"
    assert {m: e["status_counts"] for m, e in cartpole["methods"].items()} == {  # random and local act on Discrete
        "random": {"completed": 1}, "sb3-dqn": {"completed": 1}, "local-feedback": {"completed": 1}}
    if cartpole["reference_mean"] != cartpole["random_mean"]:
        assert cartpole["methods"]["sb3-dqn"]["normalized_mean"] == pytest.approx(1.0)
        assert math.isfinite(cartpole["methods"]["local-feedback"]["normalized_mean"])
    scores_md = (out / "scores.md").read_text()
    assert "| task | steps | random | sb3-dqn | local-feedback | reference (= 1) |" in scores_md
    assert "| sb3-dqn (Discrete actions) |" in scores_md and "--reference auto" in scores_md
    assert "--reference" not in scores_md.split("Regenerate with: `")[1].split("`")[0]  # auto is the default


def test_a_several_task_grid_skips_the_pairs_that_cannot_run(tmp_path, monkeypatch):
    import neuron_env.baselines.compare as compare_module

    config = CompareConfig(tasks=("Pendulum-v1", "CartPole-v1"), methods=("random", "sb3-ddpg", "sb3-dqn"), seeds=2,
                           steps=100, out=str(tmp_path))
    config.validate()  # each SB3 method acts on one of the tasks
    assert [(t, m) for t, m, _ in config.skipped_pairs()] == [("Pendulum-v1", "sb3-dqn"), ("CartPole-v1", "sb3-ddpg")]
    planned = {(s.task, s.method) for s in plan_runs(config)}
    assert planned == {("Pendulum-v1", "random"), ("Pendulum-v1", "sb3-ddpg"), ("CartPole-v1", "random"),
                       ("CartPole-v1", "sb3-dqn")}
    assert [config.reference_for(t) for t in config.tasks] == ["sb3-ddpg", "sb3-dqn"]

    def fake_dispatch(jobs: list, _config: Any, on_row: Any) -> None:
        values = {"random": -1000.0, "sb3-ddpg": -200.0, "sb3-dqn": 100.0}
        for spec, _ in jobs:
            base = 20.0 if spec.task == "CartPole-v1" and spec.method == "random" else values[spec.method]
            on_row({"task": spec.task, "method": spec.method, "seed": spec.seed, "final_eval_mean": base,
                    "final_eval_std": 0.0, "steps": spec.steps, "wall_time_s": 1.0, "steps_per_s": 100.0,
                    "status": "completed", "error": ""})

    monkeypatch.setattr(compare_module, "dispatch", fake_dispatch)
    printed: list[str] = []
    result = compare_module.compare(config, print_fn=printed.append)
    skip_lines = [line for line in printed if "skipping" in line]
    assert len(skip_lines) == 1 and "sb3-dqn on Pendulum-v1 (Box actions)" in skip_lines[0]
    assert "sb3-ddpg on CartPole-v1 (Discrete actions)" in skip_lines[0]
    assert result["ran"] == 8 and result["failed"] == 0
    tasks = result["scores"]["tasks"]
    assert tasks["Pendulum-v1"]["reference"] == "sb3-ddpg" and tasks["CartPole-v1"]["reference"] == "sb3-dqn"
    assert tasks["Pendulum-v1"]["methods"]["sb3-ddpg"]["normalized_mean"] == pytest.approx(1.0)
    assert tasks["CartPole-v1"]["methods"]["sb3-dqn"]["normalized_mean"] == pytest.approx(1.0)
    assert "Discrete" in tasks["CartPole-v1"]["methods"]["sb3-ddpg"]["skipped"]
    assert not any("seeds have no final return" in note for note in tasks["CartPole-v1"]["notes"])
    text = (tmp_path / "scores.md").read_text()
    assert "| Pendulum-v1 | 100 | 0.00 ± 0.00 | 1.00 ± 0.00 | — | sb3-ddpg (Box actions) |" in text
    assert "| CartPole-v1 | 100 | 0.00 ± 0.00 | — | 1.00 ± 0.00 | sb3-dqn (Discrete actions) |" in text
    assert "| CartPole-v1 | sb3-ddpg | not run (cannot act on its actions) |" in text


def test_an_explicit_reference_keeps_the_old_table_text(tmp_path):
    config = CompareConfig(tasks=("Pendulum-v1",), methods=("random", "sb3-ddpg"), seeds=1, reference="sb3-ddpg",
                           out=str(tmp_path))
    config.validate()
    rows = [{"task": "Pendulum-v1", "method": m, "seed": 0, "final_eval_mean": v, "final_eval_std": 0.0,
             "steps": 100, "wall_time_s": 1.0, "steps_per_s": 1.0, "status": "completed", "error": ""}
            for m, v in (("random", -1000.0), ("sb3-ddpg", -200.0))]
    text = render_scores_md(config, compute_scores(config, rows), MACHINE, command_line(config))
    assert "(R − R_random) / (R_sb3-ddpg − R_random)" in text and "random = 0 and sb3-ddpg = 1" in text
    assert "| Pendulum-v1 | 20000 | 0.00 ± 0.00 | 1.00 ± 0.00 | sb3-ddpg |" in text
    assert "--reference sb3-ddpg" in command_line(config)


@pytest.mark.parametrize(("changes", "match"), [
    ({"tasks": ("CartPole-v1",), "methods": ("random", "sb3-ddpg")},
     r"sb3-ddpg cannot run: CartPole-v1 has a Discrete action space \(Discrete\(2\)\).*sb3-dqn or sb3-ppo"),
    ({"tasks": ("Pendulum-v1",), "methods": ("random", "sb3-dqn")}, r"sb3-dqn cannot run: Pendulum-v1 has a Box"),
    ({"tasks": ("CartPole-v1", "Pendulum-v1"), "methods": ("random", "sb3-ppo"), "reference": "sb3-ddpg"},
     r"reference sb3-ddpg cannot score CartPole-v1.*--reference auto"),
    ({"reference": "sb3-sac"}, "'auto' or a learning method"),
])
def test_validate_refuses_methods_that_cannot_act_on_the_task(changes, match):
    with pytest.raises(BaselineConfigError, match=match):
        CompareConfig(**changes).validate()


def test_validate_allows_random_and_local_methods_on_any_task():
    CompareConfig(tasks=("CartPole-v1",), methods=("random", "sb3-dqn", "sb3-ppo", "local-mlp")).validate()
    CompareConfig(tasks=("Pendulum-v1",), methods=("random", "sb3-ddpg", "sb3-ppo")).validate()


def test_with_several_tasks_a_method_that_fits_none_is_skipped_everywhere():
    config = CompareConfig(tasks=("CartPole-v1", "Acrobot-v1"), methods=("random", "sb3-ddpg-zoo", "sb3-dqn"))
    config.validate()
    assert [(t, m) for t, m, _ in config.skipped_pairs()] == [("CartPole-v1", "sb3-ddpg-zoo"),
                                                               ("Acrobot-v1", "sb3-ddpg-zoo")]
    assert {s.method for s in plan_runs(config)} == {"random", "sb3-dqn"}
