"""The checkpoint of a ``neuron-env train`` run: ``checkpoint.pt``, written atomically, read with its checks.

``save_checkpoint`` writes a payload to a temporary file in the run folder and moves it over
``checkpoint.pt`` (``os.replace``), so a crash mid-write leaves the previous checkpoint intact.
``load_checkpoint`` reads one back and refuses, in one line, a missing or unreadable file, another
format version, or a ``neuron-env baseline`` folder (naming the Stable-Baselines3 class that loads
its ``model.zip``). What a payload holds (learner, optimiser, noise, generators, counters, the
replay buffer with ``checkpoint_replay``, the network's weights) is ``Trainer.checkpoint_payload``'s
business (``neuron_env.agents.train``); ``config_from_checkpoint`` and ``weights_from_checkpoint``
read the two parts that ``neuron-env enjoy`` and ``render`` need.

Example::

    from neuron_env.agents.checkpoints import config_from_checkpoint, load_checkpoint

    payload = load_checkpoint("runs/pendulum")
    print(config_from_checkpoint(payload).task, payload["trainer"]["task_step"])
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from neuron_env.agents.errors import CheckpointError
from neuron_env.agents.train_config import TrainConfig

from neuron_env.run_output import atomic_write
from neuron_env.topology import NetworkWeights

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = 1


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically: a temporary file in the same folder, then ``os.replace``."""
    atomic_write(path, lambda stream: torch.save(payload, stream))


def _sb3_class(folder: Path) -> str:
    """How to load a ``neuron-env baseline`` folder: the class that saved its model.zip (config.json's ``algo``).

    ``"stable_baselines3's DQN.load"``, ``"sb3_contrib.RecurrentPPO.load"`` for ``recurrent-ppo``,
    every class when config.json does not say; plus SB3's ``VecNormalize.load`` when the folder
    holds the ``vecnormalize.pkl`` of a normalized run.
    """
    try:
        algo = json.loads((folder / "config.json").read_text()).get("algo")
    except (OSError, ValueError):
        algo = None
    classes = {"ddpg": "DDPG", "td3": "TD3", "dqn": "DQN", "ppo": "PPO"}
    if algo == "recurrent-ppo":
        loader = "sb3_contrib.RecurrentPPO.load"
    elif algo in classes:
        loader = f"stable_baselines3's {classes[algo]}.load"
    else:
        every = " / ".join(f"{name}.load" for name in classes.values())
        loader = f"stable_baselines3's {every} or sb3_contrib.RecurrentPPO.load"
    if (folder / "vecnormalize.pkl").is_file():
        loader += (", and its observation statistics with stable_baselines3's VecNormalize.load('vecnormalize.pkl', "
                   "venv) (then training = False, norm_reward = False)")
    return loader


def load_checkpoint(directory: str | Path) -> dict[str, Any]:
    """Read ``checkpoint.pt`` from a run directory (or a checkpoint file path).

    Raises:
        CheckpointError: If it is missing, unreadable or of another format version.
    """
    path = Path(directory)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        if (path.parent / "model.zip").is_file():
            raise CheckpointError(f"{str(path.parent)!r} is a `neuron-env baseline` folder (model.zip, no "
                                  f"{CHECKPOINT_NAME}): enjoy and render run local learners; load it with "
                                  f"{_sb3_class(path.parent)}")
        raise CheckpointError(f"no checkpoint at {str(path)!r}; pass the --out directory of a train run")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure is a bad checkpoint
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be read: {error}") from error
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {str(path)!r} has format {payload.get('format')!r}; "
                              f"this version reads format {CHECKPOINT_FORMAT}")
    return payload


def config_from_checkpoint(payload: dict[str, Any]) -> TrainConfig:
    """The ``TrainConfig`` stored in a checkpoint, of this version or an earlier one (``TrainConfig.from_record``)."""
    return TrainConfig.from_record(payload["config"])


def weights_from_checkpoint(payload: dict[str, Any]) -> NetworkWeights:
    """The network weights stored in a checkpoint."""
    return NetworkWeights(tuple(payload["weights"]["blocks"]), tuple(payload["weights"]["biases"]))

