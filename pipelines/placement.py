"""Where the steps of a pipeline run: the machinery both preset tables share.

`Machine` is the hardware of one step on Vertex AI, `StageTraining` one training stage's preset
and overrides, and `TaskPlacement` puts each task of a compiled pipeline on its image and machine.
The two preset tables (`pipelines.presets` for fingerspelling, `pipelines.signs_presets` for
isolated signs) import this module; `pipelines.presets` also holds the lookup
(`preset(name, pipeline)`) and imports the isolated-signs table, so the tables never import each
other both ways.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from signpipe.errors import ConfigError

# Training steps resume from their last checkpoint, so on Vertex a preempted or crashed VM costs one
# retry. Locally a failure is a bug or a user error: retrying would only repeat it.
TRAINING_IMAGE_STEPS = ("pretrain", "finetune", "distill")
TRAINING_RETRIES = 2
_CPU_PATTERN = re.compile(r"^([0-9]*[.])?[0-9]+m?$")
_MEMORY_PATTERN = re.compile(r"^[0-9]+(E|Ei|P|Pi|T|Ti|G|Gi|M|Mi|K|Ki)?$")


@dataclasses.dataclass(frozen=True)
class Machine:
    """The hardware of one step on Vertex AI.

    `cpu`/`memory` size the step's VM (Vertex picks the machine type from them);
    `accelerator_type` is a Vertex accelerator enum name (`NVIDIA_L4`).
    `machine_type` asks for an exact machine, which only a custom job can: a step with one runs as
    a launcher step that submits and awaits the job. A TPU VM machine type (`ct5lp-hightpu-4t`)
    takes a `tpu_topology` from the ones Vertex AI documents for it and no accelerator fields; its
    slice runs as one replica, the topology deciding the number of VMs (`hosts`). `replica_count`
    is for other machine types (a primary replica and workers).
    """

    cpu: str = "4"
    memory: str = "16G"
    accelerator_type: str = ""
    accelerator_count: int = 0
    machine_type: str = ""
    tpu_topology: str = ""
    replica_count: int = 1

    def __post_init__(self) -> None:
        problems = []
        if not _CPU_PATTERN.match(self.cpu):
            problems.append(f"cpu {self.cpu!r}: expected a number of cores, or millicores like '500m'")
        if not _MEMORY_PATTERN.match(self.memory):
            problems.append(f"memory {self.memory!r}: expected a size like '16G'")
        if bool(self.accelerator_type) != (self.accelerator_count > 0):
            problems.append(
                f"accelerator {self.accelerator_type!r} x {self.accelerator_count}: "
                "expected both a type and a positive count, or neither"
            )
        if self.replica_count < 1:
            problems.append(f"replica_count must be at least 1, got {self.replica_count}")
        if (self.tpu_topology or self.replica_count > 1) and not self.machine_type:
            problems.append("tpu_topology and replica_count > 1 need a machine_type (they only exist in a custom job)")
        if self.accelerator_type.upper().startswith("TPU") and not self.machine_type:
            problems.append(f"{self.accelerator_type}: a TPU needs its machine_type (e.g. ct5lp-hightpu-4t) and topology")
        if self.machine_type:
            from signpipe.custom_jobs import tpu_vm_problems

            problems += tpu_vm_problems(dataclasses.asdict(self))
        if problems:
            raise ConfigError("machine: " + "; ".join(problems))

    @property
    def custom_job(self) -> bool:
        """Whether the step must run as a Vertex custom job rather than as a plain pipeline step."""
        return bool(self.machine_type)

    @property
    def accelerator(self) -> str:
        """The accelerator the step computes on (which image family runs it): its `accelerator_type`,
        or the one its TPU VM machine type bundles (`TPU_V5_LITEPOD` for ct5lp-*)."""
        from signpipe.custom_jobs import TPU_VM_MACHINE_TYPES

        tpu = TPU_VM_MACHINE_TYPES.get(self.machine_type)
        return tpu.accelerator if tpu is not None else self.accelerator_type

    @property
    def hosts(self) -> int:
        """How many VMs run the step: the slice's VMs for a TPU VM machine type, else the replicas."""
        from signpipe.custom_jobs import TPU_VM_MACHINE_TYPES, tpu_vm_hosts

        if self.machine_type in TPU_VM_MACHINE_TYPES:
            return tpu_vm_hosts(self.machine_type, self.tpu_topology)
        return self.replica_count

    def worker_pool_specs(self, image_uri: str, command: list[str], args: list[str]) -> list[dict[str, Any]]:
        """The custom job's worker pools (`WorkerPoolSpec` fields, `signpipe.custom_jobs.worker_pool_specs`):
        a TPU slice as one pool of one replica, other machines as the primary replica and then the
        other replicas as a second pool."""
        from signpipe.custom_jobs import worker_pool_specs

        return worker_pool_specs(dataclasses.asdict(self), image_uri, command, args)


@dataclasses.dataclass(frozen=True)
class StageTraining:
    """One training stage's run config: a training preset name and `key=value` overrides on top."""

    preset: str
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)


class TaskPlacement:
    """Puts each task of a pipeline on its image and machine, the one place both are decided.

    For the "local" target it changes nothing: the subprocess runner uses this interpreter and
    ignores machines. For "vertex" a step gets the image of its family
    (`signpipe.images.family_for_step`, which also refuses an accelerator on a step that cannot
    use one) and its preset machine as the step's own CPU, memory and accelerator requests;
    training steps get retries (they resume from their checkpoints).
    """

    def __init__(self, preset: Any, target: str, images: Mapping[str, str] | None = None):
        if target not in ("local", "vertex"):
            raise ConfigError(f"unknown pipeline target {target!r} (expected local or vertex)")
        if target == "vertex":
            from signpipe.images import FAMILIES

            missing = [name for name in FAMILIES if name != "video" and name not in (images or {})]
            if missing:
                raise ConfigError(f"compiling for Vertex AI needs the image of every family; missing {', '.join(missing)}")
        self.preset, self.target, self.images = preset, target, dict(images or {})

    def _image(self, step: str, accelerator: str) -> str:
        from signpipe.images import family_for_step

        return self.images[family_for_step(self.preset.image_step(step), accelerator or None).name]

    def place(self, task: Any, step: str) -> Any:
        """`task` on the image and machine of `step`; returns the task for chaining."""
        if self.target == "local":
            return task
        machine = self.preset.machine(step)
        if machine.custom_job:
            raise ConfigError(
                f"preset {self.preset.name!r}: step {step!r} asks for machine type {machine.machine_type}, which only a "
                "custom job provides; only pretraining has a custom-job form (pipelines.fingerspelling)"
            )
        task.set_container_image(self._image(step, machine.accelerator))
        task.set_cpu_limit(machine.cpu).set_memory_limit(machine.memory)
        if machine.accelerator_type:
            task.set_accelerator_type(machine.accelerator_type).set_accelerator_limit(machine.accelerator_count)
        if self.preset.image_step(step) in TRAINING_IMAGE_STEPS:
            task.set_retry(TRAINING_RETRIES)
        return task

    def place_launcher(self, task: Any, step: str) -> Any:
        """The launcher of a custom-job step: the CPU image on the default machine; it only
        submits the job and waits."""
        launcher = self.preset.machines.get("default", Machine())
        task.set_container_image(self.images["cpu"])
        task.set_cpu_limit(launcher.cpu).set_memory_limit(launcher.memory)
        return task.set_retry(TRAINING_RETRIES)

    def training_image(self, step: str) -> str:
        """The image the custom job of `step` runs (its accelerator's family)."""
        return self._image(step, self.preset.machine(step).accelerator)

    def machine_dict(self, step: str) -> dict[str, Any]:
        return dataclasses.asdict(self.preset.machine(step))
