/* startup.h — facts established before main, for the save and restore-check code. */
#ifndef IMGDUMP_STARTUP_H
#define IMGDUMP_STARTUP_H

#include <stdint.h>
#include "manifest-read.h"

/* Exit status of an image that refuses to run (mismatched library, layout, corrupt manifest). */
#define IMGDUMP_REFUSED_EXIT 125

struct startup_facts {
  int pinned;
  int personality_errno; /* non-zero: pinning was refused by the kernel / seccomp */
  uint64_t stack_limit;
  int stack_was_unlimited;
  uint64_t load_bias;
  uint64_t phdr;
  int is_image;
  uint64_t generation;
  const struct manifest *manifest; /* NULL in a fresh process */
};

const struct startup_facts *imgdump__facts(void);
void imgdump__note_stack_was_unlimited(void);
/* The shared library was dlopen'ed into a running process: never pin (re-exec) it. */
void imgdump__disable_pinning(void);

#endif
