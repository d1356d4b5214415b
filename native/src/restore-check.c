/*
 * restore-check.c — the library's earliest constructor. By now ld.so has finished loading
 * and libc is initialised, so environment and dl_iterate_phdr are usable. In an image:
 * compare the loaded libraries with the manifest (path, load address, build-id) and refuse
 * on any difference before main can use saved state; then re-resolve extern slots and run
 * the runtime's on-restore hooks. In every process: undo the pinning re-exec's traces.
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "imgdump.h"
#include "internal.h"
#include "pin.h"
#include "process-facts.h"
#include "startup.h"

struct lib_lookup {
  const char *path;
  int found;
  uint64_t base;
  char build_id[129];
};

static int match_library(const struct library_fact *f, void *arg) {
  struct lib_lookup *l = arg;
  if (strcmp(f->path, l->path)) return 0;
  l->found = 1;
  l->base = f->base;
  snprintf(l->build_id, sizeof l->build_id, "%s", f->build_id ? f->build_id : "");
  return 1;
}

static void refuse_library(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void refuse_library(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("imgdump: cannot restore this image: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs("\n  the image is bound to the exact shared libraries it was saved with; rebuild it by "
        "starting the runtime fresh (not from this image) and saving again\n", stderr);
  va_end(ap);
  fflush(stderr);
  _exit(IMGDUMP_REFUSED_EXIT);
}

static void check_libraries(const struct manifest *m) {
  for (uint32_t i = 0; i < m->n_libraries; i++) {
    struct imgdump__manifest_library lib;
    imgdump__manifest_library(m, i, &lib);
    if (!lib.path) continue;
    struct lib_lookup l = {.path = lib.path};
    imgdump__for_each_library(match_library, &l);
    if (!l.found) refuse_library("library %s is not loaded in this process", lib.path);
    if (l.base != lib.base)
      refuse_library("library %s is loaded at 0x%llx, but was at 0x%llx when the image was saved", lib.path,
                     (unsigned long long)l.base, (unsigned long long)lib.base);
    if (lib.build_id && strcmp(lib.build_id, l.build_id))
      refuse_library("library %s has changed (build-id %s, saved with %s)", lib.path,
                     l.build_id[0] ? l.build_id : "none", lib.build_id);
  }
}

static void undo_pinning_traces(void) {
  const char *stack = getenv(PIN_STACK_ENV);
  if (stack && !strcmp(stack, "unlimited")) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_STACK, &rl) == 0) {
      rl.rlim_cur = RLIM_INFINITY <= rl.rlim_max ? RLIM_INFINITY : rl.rlim_max;
      setrlimit(RLIMIT_STACK, &rl); /* the layout is fixed now; children get the user's limit */
    }
    imgdump__note_stack_was_unlimited();
  }
  unsetenv(PIN_STACK_ENV);
  unsetenv(PIN_REEXEC_ENV);
}

void imgdump__restore_check(void) {
  IMGDUMP_PROCESS_LOCAL static int done; /* once per exec: zero again in every image */
  if (done) return;
  done = 1;
  const struct startup_facts *f = imgdump__facts();
  undo_pinning_traces();
  if (!f->is_image) return;
  check_libraries(f->manifest);
  struct imgdump_heap_header *h = imgdump__heap();
  if (!h) refuse_library("the saved heap could not be adopted at 0x%llx", (unsigned long long)f->manifest->heap_header);
  if (h->generation != f->generation)
    refuse_library("the heap header says generation %llu but the manifest says %llu",
                   (unsigned long long)h->generation, (unsigned long long)f->generation);
  int missing = imgdump__externs_resolve();
  if (missing > 0 && getenv("IMGDUMP_DEBUG"))
    fprintf(stderr, "imgdump: %d extern slot(s) could not be re-resolved\n", missing);
  imgdump__run_hooks(IMGDUMP_HOOK_RESTORE);
}

/* Priority 101: before the runtime's own constructors (which run again in an image and may
 * look at restored data). A shared (preloaded) libimgdump runs it before the executable's. */
__attribute__((constructor(101))) static void imgdump_constructor(void) {
#ifdef IMGDUMP_SHARED
  /* Preloaded or linked, this library's malloc is the process's (symbol lookup finds it
   * first); dlopen'ed later (e.g. through an FFI), it is not, and re-executing the host
   * process to pin its layout would be wrong. */
  if (dlsym(RTLD_DEFAULT, "malloc") != (void *)malloc) imgdump__disable_pinning();
#endif
  imgdump__restore_check();
}

#ifndef IMGDUMP_SHARED
/* Linked into the executable (libimgdump.a): pin and find the manifest before any shared
 * library's constructor runs, so a pinning re-exec happens before any of them did work. */
static void imgdump_preinit(int argc, char **argv, char **envp) {
  (void)argc, (void)argv, (void)envp;
  imgdump__startup();
}
__attribute__((section(".preinit_array"), used)) static void (*const imgdump_preinit_entry)(int, char **, char **) =
    imgdump_preinit;
#endif
