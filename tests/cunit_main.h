/* SPDX-License-Identifier: MIT */
/*
 * A main() for CUnit test programs.  The exit status is what automake's
 * test driver reads:
 *   0      every assertion passed;
 *   1..250 that many failures (assertions, suite set-ups), capped at 250,
 *          so that no count wraps to 0 modulo 256; 77 and 99 are never
 *          used for a count (they would read as SKIP and as a hard error):
 *          77 failures exit 78, 99 exit 100;
 *   99     the tests could not be run at all (CUnit's registry).
 */
#ifndef IOMAP_CUNIT_MAIN_H
#define IOMAP_CUNIT_MAIN_H

#include <CUnit/Basic.h>
#include <stdio.h>

struct test_case {
    const char *name;
    void      (*fn)(void);
};

/* A suite: its tests end with a NULL name. */
struct test_suite {
    const char             *name;
    const struct test_case *tests;
};

/* The exit status for n failures (above). */
static inline int
test_exit_status(unsigned long long n)
{
    if (n == 0)
        return 0;
    if (n > 250)
        return 250;
    if (n == 77 || n == 99)
        return (int)n + 1;
    return (int)n;
}

/* Run the suites (ending with a NULL name); the exit status. */
static inline int
run_suites(const struct test_suite *suites)
{
    unsigned long long failures, records;
    unsigned added = 0, ran;
    int ok = 1;

    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "CUnit: cannot initialise the registry\n");
        return 99;
    }
    for (const struct test_suite *su = suites; ok && su->name; su++) {
        CU_pSuite s = CU_add_suite(su->name, NULL, NULL);

        ok = s != NULL;
        for (const struct test_case *t = su->tests; ok && t->name; t++, added++)
            ok = CU_add_test(s, t->name, t->fn) != NULL;
    }
    if (!ok) {
        fprintf(stderr, "CUnit: cannot register the tests: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 99;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    if (CU_basic_run_tests() != CUE_SUCCESS) {
        fprintf(stderr, "CUnit: cannot run the tests: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 99;
    }
    failures = CU_get_number_of_failures();
    records = CU_get_number_of_failure_records();  /* also suite set-up failures */
    if (records > failures)
        failures = records;
    ran = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (ran != added && failures == 0)
        failures = 1;   /* a test that did not run did not pass */
    return test_exit_status(failures);
}

/* One suite. */
static inline int
run_tests(const char *suite, const struct test_case *tests)
{
    const struct test_suite s[] = { { suite, tests }, { NULL, NULL } };

    return run_suites(s);
}

#endif
