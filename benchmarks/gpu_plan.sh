#!/usr/bin/env bash
# The GPU test plan of the kernels, one command:  bash benchmarks/gpu_plan.sh
#
# Needs the extension built with its CUDA kernels (pip install --no-build-isolation -e . on the GPU
# machine, ~3-4 min with MAX_JOBS=16; or a carried build); checks that first and stops otherwise.
#   1. pytest -m needs_cuda: every CUDA-parametrised test of the suite, including
#      tests/ops/test_cuda.py (small_sym_eig for every k in 1..64, float32/float64, B in {1, 5},
#      vs eigvalsh with residual, orthogonality and CPU/CUDA sign agreement; scaling and NaN;
#      Lanczos with >= 60 iterations; jacobian_spectrum for m in {1, 2, 54, 64}, n in {1, 257, 3072}
#      with zero/NaN/Inf/rank-1/degenerate/1e200-scaled samples and exact flag agreement;
#      power_iteration_update_ on non-contiguous buffers, n not a multiple of 256; pgd_step_ for
#      n in {1, 255, 1025, 3072, 4097, 150528}, B in {1, 7}, all four dtypes, L-inf/L2 with and
#      without momentum, per-sample eps/alpha, run twice (bitwise), transposed and channels_last
#      write-back, zero and NaN gradients, torch.use_deterministic_algorithms).
#   2. benchmarks/gpu_plan.py large: pgd_step_ at B in {65535, 65536} (every n up to 4097, dtype,
#      norm, momentum), n = 150528 at B = 4096, B * n > 2^31 in float16, small_sym_eig at
#      B = 2^20 + 3, each run twice for determinism and checked against the reference.
#   3. compute-sanitizer memcheck, racecheck, synccheck and initcheck (in parallel) on
#      benchmarks/gpu_plan.py sanitize, instrumenting only pyadvt's kernels.
# Estimated runtime on one H200: build check 10 s, step 1 ~60-90 s, step 2 ~45-60 s, step 3
# ~60-120 s (the four tools run concurrently; torch's CUDA start-up dominates) - about 3-4.5 min.
# Exit status: non-zero if any step failed (each step still runs); a summary is printed last.
set -uo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
stamp() { echo "== [$(( $(date +%s) - t0 ))s] $*"; }
status=0
declare -a summary

stamp "build check"
python - <<'PY' || { echo "FAILED: pyadvt's CUDA kernels are not built or no GPU is visible"; exit 2; }
import torch, pyadvt
info = pyadvt.build_info()
print({k: info[k] for k in ("torch", "torch_cuda", "kernels", "cuda_arch", "ops")})
assert info["extension_loaded"], info["load_error"]
assert "cuda" in info["kernels"], info["kernels"]
assert torch.cuda.is_available()
print(torch.cuda.get_device_name(0))
PY

stamp "1. pytest -m needs_cuda"
if timeout 240 python -m pytest -q -m needs_cuda -p no:cacheprovider tests/; then summary+=("pytest needs_cuda: ok")
else status=1; summary+=("pytest needs_cuda: FAILED"); fi

stamp "2. large batches"
if timeout 180 python benchmarks/gpu_plan.py large; then summary+=("large batches: ok")
else status=1; summary+=("large batches: FAILED"); fi

stamp "3. compute-sanitizer"
SAN=$(command -v compute-sanitizer || true)
for cand in "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer" /usr/local/cuda/bin/compute-sanitizer; do
  [ -z "$SAN" ] && [ -x "$cand" ] && SAN="$cand"
done
if [ -z "$SAN" ]; then
  status=1; summary+=("compute-sanitizer: NOT FOUND (install the CUDA toolkit's compute-sanitizer)")
else
  # only pyadvt's kernels are instrumented (their mangled names contain 'pyadvt')
  FILTER="--kernel-name kns=pyadvt"
  "$SAN" --help 2>/dev/null | grep -q -- "--kernel-name" || FILTER="--filter kns=pyadvt"
  logs=$(mktemp -d)
  pids=()
  for tool in memcheck racecheck synccheck initcheck; do
    extra=""
    [ "$tool" = memcheck ] && extra="--leak-check no"
    timeout 240 "$SAN" --tool "$tool" $FILTER $extra --error-exitcode 3 \
      python benchmarks/gpu_plan.py sanitize > "$logs/$tool.log" 2>&1 &
    pids+=("$!:$tool")
  done
  for entry in "${pids[@]}"; do
    pid=${entry%%:*}; tool=${entry#*:}
    if wait "$pid"; then summary+=("compute-sanitizer $tool: ok")
    else status=1; summary+=("compute-sanitizer $tool: FAILED (log below)"); tail -40 "$logs/$tool.log"; fi
    grep -E "ERROR SUMMARY" "$logs/$tool.log" | sed "s/^/  $tool: /"
  done
fi

stamp "summary"
printf '  %s\n' "${summary[@]}"
exit $status
