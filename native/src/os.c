/*
 * os.c — raw system calls for the heap segment and the allocator lock (see os.h for why
 * nothing here may allocate). syscall(2) is used instead of the libc wrappers where the
 * wrapper could set errno in a thread that has no TLS yet or might be intercepted.
 */
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

extern char **__environ;

#if defined(__x86_64__)
static long raw(long nr, long a, long b, long c, long d, long e, long f) {
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret; /* -errno on failure, as the kernel returns it */
}
#else
/* Other architectures: libc's syscall(2), translated back to the kernel's -errno. */
static long raw(long nr, long a, long b, long c, long d, long e, long f) {
  long r = syscall(nr, a, b, c, d, e, f);
  return r == -1 ? -errno : r;
}
#endif

int imgdump__os_reserve(uint64_t addr, uint64_t len) {
  long r = raw(SYS_mmap, (long)addr, (long)len, PROT_NONE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
  if (r < 0 && r > -4096) return (int)r;
  if ((uint64_t)r != addr) {
    /* Kernels before 4.17 ignore MAP_FIXED_NOREPLACE and treat it as a hint. */
    raw(SYS_munmap, r, (long)len, 0, 0, 0, 0);
    return -EEXIST;
  }
  return 0;
}

int imgdump__os_reserve_over(uint64_t addr, uint64_t len) {
  long r = raw(SYS_mmap, (long)addr, (long)len, PROT_NONE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
  return (r < 0 && r > -4096) ? (int)r : 0;
}

int imgdump__os_commit(uint64_t addr, uint64_t len) {
  long r = raw(SYS_mprotect, (long)addr, (long)len, PROT_READ | PROT_WRITE, 0, 0, 0);
  return (int)r;
}

static int name_matches(const char *entry, const char *name) {
  while (*name && *entry == *name) entry++, name++;
  return *name == 0 && *entry == '=';
}

static int copy_value(const char *v, char *buf, size_t cap) {
  size_t i = 0;
  while (v[i] && i + 1 < cap) buf[i] = v[i], i++;
  buf[i] = 0;
  return (int)i;
}

/* Stream /proc/self/environ (the initial environment, valid before libc sets __environ)
 * through a small stack buffer, one NUL-terminated entry at a time. */
static int getenv_proc(const char *name, char *buf, size_t cap) {
  int fd = (int)raw(SYS_openat, AT_FDCWD, (long)"/proc/self/environ", O_RDONLY | O_CLOEXEC, 0, 0, 0);
  if (fd < 0) return fd;
  char chunk[1024];
  char entry[512];
  size_t elen = 0;
  int found = -ENOENT, overflow = 0;
  for (;;) {
    long n = raw(SYS_read, fd, (long)chunk, sizeof chunk, 0, 0, 0);
    if (n == -EINTR) continue;
    if (n <= 0) break;
    for (long i = 0; i < n; i++) {
      if (chunk[i] != 0) {
        if (elen + 1 < sizeof entry) entry[elen++] = chunk[i];
        else overflow = 1;
        continue;
      }
      entry[elen] = 0;
      if (!overflow && name_matches(entry, name)) {
        const char *v = entry;
        while (*v != '=') v++;
        found = copy_value(v + 1, buf, cap);
      }
      elen = 0, overflow = 0;
    }
  }
  raw(SYS_close, fd, 0, 0, 0, 0, 0);
  return found;
}

int imgdump__os_getenv(const char *name, char *buf, size_t cap) {
  int r = getenv_proc(name, buf, cap);
  if (r != -ENOENT && r < 0 && __environ) {
    /* No /proc: fall back to the environment libc has set up (if it has). */
    for (char **e = __environ; *e; e++)
      if (name_matches(*e, name)) {
        const char *v = *e;
        while (*v != '=') v++;
        return copy_value(v + 1, buf, cap);
      }
    return -ENOENT;
  }
  return r;
}

int imgdump__os_dup_high(int fd) {
  long r = raw(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 200, 0, 0, 0);
  return (int)r;
}

void imgdump__os_stderr(const char *s) { imgdump__os_write(2, s); }

void imgdump__os_write(int fd, const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  while (n) {
    long w = raw(SYS_write, fd, (long)s, (long)n, 0, 0, 0);
    if (w == -EINTR) continue;
    if (w <= 0) return;
    s += w, n -= (size_t)w;
  }
}

void imgdump__os_futex_wait(uint32_t *word, uint32_t val) {
  raw(SYS_futex, (long)word, FUTEX_WAIT_PRIVATE, val, 0, 0, 0);
}

void imgdump__os_futex_wake(uint32_t *word, int n) {
  raw(SYS_futex, (long)word, FUTEX_WAKE_PRIVATE, n, 0, 0, 0);
}

void imgdump__os_yield(void) { raw(SYS_sched_yield, 0, 0, 0, 0, 0, 0); }

char *imgdump__os_fmt_hex(char *buf, uint64_t v) {
  char tmp[17];
  int n = 0;
  do tmp[n++] = "0123456789abcdef"[v & 15], v >>= 4; while (v);
  buf[0] = '0', buf[1] = 'x';
  for (int i = 0; i < n; i++) buf[2 + i] = tmp[n - 1 - i];
  buf[2 + n] = 0;
  return buf;
}

char *imgdump__os_fmt_dec(char *buf, uint64_t v) {
  char tmp[21];
  int n = 0;
  do tmp[n++] = (char)('0' + v % 10), v /= 10; while (v);
  for (int i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
  buf[n] = 0;
  return buf;
}
