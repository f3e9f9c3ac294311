#ifndef NST_CPU_H
#define NST_CPU_H

// NSTModel is compiled for AVX2 + FMA on x86-64 (Package.swift). This file is compiled for the
// generic target, so the executables can call it before any NSTModel code runs and stop with a
// message instead of dying on an illegal instruction.

/// Returns 1 when the CPU runs the code NSTModel was compiled for (always on other architectures).
int nst_cpu_supported(void);

/// If the CPU is not supported: prints one line naming what is missing to standard error and
/// exits with status 1.
void nst_require_supported_cpu(void);

#endif
