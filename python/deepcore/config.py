"""Build configuration report: deepcore.show_config() and `python -m deepcore info`."""
from __future__ import annotations

from . import _C


def config() -> dict:
    info = dict(_C._build_info())
    info["isa_detected"] = _C._detected_isa()
    info["isa_active"] = _C._active_isa()
    info["threads"] = _C.get_num_threads()
    return info


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
    text = "\n".join(lines)
    print(text)
    return text
