/*
 * check.h - the small assertion kit shared by the C tests.
 *
 * A failed check prints file:line and the values involved on stderr and is counted;
 * the test carries on, so one run reports every failure. main() ends with
 * `return check_summary();`, which prints the totals and is non-zero when anything
 * failed, so CTest marks the test as failed.
 *
 * Floating-point comparisons treat IEEE special values as values: NaN equals NaN, and
 * an infinity equals only the infinity of the same sign. That lets a test state
 * "log(0) is -inf" or "0/0 is nan" with the same macro as an ordinary number.
 */
#ifndef MICROCRAD_TESTS_CHECK_H
#define MICROCRAD_TESTS_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The counters live in a function so that every test file gets one private copy
 * without an unused-variable warning in files that never look at them. */
typedef struct check_state {
    long checks;
    long failures;
} check_state;

static inline check_state *check_state_get(void)
{
    static check_state state;
    return &state;
}

/* Counts one check; on failure prints where it was and what was expected. */
static inline int check_record(int ok, const char *file, int line, const char *what)
{
    check_state *s = check_state_get();
    s->checks++;
    if (!ok) {
        s->failures++;
        fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what);
    }
    return ok;
}

/* Equal as IEEE values, where NaN equals NaN (the sign of a zero is ignored). */
static inline int check_same_double(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return a == b;
}

/*
 * Close enough: |a - b| <= tol * (1 + max(|a|, |b|)), i.e. an absolute tolerance near 0
 * and a relative one for large numbers. Non-finite values must match exactly.
 */
static inline int check_near_double(double a, double b, double tol)
{
    if (!isfinite(a) || !isfinite(b))
        return check_same_double(a, b);
    double scale = fmax(fabs(a), fabs(b));
    return fabs(a - b) <= tol * (1.0 + scale);
}

static inline int check_near_at(double a, double b, double tol, const char *file, int line,
                                const char *expr_a, const char *expr_b)
{
    int ok = check_near_double(a, b, tol);
    if (!check_record(ok, file, line, "values differ"))
        fprintf(stderr, "    %s = %.17g\n    %s = %.17g\n    (tolerance %g)\n", expr_a, a,
                expr_b, b, tol);
    return ok;
}

static inline int check_same_at(double a, double b, const char *file, int line,
                                const char *expr_a, const char *expr_b)
{
    int ok = check_same_double(a, b);
    if (!check_record(ok, file, line, "values are not identical"))
        fprintf(stderr, "    %s = %.17g\n    %s = %.17g\n", expr_a, a, expr_b, b);
    return ok;
}

static inline int check_int_at(long long a, long long b, const char *file, int line,
                               const char *expr_a, const char *expr_b)
{
    int ok = a == b;
    if (!check_record(ok, file, line, "integers differ"))
        fprintf(stderr, "    %s = %lld\n    %s = %lld\n", expr_a, a, expr_b, b);
    return ok;
}

static inline int check_contains_at(const char *haystack, const char *needle, const char *file,
                                    int line, const char *expr)
{
    int ok = haystack != NULL && strstr(haystack, needle) != NULL;
    if (!check_record(ok, file, line, "text does not contain the expected part"))
        fprintf(stderr, "    %s = \"%s\"\n    expected to contain \"%s\"\n", expr,
                haystack ? haystack : "(null)", needle);
    return ok;
}

/* Prints the totals; the return value is main's exit status. */
static inline int check_summary(void)
{
    check_state *s = check_state_get();
    if (s->failures == 0) {
        printf("all %ld checks passed\n", s->checks);
        return 0;
    }
    printf("%ld of %ld checks FAILED\n", s->failures, s->checks);
    return 1;
}

/* A condition that must hold. */
#define CHECK(cond) check_record((cond) != 0, __FILE__, __LINE__, #cond)
/* Two doubles within tol (relative for large values, absolute near 0); NaN/inf exact. */
#define CHECK_NEAR(a, b, tol) check_near_at((a), (b), (tol), __FILE__, __LINE__, #a, #b)
/* Two doubles identical as IEEE values (NaN == NaN, inf only equals the same inf). */
#define CHECK_SAME(a, b) check_same_at((a), (b), __FILE__, __LINE__, #a, #b)
/* Two integers equal. */
#define CHECK_INT(a, b) check_int_at((long long)(a), (long long)(b), __FILE__, __LINE__, #a, #b)
/* A string containing a substring (a NULL string fails). */
#define CHECK_CONTAINS(s, part) check_contains_at((s), (part), __FILE__, __LINE__, #s)

#endif /* MICROCRAD_TESTS_CHECK_H */
