/* SPDX-License-Identifier: MIT */
/*
 * A main() for CUnit test programs: the exit status is the number of
 * failed assertions (0: all passed), as automake's test driver expects
 * (capped at 99 so that 77 and 99 keep their meanings... and avoided).
 */
#ifndef IOMAP_CUNIT_MAIN_H
#define IOMAP_CUNIT_MAIN_H

#include <CUnit/Basic.h>
#include <stdio.h>

struct test_case {
    const char *name;
    void      (*fn)(void);
};

static inline int
run_tests(const char *suite, const struct test_case *tests)
{
    CU_pSuite s;
    unsigned failures;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite(suite, NULL, NULL);
    for (const struct test_case *t = tests; s && t->name; t++)
        CU_add_test(s, t->name, t->fn);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    if (failures == 77 || failures == 99)
        failures++;     /* never look like "skipped" or "hard error" */
    return failures > 250 ? 250 : (int)failures;
}

#endif
