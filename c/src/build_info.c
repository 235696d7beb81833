/*
 * build_info.c - what this copy of the library is: its version, and how it was
 * compiled (sanitizers, plain malloc), for callers that adapt to the build.
 */
#include "internal.h"

/* GCC announces sanitizers with __SANITIZE_*__, Clang with __has_feature. */
#if defined(__SANITIZE_ADDRESS__)
#define MC_HAS_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define MC_HAS_TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MC_HAS_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define MC_HAS_TSAN 1
#endif
#endif

/* The build defines the version from CMakeLists.txt; a bare compile says so. */
#ifndef MICROCRAD_VERSION_STRING
#define MICROCRAD_VERSION_STRING "0.0.0-unversioned"
#endif

const char *microcrad_version(void) { return MICROCRAD_VERSION_STRING; }

unsigned microcrad_build_features(void)
{
    unsigned features = 0;
#if defined(MC_HAS_ASAN)
    features |= MICROCRAD_BUILD_ASAN;
#endif
#if defined(MC_HAS_TSAN)
    features |= MICROCRAD_BUILD_TSAN;
#endif
#if defined(MICROCRAD_UBSAN)
    features |= MICROCRAD_BUILD_UBSAN;
#endif
    /* Plain malloc by build, or chosen at load time because a tool is watching. */
    if (mc_pool_bypassed())
        features |= MICROCRAD_BUILD_VALGRIND;
    return features;
}
