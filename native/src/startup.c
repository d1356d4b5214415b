/*
 * startup.c — what happens before main (DESIGN §5 "The check comes first").
 *
 * imgdump__startup() runs inside the first malloc (called by imgdump__heap()) or in the
 * library's earliest constructor, whichever comes first. It uses raw syscalls only — ld.so
 * may hold its locks and libc may not be initialised yet (environ unset): pin the layout
 * (re-exec once) and, in an image, find the manifest and say what the kernel mapped.
 * The checks that need ld.so (library build-ids) and the runtime's hooks run later in the
 * constructor, still before main.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "imgdump.h"
#include "internal.h"
#include "manifest-read.h"
#include "pin.h"
#include "process-facts.h"
#include "startup.h"

/* Process-local facts (not saved: they describe this run, not the heap). */
IMGDUMP_PROCESS_LOCAL static struct {
  int done;
  int no_pin; /* loaded with dlopen: not the process's allocator, leave the layout alone */
  int is_image;
  struct manifest manifest;
  struct imgdump_image_info info;
  struct pin_state pin;
  struct imgdump__own_image own;
} run;

/* An image that cannot run must not touch saved state: say why and stop. */
static void refuse(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void refuse(const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg - 1, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n > sizeof msg - 2) n = sizeof msg - 2;
  msg[n++] = '\n';
  ssize_t w = write(2, "imgdump: cannot restore this image: ", 36);
  w = write(2, msg, (size_t)n);
  (void)w;
  _exit(IMGDUMP_REFUSED_EXIT);
}

static void find_heap_extent(void) {
  uint64_t end = 0;
  for (uint32_t i = 0; i < run.manifest.n_segments; i++) {
    struct imgdump__manifest_segment seg;
    imgdump__manifest_segment(&run.manifest, i, &seg);
    if (seg.role == SEGMENT_ROLE_HEAP && seg.address + seg.mem_size > end) end = seg.address + seg.mem_size;
  }
  run.info.generation = run.manifest.generation;
  run.info.heap_base = run.manifest.heap_header;
  run.info.heap_mapped_end = end;
}

static void start_image(void) {
  size_t len = 0;
  const void *note = imgdump__own_note(&run.own, MANIFEST_NOTE_OWNER, MANIFEST_NOTE_TYPE, &len);
  if (!note) return;
  int rc = imgdump__manifest_decode(note, len, &run.manifest);
  if (rc) refuse("its manifest is %s", rc == -3 ? "corrupt (checksum mismatch)" : "malformed or of an unknown version");
  run.is_image = 1;
  if (!run.pin.pinned) {
    rc = imgdump__pin_reexec(&run.pin, run.manifest.stack_limit);
    if (run.pin.denied_errno)
      refuse("personality(ADDR_NO_RANDOMIZE) was denied (%s); the saved address layout cannot be "
             "reproduced here (under a container, allow the personality syscall)", strerror(run.pin.denied_errno));
    refuse("could not re-execute itself with a pinned address layout (%s)", strerror(-rc));
  }
  if (run.own.bias != run.manifest.load_bias)
    refuse("the executable was loaded at 0x%llx, but the image was saved at 0x%llx (different kernel or "
           "address-space settings); start the runtime fresh and save again",
           (unsigned long long)run.own.bias, (unsigned long long)run.manifest.load_bias);
  find_heap_extent();
}

const struct imgdump_image_info *imgdump__startup(void) {
  /* Single-threaded here: ld.so start-up, or the first malloc of a fresh process. */
  if (!run.done) {
    run.done = 1;
    imgdump__own_image(&run.own);
    imgdump__pin_probe(&run.pin);
    start_image();
    if (!run.is_image && !run.pin.pinned && !run.no_pin)
      imgdump__pin_reexec(&run.pin, 0); /* returns only when pinning is impossible: run unpinned */
    if (run.pin.pinned) imgdump__pin_release_children();
  }
  return run.is_image ? &run.info : NULL;
}

int imgdump_restored(void) {
  const struct imgdump_image_info *info = imgdump__startup();
  return info ? (int)info->generation : 0;
}

const struct startup_facts *imgdump__facts(void) {
  static struct startup_facts f;
  imgdump__startup();
  f.pinned = run.pin.pinned;
  f.personality_errno = run.pin.denied_errno;
  f.stack_limit = run.pin.stack_limit;
  f.stack_was_unlimited = run.pin.stack_was_unlimited;
  f.load_bias = run.own.bias;
  f.phdr = (uint64_t)(uintptr_t)run.own.phdr;
  f.is_image = run.is_image;
  f.generation = run.is_image ? run.manifest.generation : 0;
  f.manifest = run.is_image ? &run.manifest : NULL;
  return &f;
}

void imgdump__note_stack_was_unlimited(void) { run.pin.stack_was_unlimited = 1; }

void imgdump__disable_pinning(void) { run.no_pin = 1; }
