/*
 * save-fault.h — deterministic fault injection for tests (docs/protocol.md): with
 * IMGDUMP_FAULT=<phase>, the runtime kills itself with SIGKILL when it reaches <phase>.
 */
#ifndef IMGDUMP_SAVE_FAULT_H
#define IMGDUMP_SAVE_FAULT_H

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline int save_fault_armed(const char *phase) {
  const char *f = getenv("IMGDUMP_FAULT");
  return f && !strcmp(f, phase);
}

static inline void save_fault(const char *phase) {
  if (save_fault_armed(phase)) kill(getpid(), SIGKILL);
}

#endif
