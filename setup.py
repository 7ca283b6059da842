"""Build pyadvt and its C++/CUDA extension ``pyadvt._C``.

Switches (environment variables):

* ``PYADVT_NO_CUDA=1``   never build CUDA kernels.
* ``FORCE_CUDA=1``       build CUDA kernels even when torch reports no CUDA or no GPU is visible.
* ``TORCH_CUDA_ARCH_LIST`` GPU architectures; defaults to ``9.0`` when no GPU is visible.
* ``MAX_JOBS``           parallel compile jobs (ninja).
* ``PYADVT_DEBUG=1``     ``-O0 -g`` instead of ``-O3``.

The CUDA toolkit on some machines lacks the cuBLAS/cuSPARSE headers that
``ATen/cuda/CUDAContext.h`` includes; the pip wheels ``nvidia-*`` ship them under
``site-packages/nvidia/<cuXX>/include`` so that directory is added to the include path
when present.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import sys

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _nvidia_include_dirs() -> list[str]:
    """Header folders of the pip ``nvidia-*`` packages (cuBLAS, cuSPARSE, cuSOLVER ...)."""
    dirs = []
    for entry in sys.path:
        base = os.path.join(entry, "nvidia")
        if not os.path.isdir(base):
            continue
        dirs += sorted(glob.glob(os.path.join(base, "cu*", "include")))
        dirs += sorted(glob.glob(os.path.join(base, "*", "include")))
    seen, out = set(), []
    for d in dirs:
        if d not in seen and os.path.isdir(d):
            seen.add(d)
            out.append(d)
    return out


def _default_cuda_home() -> None:
    """Point CUDA_HOME at the toolkit rather than at the folder of an ``nvcc`` symlink.

    torch derives CUDA_HOME from ``which nvcc``; with ``/usr/local/bin/nvcc`` that is
    ``/usr/local``, which has no ``lib64/libcudart.so``.
    """
    if os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH"):
        return
    nvcc = shutil.which("nvcc")
    if nvcc:
        toolkit = os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))
        if glob.glob(os.path.join(toolkit, "lib*", "libcudart.so*")):
            os.environ["CUDA_HOME"] = toolkit
            return
    if os.path.exists("/usr/local/cuda/bin/nvcc"):
        os.environ["CUDA_HOME"] = "/usr/local/cuda"


def _extension_modules():
    _default_cuda_home()
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

    sources = sorted(glob.glob(os.path.join("csrc", "*.cpp")))
    sources += sorted(p for p in glob.glob(os.path.join("csrc", "*", "*.cpp")) if "native_tests" not in p)
    sources += sorted(glob.glob(os.path.join("csrc", "*", "cpu", "*.cpp")))
    cuda_sources = sorted(glob.glob(os.path.join("csrc", "*", "cuda", "*.cu")))

    nvcc = shutil.which("nvcc") or (CUDA_HOME and os.path.join(CUDA_HOME, "bin", "nvcc"))
    have_nvcc = bool(nvcc and os.path.exists(nvcc))
    if _env_flag("PYADVT_NO_CUDA"):
        with_cuda, why = False, "PYADVT_NO_CUDA=1"
    elif _env_flag("FORCE_CUDA"):
        with_cuda, why = True, "FORCE_CUDA=1"
    elif torch.version.cuda is not None and have_nvcc and CUDA_HOME is not None:
        with_cuda, why = True, f"torch has CUDA {torch.version.cuda} and nvcc found at {nvcc}"
    else:
        with_cuda = False
        why = f"torch.version.cuda={torch.version.cuda}, nvcc={'found' if have_nvcc else 'missing'}"

    if with_cuda and not os.environ.get("TORCH_CUDA_ARCH_LIST"):
        if not torch.cuda.is_available():
            os.environ["TORCH_CUDA_ARCH_LIST"] = "9.0"

    debug = _env_flag("PYADVT_DEBUG")
    opt = ["-O0", "-g"] if debug else ["-O3"]
    cxx_flags = list(opt)
    if sys.platform.startswith("linux"):
        cxx_flags += ["-fopenmp"]
    nvcc_flags = opt + ["--expt-relaxed-constexpr", "-lineinfo"]
    include_dirs = [os.path.join(ROOT, "csrc", "include"), os.path.join(ROOT, "csrc")]
    define_macros = [("TORCH_EXTENSION_NAME", "_C")]
    extra_link = ["-fopenmp"] if sys.platform.startswith("linux") else []

    if with_cuda:
        include_dirs += _nvidia_include_dirs()
        define_macros.append(("PYADVT_WITH_CUDA", "1"))
        ext_cls = CUDAExtension
        all_sources = sources + cuda_sources
        extra = {"cxx": cxx_flags, "nvcc": nvcc_flags}
    else:
        ext_cls = CppExtension
        all_sources = sources
        extra = {"cxx": cxx_flags}

    config = {
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "with_cuda": with_cuda,
        "why": why,
        "cuda_home": CUDA_HOME,
        "arch_list": os.environ.get("TORCH_CUDA_ARCH_LIST") if with_cuda else None,
        "max_jobs": os.environ.get("MAX_JOBS"),
        "cxx_flags": cxx_flags,
        "nvcc_flags": nvcc_flags if with_cuda else None,
        "cxx": os.environ.get("CXX", "c++"),
        "sources": all_sources,
    }
    print("pyadvt build configuration:\n" + json.dumps(config, indent=2), flush=True)
    # Recorded into the module so pyadvt.build_info() can report it.
    define_macros.append(("PYADVT_BUILD_FLAGS", json.dumps(" ".join(cxx_flags))))
    define_macros.append(("PYADVT_CUDA_ARCH", json.dumps(config["arch_list"] or "")))

    ext = ext_cls(
        name="pyadvt._C",
        sources=all_sources,
        include_dirs=include_dirs,
        define_macros=define_macros,
        extra_compile_args=extra,
        extra_link_args=extra_link,
    )
    return [ext], {"build_ext": BuildExtension.with_options(use_ninja=True)}


ext_modules, cmdclass = _extension_modules()

setup(
    packages=find_packages(include=["pyadvt", "pyadvt.*"]),
    ext_modules=ext_modules,
    cmdclass=cmdclass,
)
