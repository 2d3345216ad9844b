"""studies/memory.py: the plan and every run's command, parsed by the real CLI."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from neuron_env.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("memory_study", REPO / "studies" / "memory.py")
memory = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
sys.modules["memory_study"] = memory
spec.loader.exec_module(memory)  # type: ignore[union-attr]
grid = sys.modules["grid"]


@pytest.mark.parametrize("phase_name", list(memory.PHASES))
def test_every_run_command_of_every_phase_parses(phase_name: str, tmp_path: Path) -> None:
    phase = memory.PHASES[phase_name]
    assert phase.reference in phase.methods
    parser = build_parser()
    for method, seed in phase.planned():
        command = grid.run_command(memory.STUDY, phase, method, seed, tmp_path / "x", ["neuron-env"])
        assert "--hidden" in command or "--zoo-net" in command  # each method names its own network
        parser.parse_args(command[1:])  # exits (SystemExit) on a flag the command does not have


def test_the_floors_are_methods_and_the_main_phases_plan_five_seeds() -> None:
    assert set(memory.FLOORS.values()) <= set(memory.METHODS)
    planned = memory.PHASES["cartpole-novel"].planned()
    assert [s for m, s in planned if m == "eprop"] == [0, 1, 2, 3, 4]
    assert {m for m, _ in planned} == set(memory.PHASES["pendulum-novel"].methods)
