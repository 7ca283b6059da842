// Function multi-versioning for the hot CPU loops of the kernels: GCC compiles
// AVX-512/AVX2 clones next to the baseline x86-64 code and picks one at load time, so the wheel
// stays portable (used by the pgd, linalg and hessian CPU kernels).
#pragma once

#ifndef PYADVT_TARGET_CLONES
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define PYADVT_TARGET_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define PYADVT_TARGET_CLONES
#endif
#endif
