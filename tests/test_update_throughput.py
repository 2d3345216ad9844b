"""The update-throughput benchmark (neuron_env.baselines.experiments.update_benchmark): configuration, memory
arithmetic, a tiny CPU run, the fresh-process memory probe, and the script in benchmarks/ (the module's command
line plus the rows of neuron-env train's default configuration)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("stable_baselines3")
pytest.importorskip("psutil")

from neuron_env.baselines.experiments import update_benchmark as bench  # noqa: E402

from .conftest import load_script  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "update_throughput.py"


def tiny_args(**overrides):
    fields = dict(hidden=(16,), critics=("linear", "mlp"), critic_hidden=4, batch_size=32, device=("cpu", "cuda"),
                  threads=(1,), buffer_fill=200, warmup=1, duration=0.0, min_updates=2, repeats=2,
                  memory_updates=1, memory_mode="in-process", out="")
    fields.update(overrides)
    return bench.Args(**fields)


def test_parse_args_and_quick():
    args = bench.parse_args(["--quick", "--device", "cpu", "--threads", "1", "2", "--critics", "linear"])
    assert args.device == ("cpu",) and args.threads == (1, 2) and args.critics == ("linear",)
    assert args.repeats == 1 and args.memory_mode == "in-process" and args.buffer_fill <= 1000
    assert args.out == "benchmarks/results/update_throughput.json"
    with pytest.raises(SystemExit):
        bench.parse_args(["--repeats", "0"])
    with pytest.raises(ValueError, match="critics"):
        tiny_args(critics=("quadratic",)).validate()


def test_from_dict_makes_tuples_and_rejects_unknown_keys():
    args = bench.Args.from_dict({"hidden": [8, 4], "device": ["cpu"], "seed": 3})
    assert args.hidden == (8, 4) and args.device == ("cpu",) and args.seed == 3 and args.threads == (1, 0)
    with pytest.raises(TypeError):
        bench.Args.from_dict({"hiden": [8]})


def test_replay_bytes_match_the_buffer_formula():
    learner = bench.build_local(tiny_args(), "linear", "cpu", 17, 6)
    width, a = learner.buffer.voltages.shape[1], learner.topology.num_agents
    assert width == 17  # settled granularity stores only the input neurons' voltages (replay.py)
    assert bench.buffer_bytes_per_transition(learner) == 4 * (2 * width + a + 2)  # float32 rows, see replay.py


def test_tiny_run_reports_every_method_and_the_targets():
    results = bench.run_benchmark(tiny_args(), log=lambda line: None)
    assert {"config", "machine", "settings", "target_checks", "memory", "skipped", "notes", "wall_time_s"} <= set(
        results)
    cpu = [s for s in results["settings"] if s["device"] == "cpu"]
    assert [s["threads"] for s in cpu] == [1]
    methods = cpu[0]["methods"]
    assert set(methods) == {"sb3-ddpg", "local-linear", "local-mlp"}
    for figures in methods.values():
        assert figures["updates_per_s"] > 0 and len(figures["repeats_updates_per_s"]) == 2
        assert figures["transitions_per_s"] == pytest.approx(32 * figures["updates_per_s"])
    assert methods["sb3-ddpg"]["ratio_vs_sb3"] == pytest.approx(1.0)
    check = results["target_checks"][0]
    assert check["target"] == bench.CPU_TARGET and check["met"] == (check["ratio"] >= bench.CPU_TARGET)
    assert results["memory"]["local_replay_bytes"] == results["memory"]["local_bytes_per_transition"] * 10**6
    if not torch.cuda.is_available():
        assert any("cuda" in line for line in results["skipped"])
    table = bench.format_table(results)
    assert "local-linear" in table and ("NOT met" in table or "-> met" in table)


def test_memory_probe_runs_the_package_module_in_a_fresh_process(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no checkout on the path: the probe imports the installed package
    figures = bench.peak_memory_in_subprocess(tiny_args(critics=("linear",)), "local-linear")
    assert isinstance(figures["peak_bytes"], int), figures["method"]
    assert "fresh process" in figures["method"]


def test_the_script_in_benchmarks_is_the_module_command_line():
    completed = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
    for flag in ("--critics", "--memory-mode", "--no-check-finite", "--out", "--learners", "--no-train-default",
                 "--networks", "--batches", "--no-benchmark"):
        assert flag in completed.stdout
    assert "benchmarks/results/update_throughput.json" in completed.stdout


def test_matmul_flops_counts_the_products_of_one_update() -> None:
    a, b, c = torch.ones(4, 5), torch.ones(5, 6), torch.ones(3, 4, 5)
    assert bench.matmul_flops(lambda: (a @ b, torch.bmm(c, c.transpose(1, 2)))) == 2 * 4 * 5 * 6 + 2 * 3 * 4 * 5 * 4


def load_script_module():
    return load_script(SCRIPT, "update_throughput_script")


def test_script_parses_its_flags_and_the_modules() -> None:
    script = load_script_module()
    args = script.parse_args(["--quick", "--device", "cpu", "--learners", "ddpg", "feedback:critic=joint",
                              "--critics", "linear", "--networks", "HalfCheetah-v5:64-64", "--batches", "own", "64"])
    assert args.learners == ("ddpg", "feedback:critic=joint") and args.train_default and args.critics == ("linear",)
    assert args.networks == ("HalfCheetah-v5:64-64",) and args.batches == ("own", "64") and args.benchmark
    assert args.repeats == 1 and args.device == ("cpu",)  # the module's --quick applied
    assert isinstance(args.base(), bench.Args) and not isinstance(args.base(), script.Args)
    assert script.parse_args(["--no-train-default"]).train_default is False
    assert script.parse_args(["--no-benchmark"]).benchmark is False
    assert script.parse_args(["--quick"]).networks == ("Pendulum-v1:64-64",)  # smoke run: the first network only
    defaults = script.parse_args([])
    assert defaults.learners == ("feedback", "feedback:critic=joint", "ddpg") and defaults.batches == ("own",)
    assert defaults.networks == ("Pendulum-v1:64-64", "HalfCheetah-v5:64-64", "HalfCheetah-v5:400-300")
    for bad in (["--learners", "sgd"], ["--learners", "feedback:critc=joint"], ["--networks", "Pendulum-v1:64-x"],
                ["--batches", "0"], ["--no-benchmark", "--no-train-default"]):
        with pytest.raises(SystemExit):
            script.parse_args(bad)


TINY_ROWS = dict(hidden=(16,), critics=("linear",), critic_hidden=4, batch_size=32, device=("cpu",), threads=(1,),
                 buffer_fill=300, warmup=1, duration=0.0, min_updates=2, repeats=1, memory_updates=1,
                 memory_mode="in-process", out="")


def test_script_times_the_train_default_rows_against_both_references() -> None:
    script = load_script_module()
    args = script.Args(**TINY_ROWS, networks=("Pendulum-v1:16",), learners=("ddpg", "feedback:critic=joint", "es"),
                       batches=("own", "64"))
    results = script.run(args, log=lambda line: None)
    by_configuration: dict[str, list] = {}
    for setting in results["settings"]:
        by_configuration.setdefault(setting["configuration"], []).append(setting)
    assert set(by_configuration) == {script.BENCHMARK, script.TRAIN_DEFAULT}
    (benchmark,) = by_configuration[script.BENCHMARK]
    assert set(benchmark["methods"]) == {"sb3-ddpg", "local-linear"} and benchmark["batch_size"] == 32
    # feedback's own batch 256 (with its references), then 64: ddpg's own and feedback's fixed one
    rows = by_configuration[script.TRAIN_DEFAULT]
    assert [s["batch_size"] for s in rows] == [256, 64]
    assert all(s["network"] == "Pendulum-v1:16" and s["hidden"] == [16] for s in rows)
    joint = "local-feedback[critic=joint]"
    assert set(rows[0]["methods"]) == {"sb3-ddpg", "torch-ddpg", joint}
    assert set(rows[1]["methods"]) == {"sb3-ddpg", "torch-ddpg", "local-ddpg", joint}
    assert rows[0]["methods"][joint]["batch_source"] == "own default"
    assert rows[1]["methods"][joint]["batch_source"] == "fixed"
    assert rows[1]["methods"]["local-ddpg"]["batch_source"] == "own default"
    for setting in rows:
        methods = setting["methods"]
        assert methods["sb3-ddpg"]["batch_source"] == methods["torch-ddpg"]["batch_source"] == "reference"
        assert methods["sb3-ddpg"]["ratio_vs_sb3"] == pytest.approx(1.0)
        assert methods["torch-ddpg"]["ratio_vs_torch"] == pytest.approx(1.0)
        for figures in methods.values():
            assert figures["updates_per_s"] > 0 and figures["batch_size"] == setting["batch_size"]
            assert figures["transitions_per_s"] == pytest.approx(setting["batch_size"] * figures["updates_per_s"])
            assert figures["ratio_vs_torch"] == pytest.approx(
                figures["updates_per_s"] / methods["torch-ddpg"]["updates_per_s"])
            assert figures["matmul_gflop_per_update"] > 0 and figures["cpu_ms_per_update"] > 0
            assert figures["cpu_ratio_vs_torch"] == pytest.approx(
                methods["torch-ddpg"]["cpu_ms_per_update"] / figures["cpu_ms_per_update"])
    described = results["configurations"][script.TRAIN_DEFAULT]
    assert described["own_batch"] == {"local-ddpg": 64, joint: 256, "local-es": None}
    assert set(described["references"]) == {"sb3-ddpg", "torch-ddpg"}
    assert any("'es' is not off-policy" in note for note in results["notes"])
    table = script.format_table(results)
    assert "x torch" in table and "torch-ddpg" in table and "benchmark: cpu, 1 thread" in table


def test_script_quick_without_the_benchmark_rows(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    script = load_script_module()
    out = tmp_path / "references.json"
    results = script.main(["--quick", "--no-benchmark", "--device", "cpu", "--threads", "1", "--networks",
                           "Pendulum-v1:16", "--learners", "feedback", "--batches", "32", "--buffer-fill", "200",
                           "--out", str(out)])
    assert out.exists() and results["target_checks"] == [] and "load_average_1min_end" in results
    (setting,) = results["settings"]
    assert setting["configuration"] == script.TRAIN_DEFAULT and setting["batch_size"] == 32
    assert set(setting["methods"]) == {"sb3-ddpg", "torch-ddpg", "local-feedback"}
    printed = capsys.readouterr().out
    assert "local-feedback" in printed and "machine:" in printed and "configuration 'benchmark'" not in printed


def test_train_default_learner_is_the_one_the_trainer_builds() -> None:
    script = load_script_module()
    args = bench.Args(buffer_fill=10)
    network = script.NetworkSpec("Pendulum-v1", (8,))
    learner = script.build_train_default(args, network, script.LearnerVariant.parse("ddpg"), None, "cpu")
    assert (learner.critic_kind, learner.critic_context, learner.batch_size) == ("mlp", "task", 64)
    assert len(learner.buffer) == 10
    joint = script.build_train_default(args, network, script.LearnerVariant.parse("feedback:critic=joint"), 32, "cpu")
    assert (joint.name, joint.critic_kind, joint.batch_size) == ("feedback", "joint", 32)
    reference = script.build_reference(args, network, 32, "cpu")
    assert reference.config.hidden == (8,) and reference.config.batch_size == 32 and reference.buffer.size == 10
