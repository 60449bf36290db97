"""Process-group setup for running the same script alone or under torchrun."""

from __future__ import annotations

import dataclasses
import os

import torch
import torch.distributed as dist


@dataclasses.dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistributedContext:
    """Join the process group that torchrun describes in the environment, if any.

    gloo serves CPU tensors, nccl CUDA ones; each process uses the GPU of its local rank.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext()
    context = DistributedContext(
        rank=int(os.environ["RANK"]),
        world_size=world_size,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(context.local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return context


def all_reduce_sum(values: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """Sum a tensor over all ranks (a no-op when running alone)."""
    if context.enabled:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def broadcast_buffers(module: torch.nn.Module, context: DistributedContext) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

    DDP syncs buffers at the start of each forward, so after the last training step each rank still
    holds statistics of its own batch; evaluation must not see that difference.
    """
    if context.enabled:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def shutdown(context: DistributedContext) -> None:
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()
