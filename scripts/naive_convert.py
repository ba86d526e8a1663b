"""Baseline for the benchmark only: the obvious script a user would write.

Loads every tensor of a tf_model.h5 into memory, transposes the Dense kernels, and writes them
with safetensors' save_file. It checks nothing; tf2pt must be about as fast while holding one
block in memory instead of the whole model.
"""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
from safetensors.numpy import save_file


def main(src: Path, out: Path) -> None:
    tensors = {}
    with h5py.File(src / "tf_model.h5", "r") as h5:
        for group in h5.attrs["layer_names"]:
            for name in h5[group].attrs["weight_names"]:
                array = h5[group][name][()]
                key = name.split("/", 1)[1].removesuffix(":0").replace("/", ".")
                tensors[key] = np.ascontiguousarray(array.T) if name.endswith("kernel:0") else array
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
