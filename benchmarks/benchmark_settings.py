"""What the throughput benchmarks are told to time: networks, learner variants and batch sizes.

``benchmarks/update_throughput.py`` and ``benchmarks/loop_throughput.py`` take the same three
kinds of value on their command lines; this module reads them.

Networks: ``TASK`` or ``TASK:H1-H2-…``
    A Gymnasium id and the hidden sizes of the actor (and of the references' critic):
    ``HalfCheetah-v5:64-64`` is 17-64-64-6 (the locomotion study's width),
    ``HalfCheetah-v5:400-300`` the DDPG paper's 17-400-300-6. A bare id takes the script's
    default for that task.

Learner variants: ``NAME`` or ``NAME:OPTION=VALUE,OPTION=VALUE``
    A learner of the registry (``neuron_env.agents.registry.LEARNERS``) with options set as
    ``neuron-env train --OPTION VALUE`` would set them: ``feedback:critic=joint`` is the
    locomotion study's ``--learner feedback --critic joint``. Values are read as ``int``,
    ``float``, ``true``/``false`` or ``none`` where they parse as one, else kept as text. A
    variant's method name in the tables and JSON is ``local-NAME`` or
    ``local-NAME[OPTION=VALUE,…]``.

Batch sizes: ``own`` or an integer
    ``own``: each learner at its own default batch (its config's ``batch_size``: ``feedback``
    256, ``ddpg`` 64); an integer: every learner at that batch. The references (SB3 DDPG and the
    plain-torch DDPG) are always timed at the batch of the learners they stand beside.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from neuron_env.agents.registry import LEARNERS, learner_class, learner_options

#: The ``--batches`` word for "each learner at its own default batch".
OWN_BATCH = "own"


@dataclass(frozen=True)
class NetworkSpec:
    """A task and the hidden sizes of the network timed on it."""

    task: str
    """Gymnasium id."""
    hidden: tuple[int, ...]
    """Hidden sizes (actor and references' critic)."""

    @classmethod
    def parse(cls, text: str, default_hidden: dict[str, tuple[int, ...]] | None = None,
              fallback_hidden: tuple[int, ...] = (64, 64)) -> NetworkSpec:
        """Read ``TASK`` or ``TASK:H1-H2-…``.

        Args:
            text: The spec.
            default_hidden: Hidden sizes of a bare ``TASK`` by task id.
            fallback_hidden: Hidden sizes of a bare ``TASK`` not in ``default_hidden``.

        Raises:
            ValueError: Naming the spec and the expected form.
        """
        task, _, sizes = text.partition(":")
        if not task:
            raise ValueError(f"network {text!r} has no task; write TASK or TASK:H1-H2, e.g. HalfCheetah-v5:64-64")
        if not sizes:
            return cls(task, tuple((default_hidden or {}).get(task, fallback_hidden)))
        try:
            hidden = tuple(int(size) for size in sizes.split("-"))
        except ValueError:
            hidden = ()
        if not hidden or min(hidden) < 1:
            raise ValueError(f"network {text!r}: hidden sizes {sizes!r} must be positive integers joined by '-', "
                             "e.g. HalfCheetah-v5:64-64")
        return cls(task, hidden)

    @property
    def hidden_label(self) -> str:
        """``"64-64"``."""
        return "-".join(str(size) for size in self.hidden)

    def __str__(self) -> str:
        return f"{self.task}:{self.hidden_label}"


def parse_value(text: str) -> Any:
    """An option value as the command line means it: ``int``, ``float``, ``bool``, ``None`` or the text."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


@dataclass(frozen=True)
class LearnerVariant:
    """A learner of the registry and the options set on it (the rest at the learner's defaults)."""

    learner: str
    """Registry name."""
    options: tuple[tuple[str, Any], ...] = ()
    """``(option, value)`` pairs, in the order given."""

    @classmethod
    def parse(cls, text: str) -> LearnerVariant:
        """Read ``NAME`` or ``NAME:OPTION=VALUE,…``.

        Raises:
            ValueError: On an unknown learner, an option it does not have, or a malformed pair.
        """
        name, _, rest = text.partition(":")
        if name not in LEARNERS:
            raise ValueError(f"learner {name!r} (in {text!r}) is unknown; choose one of {', '.join(LEARNERS)}")
        options: list[tuple[str, Any]] = []
        known = learner_options(name)
        for pair in filter(None, rest.split(",")):
            option, equals, value = pair.partition("=")
            option = option.strip().replace("-", "_")
            if not equals or not option:
                raise ValueError(f"learner variant {text!r}: {pair!r} must be OPTION=VALUE, e.g. feedback:critic=joint")
            if option not in known:
                raise ValueError(f"learner variant {text!r}: {name} has no option {option!r}; its options: "
                                 f"{', '.join(known)}")
            options.append((option, parse_value(value.strip())))
        return cls(name, tuple(options))

    @property
    def method(self) -> str:
        """Its name in tables and JSON: ``local-feedback`` or ``local-feedback[critic=joint]``."""
        if not self.options:
            return f"local-{self.learner}"
        return f"local-{self.learner}[{','.join(f'{k}={v}' for k, v in self.options)}]"

    @property
    def off_policy(self) -> bool:
        """Whether its ``update()`` can be called on a filled replay buffer."""
        return bool(learner_class(self.learner).off_policy)

    def default_batch(self) -> int | None:
        """Its own batch: the ``batch_size`` option if set, else its config's default (``None``: it has none)."""
        options = dict(self.options)
        if "batch_size" in options:
            return int(options["batch_size"])
        config = learner_class(self.learner).config_class()
        return int(config.batch_size) if hasattr(config, "batch_size") else None

    def options_at(self, batch_size: int | None, buffer_size: int | None) -> dict[str, Any]:
        """Its options, with ``batch_size``/``buffer_size`` set where given and the learner has them."""
        known = learner_options(self.learner)
        options = dict(self.options)
        for name, value in (("batch_size", batch_size), ("buffer_size", buffer_size)):
            if value is not None and name in known:
                options[name] = value
        return options


def parse_batches(values: tuple[str, ...] | list[str]) -> tuple[int | None, ...]:
    """``("own", "64")`` -> ``(None, 64)`` (``None``: each learner's own default).

    Raises:
        ValueError: On a value that is neither ``own`` nor a positive integer.
    """
    batches: list[int | None] = []
    for value in values:
        if str(value) == OWN_BATCH:
            batches.append(None)
            continue
        try:
            size = int(value)
        except ValueError:
            size = 0
        if size < 1:
            raise ValueError(f"batch {value!r} must be {OWN_BATCH!r} (each learner's own default) or an integer >= 1")
        batches.append(size)
    if not batches:
        raise ValueError(f"give at least one batch: {OWN_BATCH!r} or an integer")
    return tuple(dict.fromkeys(batches))


def batch_plan(variants: list[LearnerVariant], batches: tuple[int | None, ...], fallback: int = 64
               ) -> dict[int, list[tuple[LearnerVariant, str]]]:
    """Which variants run at which batch, and why: ``{batch: [(variant, "own default" | "fixed")]}``.

    Largest batch first; a variant whose own default equals a fixed batch is listed once (as the
    first of ``batches`` placed it). A learner without a batch (on-policy: ``es``, ``coagent``) joins
    the first group as ``"no batch"`` (the references beside it need one: ``fallback`` when it is
    alone).
    """
    plan: dict[int, list[tuple[LearnerVariant, str]]] = {}
    unbatched: list[LearnerVariant] = []
    for batch in batches:
        for variant in variants:
            size, source = (variant.default_batch(), "own default") if batch is None else (batch, "fixed")
            if variant.default_batch() is None:
                if variant not in unbatched:
                    unbatched.append(variant)
                continue
            members = plan.setdefault(int(size), [])  # type: ignore[arg-type]
            if all(existing != variant for existing, _ in members):
                members.append((variant, source))
    plan = dict(sorted(plan.items(), reverse=True))
    if unbatched:
        first = next(iter(plan), None)
        if first is None:
            first = next((b for b in batches if b is not None), fallback)
            plan[first] = []
        plan[first].extend((variant, "no batch") for variant in unbatched)
    return plan
