/* SPDX-License-Identifier: MIT */
/*
 * An outside program of libiomap-emu: it includes only the installed
 * header (built with -std=c99 -pedantic-errors, no config.h) and links
 * only libiomap-emu.so.  Exits 0 when the library answers as documented
 * without a daemon: NULL and a negative errno, nothing printed.
 */
#include <iomap/emu.h>

/* Every public function and type is declared, with the documented types. */
static int (*const p_fd)(const struct iomap_emu *) = iomap_emu_fd;
static int (*const p_next)(struct iomap_emu *, struct iomap_emu_req *) = iomap_emu_next;
static int (*const p_done)(struct iomap_emu *, const struct iomap_emu_req *) = iomap_emu_done;

int
main(void)
{
    struct iomap_emu_req r = { 0, 0, 0, 0, 0 };
    int err = 0;

    if (IOMAP_EMU_CAP_INVALIDATE_PAGE != 1u || p_fd == 0 || p_next == 0 || p_done == 0)
        return 1;
    if (iomap_emu_open("/nonexistent/iomapd/emulators.sock", 0, 1, 0,
                       IOMAP_EMU_CAP_INVALIDATE_PAGE, &err) != 0 || err >= 0)
        return 2;
    if (iomap_emu_open(0, 0, 1, 0, 0, 0) != 0)  /* err may be NULL */
        return 3;
    iomap_emu_close(0);
    return r.slot;
}
