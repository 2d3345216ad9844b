"""Tasks and spaces: how a task's observations become input voltages, and output voltages its actions.

neuron-env drives any Gymnasium task whose spaces it can encode. The **encoder** ε maps a batch
of task observations to the voltages of the input neurons (``[E, ...] -> [E, obs_dim]``); the
**decoder** δ maps the output neurons' voltages to a batch of task actions
(``[E, act_dim] -> [E, *action shape]``). Both are chosen from the task's spaces by default and
can be overridden with the ``encoder=`` and ``decoder=`` arguments of ``NeuronVecEnv``,
``neuron_v0.parallel_env``/``env``, ``SubEnv`` and ``Topology.for_task``. Whatever the task's
spaces, the agents' own spaces stay ``Box`` per neuron: neurons always see and set voltages.

Observations
------------

| Observation space | Default encoder | Input neurons | Other ``encoder=`` |
|---|---|---|---|
| ``Box``, any shape | ``"identity"``: flattened as is | ``prod(shape)`` | ``"affine"``, ``"projection"`` |
| image (below) | ``"projection"``: fixed random, to 64 | 64 | ``"identity"``, a module |
| ``Discrete(n)`` | one-hot | ``n`` | ``"affine"`` |
| ``MultiDiscrete(nvec)`` | one-hot per dimension | ``sum(nvec)`` | ``"affine"`` |
| ``MultiBinary(n)`` | 0/1 as floats | ``n`` | ``"affine"`` |
| ``Tuple``, ``Dict`` of these | parts as above, concatenated | ``flatdim(space)`` | ``"affine"`` |
| ``Text``, ``Graph``, ``Sequence`` | ``TaskError`` naming ``encoder=`` | | an ``ObservationEncoder`` |

Any of these also takes a ``torch.nn.Module`` as ``encoder=`` (a frozen encoder, below).
An *image* is a ``uint8`` ``Box`` of shape ``H×W`` or ``H×W×C`` (``C`` ∈ 1, 3, 4, first or
last) with bounds 0 and 255. Parts of a ``Tuple``/``Dict`` are concatenated in
``gymnasium.spaces.flatten_space`` order (a ``Dict``'s keys as the space lists them).

``"identity"`` is Gymnasium's own ``gymnasium.spaces.flatten`` of every observation, batched
(one-hot for ``Discrete`` parts, as float32 voltages); ``"affine"`` maps each finite bound pair
``[low, high]`` of ``flatten_space(space)`` onto ``[-1, 1]`` and leaves unbounded dimensions
unchanged. Neither clips.

**Images.** By default an image observation ``x`` is flattened, scaled to ``[0, 1]`` (``x / 255``)
and multiplied by a fixed matrix ``W`` of shape ``[H·W·C, 64]`` with entries drawn from
``N(0, 1 / (H·W·C))`` by ``numpy.random.default_rng(0)``: the same matrix on every run, every
machine and every device (``RandomProjectionEncoder(space, size, seed)`` for another size or
seed). Any ``torch.nn.Module`` passed as ``encoder=`` is used instead: it receives the batch as a
float32 tensor ``[E, *obs_shape]`` (raw values: 0…255 for images, ``[E, H, W, C]`` as the task
returns them; permute and scale inside the module), or ``[E, flatdim]`` (the flattened
observation) for a non-``Box`` space, and returns ``[E, k]`` (or ``[E, ...]``, flattened) giving
``k`` input neurons. **The encoder is not a learner**: it is put in ``eval()`` mode and called
under ``torch.no_grad()``, so no learner's update ever reaches it. Train it beforehand (e.g. a
pretrained CNN), or freeze it at its random initialisation.

Actions
-------

| Action space | Default decoder | Output neurons | Other ``decoder=`` |
|---|---|---|---|
| ``Box``, any shape | ``"affine"`` (as before: range onto bounds) | ``prod(shape)`` | |
| ``Discrete(n)`` | ``"argmax"``: one neuron per action | ``n`` | ``"sample"`` |
| ``MultiDiscrete(nvec)`` | ``"argmax"`` per block of ``nvec[i]`` | ``sum(nvec)`` | ``"sample"`` |
| ``MultiBinary(n)`` | ``"threshold"`` at the range's middle | ``n`` | |
| anything else | ``TaskError`` naming ``decoder=`` | | an ``ActionDecoder`` |

``"affine"`` maps the output activation's range onto ``[low, high]`` and clips (unbounded:
identity). ``"threshold"`` sets 1 where a voltage exceeds the middle of the output activation's
range: 0 for tanh and identity, 0.5 for sigmoid, 0 for relu (an active neuron).
``"argmax"`` breaks ties towards the lowest action (as ``numpy.argmax`` and ``torch.argmax`` do).
``"sample"`` draws one uniform number per task copy (and block) from its own
``numpy.random.Generator``, seeded by the env's ``reset(seed=...)`` (``None`` keeps it going),
and picks the first action whose cumulative softmax probability (float64) exceeds it: the same
draws on every device, deterministic under a seed.

Writing your own
----------------

Subclass ``ObservationEncoder`` (set ``space``, ``size``, ``description``; implement
``__call__``, and ``as_tensors`` for a space ``batch_to_tensors`` cannot convert) or
``ActionDecoder`` (``size``, ``description``, ``__call__``) and pass an instance. Both have a
numpy twin, ``apply_numpy``, which the core uses on CPU (there a tick runs in numpy); its default
calls the torch version on CPU tensors.

Every function here is pure and batched over a leading axis ``E``: the flatten functions
(``flatten_batch`` in numpy, ``flatten_batch_tensor`` in torch) and the encoders' and decoders'
calls, which hold only frozen parameters (and, for ``"sample"``, the generator of its draws).

Where it lives
--------------

Every name below is importable from ``neuron_env.spaces``; the code sits in one module per job:
``neuron_env.spaces.flatten`` (batched flattening, image detection), ``neuron_env.spaces.affine``
(the affine maps of the ``"identity"``/``"affine"`` encoders and the Box decoder),
``neuron_env.spaces.encoders``, ``neuron_env.spaces.decoders`` and ``neuron_env.spaces.tasks``
(a task's spaces, ``task_interface``).
"""

from __future__ import annotations

from neuron_env.spaces.affine import AffineMap, affine_decoder_map, affine_encoder_map
from neuron_env.spaces.decoders import (
    DECODER_KINDS,
    ActionDecoder,
    AffineDecoder,
    CategoricalDecoder,
    DecoderSpec,
    ThresholdDecoder,
    make_action_decoder,
)
from neuron_env.spaces.encoders import (
    ENCODER_KINDS,
    IMAGE_PROJECTION_SEED,
    IMAGE_PROJECTION_SIZE,
    EncoderSpec,
    FlattenEncoder,
    ModuleEncoder,
    ObservationEncoder,
    RandomProjectionEncoder,
    make_observation_encoder,
)
from neuron_env.spaces.flatten import (
    FLAT_SPACES,
    batch_to_tensors,
    flatten_batch,
    flatten_batch_tensor,
    is_image_space,
    stack_observations,
    unsupported_part,
)
from neuron_env.spaces.tasks import TaskSpec, make_task_factory, probe_task_spaces, task_interface, task_name

__all__ = [
    # tasks
    "TaskSpec",
    "make_task_factory",
    "task_name",
    "probe_task_spaces",
    "task_interface",
    # encoders
    "EncoderSpec",
    "ENCODER_KINDS",
    "IMAGE_PROJECTION_SIZE",
    "IMAGE_PROJECTION_SEED",
    "ObservationEncoder",
    "FlattenEncoder",
    "RandomProjectionEncoder",
    "ModuleEncoder",
    "make_observation_encoder",
    # decoders
    "DecoderSpec",
    "DECODER_KINDS",
    "ActionDecoder",
    "AffineDecoder",
    "CategoricalDecoder",
    "ThresholdDecoder",
    "make_action_decoder",
    # flattening
    "FLAT_SPACES",
    "is_image_space",
    "unsupported_part",
    "stack_observations",
    "batch_to_tensors",
    "flatten_batch",
    "flatten_batch_tensor",
    # affine maps
    "AffineMap",
    "affine_encoder_map",
    "affine_decoder_map",
]
