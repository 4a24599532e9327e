"""The machine a training run ran on, as far as it decides the numbers: recorded in run.json.

On one machine training is deterministic for a seed. On another CPU numpy's SIMD dispatch, OpenBLAS's kernel and
oneDNN's instruction set round otherwise, and 160 epochs carry the difference into another model (BENCHMARKS.md,
session 34). Two runs can only be expected to reproduce each other's folds where these entries agree.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata

# variables that choose numeric code paths (and thread counts, which change the order of sums)
ENVIRONMENT = ("ONEDNN_MAX_CPU_ISA", "TF_ENABLE_ONEDNN_OPTS", "NPY_DISABLE_CPU_FEATURES", "OPENBLAS_CORETYPE",
               "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
PACKAGES = ("numpy", "scipy", "librosa", "soxr", "tensorflow", "keras", "scikit-learn")


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def numpy_simd() -> list[str]:
    """numpy's dispatch targets in use: found on this CPU and not disabled by NPY_DISABLE_CPU_FEATURES."""
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:  # numpy 1.x
        from numpy.core import _multiarray_umath as umath
    return [name for name in umath.__cpu_dispatch__ if umath.__cpu_features__.get(name)]


def blas_kernels() -> list[str]:
    """The BLAS libraries loaded and the kernel each chose (OpenBLAS: e.g. SkylakeX or Haswell)."""
    from threadpoolctl import threadpool_info

    return [f"{info['internal_api']} {info.get('architecture') or ''}".strip() for info in threadpool_info()
            if info.get("user_api") == "blas"]


def machine_info() -> dict:
    """CPU, numeric dispatch, the variables that steer it, and package versions."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {"cpu": cpu_name(), "numpy_simd": numpy_simd(), "blas": blas_kernels(),
            "environment": {name: os.environ[name] for name in ENVIRONMENT if name in os.environ},
            "packages": versions}
