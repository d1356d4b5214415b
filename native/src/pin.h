/*
 * pin.h — pinning the address layout (DESIGN §5 "Layout is pinned"). Saved data holds
 * addresses inside the executable and its libraries, so a process that may be saved, and
 * every image, runs with ADDR_NO_RANDOMIZE and a finite stack rlimit (an unlimited one
 * switches the kernel to the legacy bottom-up mmap layout). Pinning needs one re-exec.
 */
#ifndef IMGDUMP_PIN_H
#define IMGDUMP_PIN_H

#include <stdint.h>

#define PIN_REEXEC_ENV "IMGDUMP_REEXEC"     /* set on the pinning re-exec: loop guard */
#define PIN_STACK_ENV "IMGDUMP_PIN_STACK"   /* the soft stack limit to put back after it */
#define PIN_DEFAULT_STACK (8ull << 20)

struct pin_state {
  int pinned;              /* started with ADDR_NO_RANDOMIZE and a finite stack limit */
  int denied_errno;        /* personality() failed with this errno (0 = not tried / fine) */
  uint64_t stack_limit;    /* soft RLIMIT_STACK this layout was made with */
  int stack_was_unlimited; /* the user's limit was unlimited before the re-exec */
};

/* Is the current process's layout pinned? Fills st. Raw syscalls only. */
void imgdump__pin_probe(struct pin_state *st);

/* Re-exec this process pinned, with soft stack limit `stack_limit` when the current one is
 * unlimited. Returns only on failure (-errno; st->denied_errno set when personality was
 * refused) or when a previous pinning re-exec already happened (loop guard: -EAGAIN). */
int imgdump__pin_reexec(struct pin_state *st, uint64_t stack_limit);

/* Clear ADDR_NO_RANDOMIZE again so that children get normal randomisation. */
void imgdump__pin_release_children(void);
/* Set ADDR_NO_RANDOMIZE for an execve that must land pinned (IMGDUMP_EXEC). 0 or -errno. */
int imgdump__pin_for_exec(void);

#endif
