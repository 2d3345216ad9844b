"""Turn the committed result JSONs into the Markdown tables that ``docs/results.md`` includes.

Nothing here measures anything: it reads the JSON each experiment or benchmark wrote and formats
it, so the page shows exactly the committed figures. Rerun after regenerating a result::

    python studies/tables.py

Inputs (each written by the command named on the results page): ``e1/subcritic_correlation.json``,
``e1-mountaincar/subcritic_correlation.json``,
``e2/gradient_agreement.json`` and ``e3/update_throughput_*.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

from neuron_env.run_output import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results"  # the committed result JSONs and tables (the code lives in studies/)


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def e1_table(folder: str = "e1") -> str:
    """Per-layer means of E1 (sub-critic vs global critic) from ``folder/subcritic_correlation.json``."""
    data = _load(RESULTS / folder / "subcritic_correlation.json")
    config = data["config"]
    lines = [
        f"Task {config['task']}, DDPG {config['steps']} steps (final eval "
        f"{data['ddpg']['final_eval_return_mean']:.1f}), protocol `{data['protocol']}`, "
        f"{data['subcritic_updates']} sub-critic updates, {config['neurons_per_layer']} neurons per layer, "
        f"{data['held_out_samples']} held-out samples.",
        "",
        "| layer | r(Qⁿ, Q^μ) mean | r(∂Qⁿ/∂aⁿ, ∂Q^μ/∂aⁿ) mean | derivative sign agreement |",
        "|---|---|---|---|",
    ]
    for name, layer in data["layers"].items():
        lines.append(f"| {name} | {layer['value_r_mean']:.3f} | {layer['derivative_r_mean']:.3f} | "
                     f"{layer['derivative_sign_agreement_mean']:.2f} |")
    overall = data["overall"]
    lines.append(f"| all | {overall['value_r_mean']:.3f} | {overall['derivative_r_mean']:.3f} | "
                 f"{overall['derivative_sign_agreement_mean']:.2f} |")
    return "\n".join(lines)


def e2_table() -> str:
    """Per-layer cosine / sign agreement of E2 for every (critic, data) run."""
    data = _load(RESULTS / "e2" / "gradient_agreement.json")
    config = data["config"]
    runs = data["runs"]
    layers = list(runs[0]["layers"])
    lines = [
        f"Task {config['task']}, DDPG {config['steps']} steps (final eval "
        f"{data['ddpg']['final_eval_return_mean']:.1f}), {config['local_updates']} local critic updates, "
        f"critic context `{config['critic_context']}`, {data['held_out_samples']} held-out states. "
        "Cells: cosine mean / sign agreement mean (chance: 0 / 0.5).",
        "",
        "| critic, data | " + " | ".join(layers) + " | all neurons | ∂Q/∂a sign agreement |",
        "|---" * (len(layers) + 3) + "|",
    ]
    for run in runs:
        cells = [f"{run['layers'][n]['cosine_mean']:.2f} / {run['layers'][n]['sign_agreement_mean']:.2f}"
                 for n in layers]
        overall = run["overall"]
        lines.append(f"| {run['critic']}, {run['data']} | " + " | ".join(cells)
                     + f" | {overall['cosine_mean']:.2f} / {overall['sign_agreement_mean']:.2f}"
                     + f" | {overall['slope_sign_agreement_mean']:.2f} |")
    return "\n".join(lines)


def e3_table() -> str:
    """Updates/s of every method and setting, and the ratio to SB3 DDPG."""
    lines = ["| machine (date) | setting | method | updates/s | transitions/s | × SB3 DDPG | GFLOP/update |",
             "|---|---|---|---|---|---|---|"]
    memory = None
    for path in sorted((RESULTS / "e3").glob("update_throughput*.json")):
        data = _load(path)
        memory = memory or data.get("memory")
        machine = data.get("machine", {})
        label = f"{machine.get('cpu_count', '?')} CPUs" + (f", {machine['cuda']}" if machine.get("cuda") else "")
        label += f" ({str(machine.get('date', '?'))[:10]})"
        for setting in data["settings"]:
            for method, row in setting["methods"].items():
                flops = row.get("matmul_gflop_per_update")
                lines.append(f"| {label} | {setting['label']} | {method} | {row['updates_per_s']:.1f} | "
                             f"{row['transitions_per_s']:,.0f} | {row['ratio_vs_sb3']:.2f} | "
                             f"{'n/a' if flops is None else f'{flops:.3f}'} |")
    if memory:
        lines += ["", f"Replay memory for 10^6 transitions: local {memory['local_replay_bytes'] / 1e9:.2f} GB "
                      f"({memory['neurons']} neurons), SB3 DDPG {memory['sb3_replay_bytes'] / 1e9:.2f} GB "
                      f"({memory['method']})."]
    return "\n".join(lines)


def main() -> None:
    """Write every table next to its JSON."""
    outputs = {RESULTS / "e1" / "table.md": e1_table(),
               RESULTS / "e1-mountaincar" / "table.md": e1_table("e1-mountaincar"),
               RESULTS / "e2" / "table.md": e2_table(),
               RESULTS / "e3" / "table.md": e3_table()}
    for path, text in outputs.items():
        atomic_write_text(path, text + "\n")
        print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
