"""One source of truth for a run's settings: each learner's own defaults, recorded as used, in ``--help`` too.

``TrainConfig`` holds the run's settings and only the learner options a run sets; an option not
set takes the chosen learner's own default (its config dataclass), ``config.json`` records every
option of that learner as resolved (and no other learner's), and files written before this format
(the ``ddpg`` learner's options as flat fields) still resume.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import pytest
from neuron_env.agents import FeedbackConfig, LearnerConfigError, LocalDDPGConfig
from neuron_env.agents.commands import add_train_parser
from neuron_env.agents.registry import LEARNERS, learner_class, learner_options
from neuron_env.agents.train import (
    CHECKPOINT_NAME,
    TrainConfig,
    Trainer,
    config_from_checkpoint,
    load_checkpoint,
    run_fields,
    save_checkpoint,
)

from neuron_env.cli import main

from .conftest import assert_states_equal

#: Run flags of a tiny command-line run (no learner option among them).
TINY_FLAGS = ["--hidden", "4", "--steps", "40", "--learning-starts", "20", "--eval-every", "0", "--eval-episodes", "1",
              "--checkpoint-every", "20", "--no-progress", "--no-tensorboard"]
#: The ``ddpg`` learner's options as ``TrainConfig`` fields held them, with the defaults they had there
#: (a literal copy: what ``config.json`` and checkpoints of that version hold).
OLD_FLAT_FIELDS: dict[str, Any] = {
    "freeze_hidden": False, "critic": "mlp", "critic_context": "task", "granularity": None, "critic_hidden": 32,
    "gamma": 0.99, "tau": 0.005, "lr_critic": 0.001, "lr_actor": 0.005, "lr_actor_hidden": None,
    "actor_optimizer": "sgd", "actor_max_norm": None, "policy_delay": 1, "batch_size": 64, "buffer_size": 100000,
    "noise": "gaussian", "noise_scale": 0.1, "noise_scale_hidden": None, "replay_voltages": "stored",
}


def run_cli(out: Path, *flags: str) -> dict[str, Any]:
    """``neuron-env train`` with the tiny run flags and ``flags``; the run's ``config.json``."""
    assert main(["train", *TINY_FLAGS, "--out", str(out), *flags]) == 0
    return json.loads((out / "config.json").read_text())


def old_format(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` (this version's ``config.json``) as the previous version wrote it for the same run.

    The previous ``TrainConfig`` held the ``ddpg`` options as flat fields: a field the run set holds
    its value, every other one the ``ddpg`` default (whatever the learner used), and
    ``learner_options`` was empty for options that were fields.
    """
    options, defaults = record["learner_config"], learner_class(record["learner"]).config_class()
    changed = {name: value for name, value in options.items() if value != getattr(defaults, name)}
    flat = {name: changed.get(name, value) for name, value in OLD_FLAT_FIELDS.items()}
    extra = {name: value for name, value in changed.items() if name not in OLD_FLAT_FIELDS}
    run = {name: value for name, value in record.items() if name != "learner_config"}
    return {**flat, **run, "learner_options": extra}


# ------------------------------------------------------------------ what a run records
def test_a_default_feedback_run_records_the_feedback_learners_settings(tmp_path: Path) -> None:
    out = tmp_path / "fb"
    record = run_cli(out)
    used = record["learner_config"]
    assert record["learner"] == "feedback" == TrainConfig().learner
    assert (used["batch_size"], used["actor_optimizer"], used["lr_actor"], used["critic_hidden"],
            used["critic_context"], used["replay_voltages"]) == (256, "adam", 1e-3, 64, "observation", "current")
    assert used == asdict(FeedbackConfig())
    # nothing of another learner, no learner option among the run's settings
    assert set(record) == {*run_fields(), "learner_config"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["learner_config"] == used and summary["config"] == record
    assert load_checkpoint(out)["config"] == record


def test_a_ddpg_run_records_the_ddpg_learners_settings(tmp_path: Path) -> None:
    record = run_cli(tmp_path / "ddpg", "--learner", "ddpg")
    used = record["learner_config"]
    assert (used["batch_size"], used["actor_optimizer"], used["lr_actor"], used["critic_hidden"],
            used["critic_context"], used["replay_voltages"]) == (64, "sgd", 5e-3, 32, "task", "stored")
    assert used == asdict(LocalDDPGConfig())


@pytest.mark.parametrize("name", LEARNERS)
def test_every_learner_is_built_and_recorded_with_its_own_defaults(tmp_path: Path, name: str) -> None:
    trainer = Trainer(TrainConfig(learner=name, hidden=[4], out=str(tmp_path), progress=False, tensorboard=False,
                                  device="cpu"))
    trainer.env.close()
    defaults = learner_class(name).config_class()
    assert json.loads((tmp_path / "config.json").read_text())["learner_config"] == asdict(defaults)
    for option in ("batch_size", "lr_actor", "actor_optimizer"):
        if hasattr(defaults, option):  # the learner was built with them, not with another learner's
            assert getattr(trainer.learner, option) == getattr(defaults, option), option


def test_no_learner_option_shares_a_name_with_a_run_setting() -> None:
    # the command line and TrainConfig.from_settings take both in one namespace
    for name in LEARNERS:
        assert not set(learner_options(name)) & set(run_fields()), name


# ------------------------------------------------------------------ options that are set
def test_a_flag_given_lands_in_config_json_and_in_the_learner(tmp_path: Path) -> None:
    out = tmp_path / "fb"
    # --critic-context task is the ddpg learner's default: given, it still reaches the feedback learner
    record = run_cli(out, "--batch-size", "8", "--lr-actor", "0.002", "--critic-context", "task")
    used = record["learner_config"]
    assert (used["batch_size"], used["lr_actor"], used["critic_context"]) == (8, 0.002, "task")
    assert used == asdict(FeedbackConfig(batch_size=8, lr_actor=0.002, critic_context="task"))
    assert json.loads((out / "summary.json").read_text())["learner_config"] == used
    trainer = Trainer(config_from_checkpoint(load_checkpoint(out)))  # the learner the recorded settings build
    trainer.env.close()
    assert (trainer.learner.batch_size, trainer.learner.lr_actor, trainer.learner.actor_optimizer) == (8, 0.002, "adam")


def test_python_api_sets_options_apart_or_in_one_flat_mapping() -> None:
    apart = TrainConfig(learner="ddpg", learner_options={"critic": "linear", "batch_size": 16}, steps=500)
    flat = TrainConfig.from_settings({"learner": "ddpg", "critic": "linear", "steps": 500}, batch_size=16)
    assert apart == flat
    assert flat.learner_config() == LocalDDPGConfig(critic="linear", batch_size=16)
    assert TrainConfig.from_settings(flat.settings()).learner_config() == flat.learner_config()
    assert TrainConfig.from_record(flat.record()).record() == flat.record()
    # None is the learner's default, as in the registry's make_learner
    assert TrainConfig(learner_options={"noise_scale_hidden": None}).learner_config().noise_scale_hidden == 0.0


def test_a_density_recorded_on_a_dense_network_reads_as_the_default() -> None:
    # before a density on a dense network was refused, one was accepted and recorded (without effect)
    record = {**TrainConfig(task="Pendulum-v1", hidden=[4]).record(), "density": 0.3}
    config = TrainConfig.from_record(record)
    assert config.density == 0.1
    config.check_network()  # it resumes and plays, where the recorded 0.3 would now be refused
    sparse = TrainConfig.from_record({**record, "topology": "sparse"})
    assert sparse.density == 0.3


def test_an_option_the_learner_lacks_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "es"
    assert main(["train", *TINY_FLAGS, "--out", str(out), "--learner", "es", "--batch-size", "8"]) == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message and "--batch-size is not an option of --learner es" in message
    assert "an option of ddpg, feedback" in message and "--num-directions" in message
    assert not out.exists()
    with pytest.raises(LearnerConfigError, match=r"\['tau'\] are not options of learner 'coagent' "
                                                 r"\(tau: an option of ddpg, feedback, eprop\)"):
        TrainConfig.from_settings(learner="coagent", tau=0.01).check()
    with pytest.raises(LearnerConfigError, match="an option of no learner"):
        TrainConfig(learner_options={"lr_acter": 0.1}).learner_config()


# ------------------------------------------------------------------ --help
def train_parser() -> argparse.ArgumentParser:
    return add_train_parser(argparse.ArgumentParser().add_subparsers())


def test_help_shows_each_learners_own_default() -> None:
    parser = train_parser()
    helps = {action.dest: " ".join((action.help or "").split()) for action in parser._actions}
    assert "(defaults: feedback/eprop 256, ddpg 64)" in helps["batch_size"]
    assert "(defaults: feedback/eprop 0.001, ddpg 0.005, coagent/weight-max 1e-05)" in helps["lr_actor"]
    assert "(defaults: feedback/eprop adam, ddpg/coagent/weight-max sgd)" in helps["actor_optimizer"]
    assert "[es]" in helps["num_directions"] and "(default: 8)" in helps["num_directions"]
    for name in LEARNERS:
        for f in fields(learner_class(name).config_class):
            text = helps[f.name]
            users = text[1:text.index("]")].split(", ")  # "[ddpg, feedback] ..."
            assert name in users and str(getattr(learner_class(name).config_class(), f.name)) in text, (name, f.name)
    text = " ".join(parser.format_help().split())
    assert "their own" not in text and "for ddpg;" not in text and "local DDPG" not in text
    assert "--learner feedback (the default; eprop on a recurrent or leaky network)" in text


def test_help_shows_the_output_folder_the_run_uses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    helps = {action.dest: action.help or "" for action in train_parser()._actions}
    assert "runs/<task>-<learner>-seed<seed>" in helps["out"] and "runs/<task>-<critic>-seed<seed>" in helps["out"]
    assert TrainConfig(seed=3).output_dir() == Path("runs/Pendulum-v1-feedback-seed3")
    assert TrainConfig(learner="ddpg", seed=3).output_dir() == Path("runs/Pendulum-v1-mlp-seed3")


# ------------------------------------------------------------------ files of the previous format
def test_an_old_format_checkpoint_config_resolves_as_that_version_ran_it() -> None:
    old = {**OLD_FLAT_FIELDS, "batch_size": 16, "critic_hidden": 4, "task": "Pendulum-v1", "learner": "feedback",
           "learner_options": {"feedback": "sign"}, "hidden": [4], "steps": 40, "seed": 2}
    config = config_from_checkpoint({"config": old})
    assert (config.learner, config.hidden, config.steps, config.seed) == ("feedback", [4], 40, 2)
    # set fields and learner_options kept; fields at the ddpg defaults were the feedback learner's own defaults
    assert config.learner_options == {"batch_size": 16, "critic_hidden": 4, "feedback": "sign"}
    assert config.learner_config() == FeedbackConfig(batch_size=16, critic_hidden=4, feedback="sign")
    # a ddpg run used every field as written; a record from before the learners is a ddpg run
    ddpg = {**OLD_FLAT_FIELDS, "critic": "linear", "task": "Pendulum-v1", "learner_options": {}}
    assert config_from_checkpoint({"config": ddpg}).learner_config() == LocalDDPGConfig(critic="linear")
    del ddpg["learner_options"]
    assert config_from_checkpoint({"config": ddpg}).learner == "ddpg"


def test_an_old_format_run_resumes_exactly_and_enjoys(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # feedback: the learner whose defaults the old flat fields misreported
    flags = ["--critic-hidden", "4", "--batch-size", "8", "--buffer-size", "500", "--checkpoint-replay"]
    run_cli(tmp_path / "whole", *flags)
    split = tmp_path / "split"
    record = run_cli(split, *flags, "--steps", "20")
    payload = load_checkpoint(split)
    payload["config"] = old_format(record)
    assert payload["config"]["lr_actor"] == 0.005 and "learner_config" not in payload["config"]
    save_checkpoint(split / CHECKPOINT_NAME, payload)
    (split / "config.json").write_text(json.dumps(payload["config"]))
    assert main(["train", "--resume", str(split), "--steps", "40", "--checkpoint-replay", "--no-progress"]) == 0
    resumed = json.loads((split / "config.json").read_text())
    whole = json.loads((tmp_path / "whole" / "config.json").read_text())
    assert resumed["learner_config"] == whole["learner_config"]  # rewritten in this format, as resolved
    # exact resume
    assert_states_equal(load_checkpoint(tmp_path / "whole")["learner"], load_checkpoint(split)["learner"])
    capsys.readouterr()
    assert main(["enjoy", "--checkpoint", str(split), "--episodes", "1"]) == 0
    assert "learner feedback" in capsys.readouterr().out
