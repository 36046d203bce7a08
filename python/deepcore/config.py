"""Build configuration report: deepcore.show_config() and `python -m deepcore info`."""
from __future__ import annotations

from . import _C


def config() -> dict:
    info = dict(_C._build_info())
    info["isa_detected"] = _C._detected_isa()
    info["isa_active"] = _C._active_isa()
    info["threads"] = _C.get_num_threads()
    if info["cuda"]:
        info["cuda_runtime"] = _C._cuda_runtime_version()
        info["cuda_driver"] = _C._cuda_driver_version()
        info["cuda_devices"] = [_C._cuda_device_name(d) for d in range(_C._cuda_device_count())]
    return info


def _version(v: int) -> str:
    """CUDA's 13000 as 13.0 (0: no driver)."""
    return f"{v // 1000}.{v % 1000 // 10}" if v else "none"


def show_config() -> str:
    """Prints (and returns) version, compiler, the SIMD ISA in use, threads and CUDA support."""
    c = config()
    lines = [
        f"deepcore {c['version']}",
        f"  compiler:      {c['compiler']}",
        f"  CPU kernels:   {c['isa_active']} (CPU supports {c['isa_detected']})",
        f"  threads:       {c['threads']} (OpenMP)",
        f"  CUDA:          {'built' if c['cuda'] else 'not built'}",
    ]
    if c["cuda"]:
        lines.append(f"  CUDA runtime:  {_version(c['cuda_runtime'])}, driver "
                     f"{_version(c['cuda_driver'])}")
        devices = c["cuda_devices"]
        lines.append(f"  CUDA devices:  {', '.join(devices) if devices else 'none'}")
        found, where = _C._cuda_cublas_where()
        lines.append(f"  cuBLAS:        {where if found else 'not found (matmuls on deepcore GEMM)'}"
                     f"; matmuls prefer {_C._cuda_blas()}")
    text = "\n".join(lines)
    print(text)
    return text
