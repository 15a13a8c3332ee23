# Sourced by the comparison scripts: CPU (the model name) and FLAGS (the SIMD
# flags that decide headsup's kernels and PyTorch's), so that every figure
# they print names the machine it was measured on.
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
FLAGS=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512f|avx512bw|avx512dq|avx512vl|avx512_vnni|avx512_bf16|amx_tile|amx_bf16)$' | tr '\n' ' ' | sed 's/ $//' || true)
