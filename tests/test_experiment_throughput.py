"""E3 throughput: a tiny end-to-end run writes the JSON and the bar chart."""

from __future__ import annotations

import argparse
import json

import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("matplotlib")
pytest.importorskip("psutil")

from neuron_env.baselines.errors import BaselineConfigError  # noqa: E402
from neuron_env.baselines.experiments import throughput, update_benchmark  # noqa: E402


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="throughput")
    throughput.add_arguments(parser)
    return throughput.run_from_args(parser.parse_args(argv))


def test_config_errors():
    with pytest.raises(BaselineConfigError, match="repeats"):
        throughput.ThroughputConfig(repeats=0).validate()


def test_config_is_the_benchmark_args_with_an_output_directory():
    config = throughput.ThroughputConfig(hidden=[8], activation="relu", quick=True)
    args = config.benchmark_args()
    assert type(args) is update_benchmark.Args and args.out == ""
    assert args.hidden == (8,) and args.activation == "relu" and args.quick
    assert config.out == "runs/throughput" and config.hidden == [8]  # a copy: the config is left as it was
    defaults = update_benchmark.Args()
    for name in ("task", "hidden", "critics", "batch_size", "device", "threads", "duration", "repeats", "warmup",
                 "buffer_fill", "memory_updates", "memory_mode", "check_finite", "seed", "quick"):
        assert getattr(throughput.ThroughputConfig(), name) == getattr(defaults, name)


def test_command_line_to_config():
    parser = argparse.ArgumentParser(prog="throughput")
    throughput.add_arguments(parser)
    config = throughput.config_from_args(parser.parse_args(
        ["--out", "runs/x", "--hidden", "8", "4", "--device", "cpu", "--no-check-finite", "--threads", "1"]))
    assert config.out == "runs/x" and config.hidden == (8, 4) and config.device == ("cpu",)
    assert config.threads == (1,) and not config.check_finite and config.repeats == 3


def test_tiny_end_to_end(tmp_path, capsys):
    out = tmp_path / "e3"
    status = run_cli(["--out", str(out), "--hidden", "16", "--critics", "linear", "bilinear", "--batch-size", "32",
                      "--device", "cpu", "cuda", "--threads", "1", "--duration", "0", "--repeats", "1",
                      "--warmup", "1", "--buffer-fill", "200", "--memory-mode", "in-process", "--memory-updates", "1"])
    assert status == 0
    assert "local-linear" in capsys.readouterr().out
    result = json.loads((out / "throughput.json").read_text())
    assert {"experiment", "experiment_config", "config", "machine", "settings", "target_checks", "memory",
            "skipped", "wall_time_s"} <= set(result)
    assert result["experiment"] == "throughput"
    assert set(result["settings"][0]["methods"]) == {"sb3-ddpg", "local-linear", "local-bilinear"}
    assert (out / "throughput.png").stat().st_size > 1000
