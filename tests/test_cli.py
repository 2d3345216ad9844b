import pytest

from neuron_env.cli import main


def test_info(capsys):
    assert main(["info", "--task", "Pendulum-v1", "--hidden", "8", "8"]) == 0
    out = capsys.readouterr().out
    assert "Agents: 17" in out and "Delay: 3" in out and "h2" in out


def test_rollout_checks_equivalence(capsys):
    assert main(["rollout", "--task", "Pendulum-v1", "--hidden", "8", "--episodes", "1"]) == 0
    out = capsys.readouterr().out
    assert "actions and rewards equal" in out


def test_rollout_recurrent(capsys):
    assert main(["rollout", "--topology", "recurrent", "--hidden", "6", "--leak", "0.2"]) == 0
    assert "skipped" in capsys.readouterr().out


def test_a_discrete_task_is_described_with_its_decoder(capsys):
    assert main(["info", "--task", "CartPole-v1"]) == 0
    assert "argmax" in capsys.readouterr().out


def test_a_space_that_cannot_be_encoded_is_a_clean_error(capsys):
    import gymnasium as gym

    class TextTask(gym.Env):
        observation_space = gym.spaces.Text(5)
        action_space = gym.spaces.Discrete(2)

    gym.register("TextTaskForCli-v0", entry_point=TextTask)
    try:
        assert main(["info", "--task", "TextTaskForCli-v0"]) == 2
    finally:
        gym.registry.pop("TextTaskForCli-v0")
    error = capsys.readouterr().err
    assert "Text" in error and "encoder=" in error and len(error.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [
    ["info", "--task", "Pendulm-v1"],
    ["train", "--task", "Pendulm-v1", "--no-progress"],
    ["baseline", "--task", "Pendulm-v1"],
    ["compare", "--tasks", "Pendulm-v1", "--methods", "random", "--seeds", "1"],
], ids=["info", "train", "baseline", "compare"])
def test_a_misspelled_task_is_one_line_with_gymnasiums_suggestion_and_no_folder(
        argv: list[str], tmp_path, capsys) -> None:
    out = tmp_path / "out"
    if argv[0] != "info":
        argv = [*argv, "--out", str(out)]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert "Pendulm-v1" in error and "Pendulum" in error and len(error.splitlines()) == 1
    assert not out.exists()
