#include "nst_cpu.h"

#include <stdio.h>
#include <stdlib.h>

int nst_cpu_supported(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 1;
#endif
}

void nst_require_supported_cpu(void) {
    if (nst_cpu_supported()) return;
    fprintf(stderr, "Error: this CPU lacks AVX2 or FMA, which this build of the trainer needs "
                    "(x86-64 CPUs since 2013 have both); rebuild without -target-cpu haswell in "
                    "Package.swift to run here\n");
    exit(1);
}
