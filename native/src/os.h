/*
 * os.h — the one OS-glue layer of libimgdump (DESIGN §9 rule 6). Raw system calls only:
 * these run inside malloc, possibly before the C library is initialised (preloaded or
 * statically linked), so nothing here may allocate, use stdio or touch errno-dependent
 * libc state that is not ready yet. Functions return 0 or -errno.
 */
#ifndef IMGDUMP_OS_H
#define IMGDUMP_OS_H

#include <stddef.h>
#include <stdint.h>

#define IMGDUMP_PAGE 4096ull

/* Reserve [addr, addr+len) PROT_NONE, no commit charge, failing if any page is mapped. */
int imgdump__os_reserve(uint64_t addr, uint64_t len);
/* Replace whatever maps [addr, addr+len) with a fresh PROT_NONE reservation (MAP_FIXED). */
int imgdump__os_reserve_over(uint64_t addr, uint64_t len);
/* Make [addr, addr+len) readable and writable (emulated sbrk growth). */
int imgdump__os_commit(uint64_t addr, uint64_t len);

/* Look `name` up in the process's initial environment without allocating. Copies the value
 * (NUL-terminated, truncated to cap-1) into buf; returns its length or -ENOENT. */
int imgdump__os_getenv(const char *name, char *buf, size_t cap);

/* write(2) a whole string to stderr / fd, ignoring errors (diagnostics only). */
void imgdump__os_stderr(const char *s);
void imgdump__os_write(int fd, const char *s);
/* A close-on-exec duplicate of fd numbered >= 200, or -errno. */
int imgdump__os_dup_high(int fd);

/* futex wait while *word == val / wake up to n waiters (process-private). */
void imgdump__os_futex_wait(uint32_t *word, uint32_t val);
void imgdump__os_futex_wake(uint32_t *word, int n);
void imgdump__os_yield(void);

/* Format helpers for diagnostics without stdio: hex / decimal into buf, returns buf. */
char *imgdump__os_fmt_hex(char *buf, uint64_t v);
char *imgdump__os_fmt_dec(char *buf, uint64_t v);

#endif
