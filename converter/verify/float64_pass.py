"""The converted model's float64 run, computed on the model already loaded for the candidate run.

The float64 run measures the candidate's rounding noise (gate.py). Loading the model a second
time in float64 would hold twice its float32 size at once; instead each module's own parameters
are widened to float64 just before that module runs and put back just after, so memory holds the
model once plus one module in float64 (widening float32, float16 or bfloat16 to float64 is
exact, and so is putting the original tensors back). An embedding table is never widened: the
rows it looks up are, which is the same values for a fraction of the memory. A linear layer
larger than `CHUNK_BYTES` in float64 (a masked-LM decoder over a large vocabulary) computes its
outputs in blocks of rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

CHUNK_BYTES = 64 * 2**20  # the most float64 weight one linear layer holds at a time


def _floating(tensor: Any) -> bool:
    return tensor is not None and tensor.is_floating_point()


def _widen_own_tensors(torch, module) -> dict[str, Any]:
    """Replace the module's own floating parameters and buffers by float64 copies; returns the
    originals to put back."""
    kept = {}
    for store in (module._parameters, module._buffers):
        for name, tensor in store.items():
            if _floating(tensor) and tensor.dtype != torch.float64:
                kept[name] = (store, tensor)
                store[name] = tensor.detach().to(torch.float64)
    return kept


def _chunked_linear(torch, module):
    """forward for a large nn.Linear: float64 output in blocks of output rows."""
    weight, bias = module.weight, module.bias
    rows = max(1, CHUNK_BYTES // (8 * weight.shape[1]))

    def forward(x):
        x = x.to(torch.float64)
        parts = []
        for start in range(0, weight.shape[0], rows):
            block = weight[start : start + rows].to(torch.float64)
            part = x @ block.T
            if bias is not None:
                part += bias[start : start + rows].to(torch.float64)
            parts.append(part)
        return torch.cat(parts, dim=-1)

    return forward


@contextlib.contextmanager
def float64_pass(model) -> Iterator[None]:
    """Within this block, `model(...)` computes in float64; its parameters keep their dtype."""
    import torch

    handles = []
    chunked = []
    kept: dict[int, dict[str, Any]] = {}

    def widen(module, _args):
        kept[id(module)] = _widen_own_tensors(torch, module)

    def restore(module, _args, _output):
        for name, (store, tensor) in kept.pop(id(module), {}).items():
            store[name] = tensor

    def widen_output(_module, _args, output):
        return output.to(torch.float64)

    for module in model.modules():
        own = [t for t in (*module._parameters.values(), *module._buffers.values()) if _floating(t)]
        if not own:
            continue
        if isinstance(module, torch.nn.Embedding):
            handles.append(module.register_forward_hook(widen_output))
        elif isinstance(module, torch.nn.Linear) and module.weight.numel() * 8 > CHUNK_BYTES:
            module.forward = _chunked_linear(torch, module)
            chunked.append(module)
        else:
            handles.append(module.register_forward_pre_hook(widen))
            handles.append(module.register_forward_hook(restore))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        for module in chunked:
            del module.forward  # the class's own forward again
        for entries in kept.values():  # a forward that raised left these widened
            for name, (store, tensor) in entries.items():
                store[name] = tensor
