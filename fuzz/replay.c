/* SPDX-License-Identifier: MIT */
/*
 * Replays a fuzz target's corpus without libFuzzer: `make check` runs
 * every file of fuzz/corpus/<target>/ (or the files and directories named
 * on the command line) through LLVMFuzzerTestOneInput.  Built with the
 * sanitizers when configured with --enable-sanitizers.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long nfiles;

static int
run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, n;

    if (f == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    do {
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap = cap ? cap * 2 : 4096);

            if (nb == NULL) {
                free(buf);
                fclose(f);
                return -1;
            }
            buf = nb;
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
    } while (n > 0);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    nfiles++;
    return 0;
}

static int
run_path(const char *path)
{
    struct stat st;
    struct dirent **ents;
    int n, rc = 0;

    if (stat(path, &st) < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return run_file(path);
    n = scandir(path, &ents, NULL, alphasort);
    if (n < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        char sub[4096];

        if (ents[i]->d_name[0] != '.') {
            snprintf(sub, sizeof(sub), "%s/%s", path, ents[i]->d_name);
            if (run_path(sub) < 0)
                rc = -1;
        }
        free(ents[i]);
    }
    free(ents);
    return rc;
}

int
main(int argc, char **argv)
{
    int rc = 0;

    if (argc < 2) {
#ifdef CORPUS_DIR
        rc = run_path(CORPUS_DIR);
#else
        fprintf(stderr, "usage: %s corpus-dir-or-file...\n", argv[0]);
        return 2;
#endif
    }
    for (int i = 1; i < argc; i++)
        if (run_path(argv[i]) < 0)
            rc = -1;
    printf("replayed %lu inputs\n", nfiles);
    return rc < 0 || nfiles == 0 ? 1 : 0;
}
