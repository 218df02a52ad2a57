"""Job sizes AWS Batch can place: checked before anything is written, so a request that no
compute environment could ever run is refused with its reason instead of waiting forever in
RUNNABLE (or failing in SubmitJob on every redelivery).

Fargate (the CPU queue) takes only its published vCPU/memory combinations
(docs.aws.amazon.com/batch/latest/APIReference/API_ResourceRequirement.html). EC2 (the GPU
queue) takes whole vCPUs, and a job must fit one instance of the compute environment's types.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# vCPU -> the memory values (MiB) Fargate accepts with it.
FARGATE_MEMORY_MIB: dict[float, range] = {
    0.25: range(512, 2049, 512),  # of these only 512, 1024 and 2048 (_FARGATE_QUARTER)
    0.5: range(1024, 4097, 1024),
    1: range(2048, 8193, 1024),
    2: range(4096, 16385, 1024),
    4: range(8192, 30721, 1024),
    8: range(16384, 61441, 4096),
    16: range(32768, 122881, 8192),
}
_FARGATE_QUARTER = {512, 1024, 2048}


@dataclass(frozen=True)
class InstanceType:
    vcpus: int
    memory_mib: int
    gpus: int


# NVIDIA instance types a GPU compute environment may list (the template's default and kin).
GPU_INSTANCES: dict[str, InstanceType] = {
    "g4dn.xlarge": InstanceType(4, 16_384, 1),
    "g4dn.2xlarge": InstanceType(8, 32_768, 1),
    "g4dn.4xlarge": InstanceType(16, 65_536, 1),
    "g4dn.8xlarge": InstanceType(32, 131_072, 1),
    "g4dn.12xlarge": InstanceType(48, 196_608, 4),
    "g4dn.16xlarge": InstanceType(64, 262_144, 1),
    "g4dn.metal": InstanceType(96, 393_216, 8),
    "g5.xlarge": InstanceType(4, 16_384, 1),
    "g5.2xlarge": InstanceType(8, 32_768, 1),
    "g5.4xlarge": InstanceType(16, 65_536, 1),
    "g5.8xlarge": InstanceType(32, 131_072, 1),
    "g5.12xlarge": InstanceType(48, 196_608, 4),
    "g5.16xlarge": InstanceType(64, 262_144, 1),
    "g5.24xlarge": InstanceType(96, 393_216, 4),
    "g5.48xlarge": InstanceType(192, 786_432, 8),
    "g6.xlarge": InstanceType(4, 16_384, 1),
    "g6.2xlarge": InstanceType(8, 32_768, 1),
    "p3.2xlarge": InstanceType(8, 62_464, 1),
    "p3.8xlarge": InstanceType(32, 249_856, 4),
}
# ECS keeps part of an instance's memory for itself and the OS: a job asking for all of it
# never starts. About 5% covers the agent's reservation on these types.
USABLE_MEMORY = 0.95


def fargate_problem(vcpus: float, memory_mib: int) -> str | None:
    """Why Fargate cannot run this size, or None."""
    if vcpus not in FARGATE_MEMORY_MIB:
        choices = ", ".join(f"{v:g}" for v in FARGATE_MEMORY_MIB)
        return f"resources.vcpus: Fargate (compute cpu) runs {choices} vCPUs, not {vcpus:g}"
    allowed = _FARGATE_QUARTER if vcpus == 0.25 else set(FARGATE_MEMORY_MIB[vcpus])
    if memory_mib not in allowed:
        values = sorted(allowed)
        return (
            f"resources.memory_mib: Fargate gives {vcpus:g} vCPU {values[0]}-{values[-1]} MiB in steps of "
            f"{FARGATE_MEMORY_MIB[vcpus].step}, not {memory_mib}"
        )
    return None


def ec2_gpu_problem(
    vcpus: float, memory_mib: int, gpus: int, instance_types: Iterable[str], max_vcpus: int | None = None
) -> str | None:
    """Why the GPU compute environment (these instance types, at most ``max_vcpus``) cannot run
    this size, or None. Instance types this module does not know are given the benefit of the doubt."""
    if vcpus != int(vcpus) or vcpus < 1:
        return f"resources.vcpus: EC2 (compute gpu) runs whole vCPUs (1 or more), not {vcpus:g}"
    if gpus < 1:
        return "resources.gpus: a gpu run needs at least 1 GPU"
    if max_vcpus is not None and vcpus > max_vcpus:
        return f"resources.vcpus: the GPU compute environment has at most {max_vcpus} vCPUs, not {vcpus:g}"
    types = [t.strip() for t in instance_types if t.strip()]
    if not types or any(t not in GPU_INSTANCES for t in types):
        return None
    fits = [
        t
        for t in types
        if GPU_INSTANCES[t].vcpus >= vcpus
        and GPU_INSTANCES[t].memory_mib * USABLE_MEMORY >= memory_mib
        and GPU_INSTANCES[t].gpus >= gpus
    ]
    if fits:
        return None
    largest = max(types, key=lambda t: (GPU_INSTANCES[t].gpus, GPU_INSTANCES[t].vcpus, GPU_INSTANCES[t].memory_mib))
    big = GPU_INSTANCES[largest]
    return (
        f"resources: no instance type of the GPU compute environment ({', '.join(types)}) fits {vcpus:g} vCPUs, "
        f"{memory_mib} MiB and {gpus} GPUs (largest: {largest}, {big.vcpus} vCPUs, "
        f"{int(big.memory_mib * USABLE_MEMORY)} MiB usable, {big.gpus} GPUs)"
    )
