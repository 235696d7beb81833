/*
 * Linked into every lab program (the shipped labs, their fixed twins and the
 * students' copies; see CMakeLists.txt), this file lets tools/labs.py observe a run
 * without changing the lab's own code:
 *
 *   MICROCRAD_LABS_REPORT=FILE           at exit, writes the number of nodes still
 *                                        alive and of allocations made to FILE
 *                                        ("live_values N" and "allocations N");
 *   MICROCRAD_LABS_FAIL_ALLOCATION=N     before main, makes the program's N-th
 *                                        allocation fail (microcrad_fail_allocation),
 *                                        so that its error paths can be tested.
 *
 * Neither variable set: the program runs as if this file were not there.
 */
#include <microcrad.h>

#include <stdio.h>
#include <stdlib.h>

/* Runs before main: the library's own constructors have run by then (it is loaded
 * first), and the failure countdown is per thread, so it applies to main's thread. */
__attribute__((constructor)) static void lab_harness_fail_allocation(void)
{
    const char *n = getenv("MICROCRAD_LABS_FAIL_ALLOCATION");
    if (n && *n)
        microcrad_fail_allocation(strtoll(n, NULL, 10));
}

/* Runs after main has returned (or exit was called), before the library unloads. */
__attribute__((destructor)) static void lab_harness_report(void)
{
    const char *path = getenv("MICROCRAD_LABS_REPORT");
    if (!path || !*path)
        return;
    FILE *file = fopen(path, "w");
    if (!file)
        return;
    fprintf(file, "live_values %lld\nallocations %lld\n",
            (long long)microcrad_live_values(), (long long)microcrad_allocation_count());
    fclose(file);
}
