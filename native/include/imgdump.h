/*
 * imgdump.h — the public C API of libimgdump.
 *
 * A runtime linked with libimgdump gets every malloc of the process served from a heap
 * segment at a fixed address, so that `imgdump_save` can write the runtime's whole state
 * (its own writable data, the heap, registered regions) into a new executable. Running
 * that executable brings the state back; `imgdump_restored()` tells which case `main` is in:
 *
 *     if (imgdump_restored()) world = imgdump_root(0);        // reuse the saved world
 *     else { world = build_world(); imgdump_set_root(0, world); }
 *
 * All functions returning int return 0 (or a non-negative value) on success and a negative
 * IMGDUMP_E* code on failure; imgdump_strerror() explains a code. See docs/runtime-authors.md.
 */
#ifndef IMGDUMP_H
#define IMGDUMP_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IMGDUMP_API_VERSION 1

/* Flags of imgdump_save: exactly one of CONTINUE, EXEC, EXIT. */
#define IMGDUMP_CONTINUE 0u /* save and keep running in this process */
#define IMGDUMP_EXEC 1u     /* save, then execve the new image (does not return on success) */
#define IMGDUMP_EXIT 2u     /* save, then exit(0) like save-lisp-and-die */

/* Number of root slots (imgdump_set_root / imgdump_root). */
#define IMGDUMP_ROOTS 64

/* Error codes (negative return values). Never renumbered; see imgdump_strerror(). */
#define IMGDUMP_OK 0
#define IMGDUMP_EINVAL -1       /* bad argument (flags, slot, NULL path, …) */
#define IMGDUMP_ENOMEM -2       /* heap reservation exhausted or tables full */
#define IMGDUMP_ETHREADS -3     /* more than one thread is running */
#define IMGDUMP_EBUSY -4        /* a save is already in progress */
#define IMGDUMP_EACCES -5       /* the target cannot be written (directory not writable, …) */
#define IMGDUMP_EPLANNER -6     /* the imgdump planner could not be started or reached */
#define IMGDUMP_EPROTO -7       /* the planner answered something unexpected */
#define IMGDUMP_EIO -8          /* writing the image failed (disk full, I/O error) */
#define IMGDUMP_EFBIG -9        /* the file size limit (RLIMIT_FSIZE) was hit */
#define IMGDUMP_EPERSONALITY -10 /* personality(ADDR_NO_RANDOMIZE) denied (seccomp) */
#define IMGDUMP_EREFUSED -11    /* the planner refused the runtime (reason in the message) */
#define IMGDUMP_ENOHEAP -12     /* the heap segment could not be reserved at its address */
#define IMGDUMP_ENOSYM -13      /* imgdump_extern: symbol not found */
#define IMGDUMP_EEXEC -14       /* IMGDUMP_EXEC: the image was written but execve failed */
#define IMGDUMP_ECANCELED -15   /* an on-save hook or the session cancelled the save */

/* Generation of the image this process was restored from, 0 in a fresh process. */
int imgdump_restored(void);

/* Save the process state as an executable image at `path` (see flags above). */
int imgdump_save(const char *path, unsigned flags);

/* Root slots: saved with the heap, read back after restore. slot < IMGDUMP_ROOTS. */
int imgdump_set_root(unsigned slot, void *p);
void *imgdump_root(unsigned slot);

/* A static message for an IMGDUMP_E* code (or "unknown error"). */
const char *imgdump_strerror(int code);

/* Last error detail (e.g. the planner's refusal text) for the calling process, or "". */
const char *imgdump_last_error(void);

/* Hooks run just before each save (in registration order) and in a restored process
 * before main (in registration order). The registration itself is saved. */
int imgdump_on_save(void (*fn)(void *arg), void *arg);
int imgdump_on_restore(void (*fn)(void *arg), void *arg);

/* A persistent slot holding the address of a shared-library symbol; the slot survives a
 * save and is re-resolved (dlsym) in every restored process. NULL if not found. */
void **imgdump_extern(const char *symbol);

/* Register an extra fixed-address region the runtime manages itself (e.g. GC spaces),
 * page-aligned, so it is saved and restored with the heap. */
int imgdump_region(void *addr, size_t len);

/* A safe point: where a save requested from outside (imgdump save <session>) may happen. */
void imgdump_safepoint(void);

#ifdef __cplusplus
}
#endif

#endif /* IMGDUMP_H */
