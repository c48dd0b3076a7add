/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the policy parser (policy_parse_string, libconfig) and the
 * checks on a policy that parsed.  Inputs naming @include are skipped:
 * they would read other files.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    char err[POLICY_ERRLEN];
    struct policy *p = NULL;

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    if (strstr(text, "@include") != NULL) {
        free(text);
        return 0;
    }
    if (policy_parse_string(text, &p, err) == 0) {
        /* Exercise the checks on what was parsed. */
        for (uint16_t dom = 0; dom < 4; dom++)
            (void)policy_check_map(p, 0, (uint16_t)(size & 3), dom,
                                   size * 0x101u, 1 + (uint32_t)(size & 15), dom & 1);
        policy_free(p);
    } else if (err[0] == 0) {
        abort();        /* a failure must say why */
    }
    free(text);
    return 0;
}
