/*
 * resident.h - the resident set size of the calling process, for the tests and
 * benchmarks that measure memory (not only the live-node count).
 */
#ifndef MICROCRAD_TESTS_RESIDENT_H
#define MICROCRAD_TESTS_RESIDENT_H

#include <stdio.h>
#include <unistd.h>

/* Resident set size in bytes, or -1 where /proc/self/statm does not exist. */
static inline long long resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    long long pages_total, pages_resident;
    int ok = fscanf(f, "%lld %lld", &pages_total, &pages_resident) == 2;
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return ok && page > 0 ? pages_resident * page : -1;
}

#endif /* MICROCRAD_TESTS_RESIDENT_H */
