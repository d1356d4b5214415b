/*
 * save.c — imgdump_save and imgdump_safepoint: the runtime's half of a save
 * (docs/protocol.md). The runtime reports facts, writes its memory where the planner says,
 * and never parses an executable. Between reporting the break and writing the heap nothing
 * may allocate from the heap (the written allocator state must match the reported break):
 * everything here lives in a scratch arena outside the heap.
 */
#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "dirty-track.h"
#include "imgdump.h"
#include "internal.h"
#include "json-lite.h"
#include "os.h"
#include "pin.h"
#include "process-facts.h"
#include "save-fault.h"
#include "startup.h"

#define MSG_CAP (256u << 10)

/* The generation the last save of this exec produced (process-local: zero in the image). */
IMGDUMP_PROCESS_LOCAL static struct {
  uint64_t last_generation;
} saves;

struct save_job {
  struct scratch s;
  struct planner planner;
  struct imgdump_heap_header *heap;
  unsigned id;
  unsigned mode;
  const char *path;
  uint64_t generation;
  uint64_t brk;
  struct dirty_snapshot dirty; /* what changed since the previous image (incremental saves) */
  int image_ro;                /* read-only descriptor of the new image, for the next save */
};

/* The executable's writable PT_LOADs, [start, end) at run time (from its own program headers). */
static size_t writable_segments(struct dirty_range *out, size_t cap) {
  struct imgdump__own_image img;
  imgdump__own_image(&img);
  size_t n = 0;
  for (size_t i = 0; i < img.phnum && n < cap; i++) {
    const ElfW(Phdr) *ph = &img.phdr[i];
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W))
      out[n++] = (struct dirty_range){img.bias + ph->p_vaddr, img.bias + ph->p_vaddr + ph->p_memsz};
  }
  return n;
}

/* Every range a save may write: the heap reservation, the registered regions and the
 * executable's writable segments, page-rounded (what dirty tracking watches). */
static size_t saved_ranges(const struct save_job *j, struct dirty_range *out, size_t cap) {
  size_t n = 0;
  const struct imgdump_heap_header *h = j->heap;
  if (n < cap) out[n++] = (struct dirty_range){h->base, h->base + h->reserve};
  for (uint32_t i = 0; i < h->n_regions && i < IMGDUMP_MAX_REGIONS && n < cap; i++) {
    uint64_t a = h->regions[i].addr & ~4095ull;
    out[n++] = (struct dirty_range){a, (h->regions[i].addr + h->regions[i].len + 4095) & ~4095ull};
  }
  struct dirty_range data[16];
  size_t nd = writable_segments(data, 16);
  for (size_t i = 0; i < nd && n < cap; i++)
    out[n++] = (struct dirty_range){data[i].start & ~4095ull, (data[i].end + 4095) & ~4095ull};
  return n;
}

/* The `previous` and `tracking` parts of the save message. */
static void describe_tracking(struct jw *w, const struct dirty_snapshot *d) {
  imgdump__jw_fmt(w, ",\"tracking\":{\"method\":\"%s\"", imgdump__dirty_method_name(d->method));
  if (d->why_full) {
    imgdump__jw_raw(w, ",\"why\":");
    imgdump__jw_str(w, d->why_full);
  }
  imgdump__jw_raw(w, "}");
  if (d->method == DIRTY_NONE) return;
  imgdump__jw_fmt(w, ",\"previous\":{\"source\":\"%s\",\"fd\":%d,\"generation\":%llu}", d->prev_is_exe ? "exe" : "fd",
         d->prev_fd, (unsigned long long)d->prev_generation);
}

static int count_threads(void) {
  DIR *d = opendir("/proc/self/task");
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

/* The absolute target path (the directory must exist; the planner checks writability). */
static const char *absolute_path(struct scratch *s, const char *path) {
  if (path[0] == '/') return imgdump__scratch_strdup(s, path);
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd)) return NULL;
  size_t n = strlen(cwd) + strlen(path) + 2;
  char *out = imgdump__scratch_alloc(s, n);
  if (out) snprintf(out, n, "%s/%s", cwd, path);
  return out;
}

static int append_library(const struct library_fact *f, void *arg) {
  struct jw *w = arg;
  if (w->buf[w->len - 1] != '[') imgdump__jw_raw(w, ",");
  imgdump__jw_raw(w, "{\"path\":");
  imgdump__jw_str(w, f->path);
  imgdump__jw_raw(w, ",\"base\":");
  imgdump__jw_hex(w, f->base);
  imgdump__jw_raw(w, ",\"buildId\":");
  if (f->build_id) imgdump__jw_str(w, f->build_id); else imgdump__jw_raw(w, "null");
  imgdump__jw_raw(w, "}");
  return 0;
}

static const char *mode_name(unsigned mode) {
  return mode == IMGDUMP_EXEC ? "exec" : mode == IMGDUMP_EXIT ? "exit" : "continue";
}

/* The `save` message: every fact the planner needs about this process. */
static char *save_message(struct save_job *j) {
  const struct startup_facts *f = imgdump__facts();
  char *buf = imgdump__scratch_alloc(&j->s, MSG_CAP);
  if (!buf) return NULL;
  struct jw w = {buf, MSG_CAP, 0, 0};
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[n > 0 ? n : 0] = 0;
  struct imgdump_heap_header *h = j->heap;
  imgdump__jw_fmt(&w, "{\"t\":\"save\",\"id\":%u,\"pid\":%d,\"path\":", j->id, (int)getpid());
  imgdump__jw_str(&w, j->path);
  imgdump__jw_fmt(&w, ",\"mode\":\"%s\",\"generation\":%llu,\"exe\":", mode_name(j->mode), (unsigned long long)j->generation);
  imgdump__jw_str(&w, exe);
  imgdump__jw_raw(&w, ",\"loadBias\":"); imgdump__jw_hex(&w, f->load_bias);
  imgdump__jw_raw(&w, ",\"phdr\":"); imgdump__jw_hex(&w, f->phdr);
  imgdump__jw_raw(&w, ",\"heap\":{\"base\":"); imgdump__jw_hex(&w, h->base);
  imgdump__jw_raw(&w, ",\"brk\":"); imgdump__jw_hex(&w, j->brk);
  imgdump__jw_raw(&w, ",\"reserve\":"); imgdump__jw_hex(&w, h->reserve);
  imgdump__jw_raw(&w, ",\"header\":"); imgdump__jw_hex(&w, (uint64_t)(uintptr_t)h);
  imgdump__jw_raw(&w, "},\"regions\":[");
  for (uint32_t i = 0; i < h->n_regions && i < IMGDUMP_MAX_REGIONS; i++) {
    imgdump__jw_raw(&w, i ? ",{\"addr\":" : "{\"addr\":");
    imgdump__jw_hex(&w, h->regions[i].addr);
    imgdump__jw_raw(&w, ",\"size\":");
    imgdump__jw_hex(&w, h->regions[i].len);
    imgdump__jw_raw(&w, "}");
  }
  imgdump__jw_raw(&w, "],\"libraries\":[");
  imgdump__for_each_library(append_library, &w);
  imgdump__jw_fmt(&w, "],\"pinning\":{\"noRandomize\":%s,\"stack\":\"%s\",\"stackLimit\":", f->pinned ? "true" : "false",
         f->stack_was_unlimited ? "unlimited" : "finite");
  imgdump__jw_hex(&w, f->stack_limit);
  imgdump__jw_raw(&w, "},\"origin\":");
  if (f->is_image) imgdump__jw_str(&w, exe); else imgdump__jw_raw(&w, "null");
  describe_tracking(&w, &j->dirty);
  imgdump__jw_raw(&w, "}");
  return w.overflow ? NULL : buf;
}

/* Reject a planned range that is not this process's saved memory. */
static int write_allowed(const struct save_job *j, uint64_t addr, uint64_t size) {
  uint64_t end = addr + size;
  if (end < addr) return 0;
  const struct imgdump_heap_header *h = j->heap;
  if (addr >= h->base && end <= j->brk) return 1;
  for (uint32_t i = 0; i < h->n_regions && i < IMGDUMP_MAX_REGIONS; i++)
    if (addr >= h->regions[i].addr && end <= h->regions[i].addr + h->regions[i].len) return 1;
  struct dirty_range data[16];
  size_t nd = writable_segments(data, 16);
  for (size_t i = 0; i < nd; i++)
    if (addr >= data[i].start && end <= data[i].end) return 1;
  return 0;
}

/* A `request-save` that crossed a save this runtime started itself waits here for the next
 * safe point (docs/protocol.md). Per exec: a request is for the process that received it. */
IMGDUMP_PROCESS_LOCAL static struct {
  int has;
  char line[4096];
} deferred;

static void defer_request(const char *line) {
  size_t n = strlen(line);
  if (n >= sizeof deferred.line) return; /* cannot be a valid request; the requester times out */
  memcpy(deferred.line, line, n + 1);
  deferred.has = 1;
}

static int deferred_pending(void) {
  return deferred.has;
}

static int take_deferred(struct scratch *s, char **line) {
  if (!deferred.has) return 0;
  deferred.has = 0;
  *line = imgdump__scratch_strdup(s, deferred.line);
  return *line != NULL;
}

/* An `error` message from the planner becomes imgdump_last_error(). */
static int planner_error(const struct jval *v, const char *line) {
  const char *msg = imgdump__json_str(v, "message"), *code = imgdump__json_str(v, "code");
  imgdump__set_error("%s%s%s", code ? code : "", code ? ": " : "", msg ? msg : line);
  return code && !strcmp(code, "CANCELLED") ? IMGDUMP_ECANCELED : IMGDUMP_EREFUSED;
}

static int expect(struct save_job *j, const char *type, struct jval **out, int *fd) {
  char *line;
  struct jval *v;
  const char *t;
  for (;;) {
    int rc = imgdump__planner_recv(&j->planner, &j->s, &line, fd, -1);
    if (rc) return rc;
    v = imgdump__json_parse(&j->s, line);
    t = imgdump__json_str(v, "t");
    if (!t || strcmp(t, "request-save")) break;
    defer_request(line); /* an outside request crossed ours: serve it at the next safe point */
  }
  if (t && !strcmp(t, "error")) return planner_error(v, line);
  if (!t || strcmp(t, type)) {
    imgdump__set_error("expected '%s' from the planner, got: %.200s", type, line);
    return IMGDUMP_EPROTO;
  }
  *out = v;
  return 0;
}

static int parse_writes(struct save_job *j, const struct jval *plan, struct imgdump_write **out, size_t *n) {
  const struct jval *arr = imgdump__json_get(plan, "writes");
  if (!arr || arr->type != J_ARR) return IMGDUMP_EPROTO;
  size_t count = 0;
  for (const struct jval *e = arr->child; e; e = e->next) count++;
  struct imgdump_write *w = imgdump__scratch_alloc(&j->s, (count + 1) * sizeof *w);
  if (!w) return IMGDUMP_ENOMEM;
  size_t i = 0;
  for (const struct jval *e = arr->child; e; e = e->next, i++) {
    if (imgdump__json_hex(e, "addr", &w[i].addr) || imgdump__json_hex(e, "size", &w[i].size) || imgdump__json_hex(e, "offset", &w[i].offset))
      return IMGDUMP_EPROTO;
    /* Optional: where the previous image holds these bytes (incremental saves). */
    if (imgdump__json_hex(e, "prev", &w[i].prev) || imgdump__json_hex(e, "prevLen", &w[i].prev_len) || j->dirty.method == DIRTY_NONE)
      w[i].prev = IMGDUMP__NO_PREV, w[i].prev_len = 0;
    if (!write_allowed(j, w[i].addr, w[i].size)) {
      imgdump__set_error("the planner asked for memory outside the saved ranges: 0x%llx+0x%llx",
                         (unsigned long long)w[i].addr, (unsigned long long)w[i].size);
      return IMGDUMP_EPROTO;
    }
  }
  *out = w;
  *n = count;
  return 0;
}

/* IMGDUMP_REPORT=1: one line on stderr about what the save wrote and took (docs/commands.md). */
static void report_save(const struct save_job *j, const struct imgdump_write *w, size_t n, const uint64_t *from_prev,
                        uint64_t holes, const struct imgdump_copy_source *copy) {
  const char *on = getenv("IMGDUMP_REPORT");
  if (!on || !strcmp(on, "0")) return;
  uint64_t pages = 0, taken = 0;
  for (size_t i = 0; i < n; i++) pages += (w[i].size + 4095) / 4096, taken += from_prev[i];
  const char *why = j->dirty.why_full;
  char line[512];
  snprintf(line, sizeof line, "imgdump: save generation %llu: tracking %s, %llu pages written, %llu from the previous image "
           "(%llu reflinked, %llu copied), %llu zero pages left as holes%s%s\n", (unsigned long long)j->generation,
           imgdump__dirty_method_name(j->dirty.method), (unsigned long long)(pages - taken - holes), (unsigned long long)taken,
           (unsigned long long)copy->reflinked, (unsigned long long)copy->copied, (unsigned long long)holes,
           why ? ": full because " : "", why ? why : "");
  imgdump__os_stderr(line);
}

static int dirty_page_clean_cb(void *ctx, uint64_t addr, uint64_t prev_off) {
  return imgdump__dirty_page_clean(ctx, addr, prev_off);
}

/* Write the planned ranges and report their CRCs (or the failure). */
static int write_payload(struct save_job *j, int out_fd, const struct imgdump_write *w, size_t n, unsigned flags) {
  uint32_t *crc = imgdump__scratch_alloc(&j->s, (n + 1) * sizeof *crc);
  uint64_t *from_prev = imgdump__scratch_alloc(&j->s, (n + 1) * sizeof *from_prev);
  uint64_t written = 0, holes = 0;
  struct imgdump_copy_source copy = {.fd = j->dirty.prev_fd, .page_clean = dirty_page_clean_cb, .ctx = &j->dirty};
  struct imgdump_copy_source *src = j->dirty.method != DIRTY_NONE ? &copy : NULL;
  int rc = crc && from_prev ? 0 : -ENOMEM;
  if (!rc && save_fault_armed("mid-write")) { /* die with part of the payload written */
    imgdump__write_ranges_from(out_fd, w, n > 1 ? n / 2 : n, crc, j->generation, flags, &written, src, from_prev, &holes);
    save_fault("mid-write");
  }
  if (!rc) rc = imgdump__write_ranges_from(out_fd, w, n, crc, j->generation, flags, &written, src, from_prev, &holes);
  size_t cap = 256 + n * 36;
  char *msg = imgdump__scratch_alloc(&j->s, cap);
  if (!msg) return IMGDUMP_ENOMEM;
  struct jw jw = {msg, cap, 0, 0};
  if (rc) {
    imgdump__jw_fmt(&jw, "{\"t\":\"failed\",\"id\":%u,\"errno\":%d,\"message\":", j->id, -rc);
    imgdump__jw_str(&jw, strerror(-rc));
    imgdump__jw_raw(&jw, "}");
  } else {
    save_fault("written");
    imgdump__jw_fmt(&jw, "{\"t\":\"written\",\"id\":%u,\"crc32c\":[", j->id);
    for (size_t i = 0; i < n; i++) imgdump__jw_fmt(&jw, i ? ",%u" : "%u", crc[i]);
    imgdump__jw_raw(&jw, "],\"bytes\":");
    imgdump__jw_hex(&jw, written);
    /* Pages of each write that came from the previous image, and how (protocol v1 addition). */
    imgdump__jw_fmt(&jw, ",\"tracking\":\"%s\",\"fromPrevious\":[", imgdump__dirty_method_name(j->dirty.method));
    for (size_t i = 0; i < n; i++) imgdump__jw_fmt(&jw, i ? ",%llu" : "%llu", (unsigned long long)from_prev[i]);
    imgdump__jw_fmt(&jw, "],\"reflinked\":%llu,\"copied\":%llu,\"holes\":%llu}", (unsigned long long)copy.reflinked,
           (unsigned long long)copy.copied, (unsigned long long)holes);
  }
  int sent = imgdump__planner_send(&j->planner, msg);
  if (!rc) report_save(j, w, n, from_prev, holes, &copy);
  if (rc) {
    imgdump__set_error("writing the image failed: %s", strerror(-rc));
    return rc == -EFBIG ? IMGDUMP_EFBIG : IMGDUMP_EIO;
  }
  return sent;
}

/* hello → save → plan(+fd) → pwrite → written → done. */
static int run_protocol(struct save_job *j) {
  int rc = imgdump__planner_open(&j->planner, &j->s);
  if (rc) return rc;
  save_fault("hello");
  struct dirty_range ranges[IMGDUMP_MAX_REGIONS + 8];
  imgdump__dirty_begin(&j->dirty, ranges, saved_ranges(j, ranges, sizeof ranges / sizeof ranges[0]));
  j->brk = j->heap->brk; /* from here on: no heap allocation until the payload is written */
  char *msg = save_message(j);
  if (!msg) { rc = IMGDUMP_ENOMEM; goto close_planner; }
  if ((rc = imgdump__planner_send(&j->planner, msg))) goto close_planner;
  struct jval *plan;
  int out_fd = -1;
  if ((rc = expect(j, "plan", &plan, &out_fd))) goto close_out;
  save_fault("plan-received");
  if (out_fd < 0) { imgdump__set_error("the planner sent no output file"); rc = IMGDUMP_EPROTO; goto close_planner; }
  struct imgdump_write *writes;
  size_t n;
  if ((rc = parse_writes(j, plan, &writes, &n))) goto close_out;
  const struct jval *flush = imgdump__json_get(plan, "flush");
  unsigned flags = flush && flush->type == J_BOOL && flush->boolean ? IMGDUMP__WRITE_FLUSH : 0;
  if ((rc = write_payload(j, out_fd, writes, n, flags))) goto close_out;
  if (j->mode == IMGDUMP_CONTINUE) { /* the next save's previous image; read-only (see imgdump__dirty_end) */
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", out_fd);
    j->image_ro = open(self, O_RDONLY | O_CLOEXEC);
  }
  close(out_fd);
  out_fd = -1;
  struct jval *done;
  if ((rc = expect(j, "done", &done, &out_fd))) goto close_out;
close_out:
  if (out_fd >= 0) close(out_fd);
close_planner:
  imgdump__planner_close(&j->planner);
  return rc;
}

/* IMGDUMP_EXEC: continue in the new image (same PID), pinned so it need not re-exec. */
static int exec_image(const char *path) {
  struct scratch s;
  if (imgdump__scratch_open(&s, 1 << 20)) return IMGDUMP_EEXEC;
  size_t len;
  char *args = imgdump__read_proc_file(&s, "/proc/self/cmdline", &len);
  size_t n = 0;
  for (size_t i = 0; args && i < len; i++) n += args[i] == 0;
  char **argv = imgdump__scratch_alloc(&s, (n + 1) * sizeof *argv);
  if (!args || !argv) { imgdump__scratch_close(&s); return IMGDUMP_EEXEC; }
  size_t k = 0;
  for (size_t i = 0; i < len; i += strlen(args + i) + 1) argv[k++] = args + i;
  argv[k] = NULL;
  imgdump__pin_for_exec();
  fflush(NULL);
  execve(path, argv, environ);
  int err = errno;
  imgdump__pin_release_children();
  imgdump__set_error("the image %s was written but cannot be executed: %s", path, strerror(err));
  imgdump__scratch_close(&s);
  return IMGDUMP_EEXEC;
}

static int check_preconditions(struct save_job *j) {
  const struct startup_facts *f = imgdump__facts();
  if (f->personality_errno) {
    imgdump__set_error("personality(ADDR_NO_RANDOMIZE) was denied (%s): this process runs with a randomised "
                       "layout and an image of it could not be restored", strerror(f->personality_errno));
    return IMGDUMP_EPERSONALITY;
  }
  int threads = count_threads();
  if (threads > 1) {
    imgdump__set_error("%d threads are running; only the saving thread may run (stop or join the others in an "
                       "imgdump_on_save hook)", threads);
    return IMGDUMP_ETHREADS;
  }
  (void)j;
  return 0;
}

int imgdump__save_with_id(const char *path, unsigned flags, unsigned id) {
  if (!path || !*path || flags > IMGDUMP_EXIT) return IMGDUMP_EINVAL;
  struct imgdump_heap_header *heap = imgdump__heap();
  if (!heap) return IMGDUMP_ENOHEAP;
  if (__atomic_exchange_n(&heap->save_in_progress, 1, __ATOMIC_ACQ_REL)) {
    imgdump__set_error("imgdump_save was called while a save is in progress");
    return IMGDUMP_EBUSY;
  }
  struct save_job j = {.heap = heap, .id = id, .mode = flags, .image_ro = -1};
  j.dirty.prev_fd = j.dirty.pagemap_fd = -1;
  imgdump__run_hooks(IMGDUMP_HOOK_SAVE);
  save_fault("hooks");
  int rc = check_preconditions(&j);
  if (!rc && imgdump__scratch_open(&j.s, 8u << 20)) rc = IMGDUMP_ENOMEM;
  if (!rc) {
    fflush(NULL); /* pending stdio goes out once, now, not again from the image */
    uint64_t base = (uint64_t)imgdump_restored();
    j.generation = (saves.last_generation > base ? saves.last_generation : base) + 1;
    j.path = absolute_path(&j.s, path);
    /* A file-size limit must give EFBIG, not kill the runtime (DESIGN §4). */
    sigset_t xfsz, old;
    sigemptyset(&xfsz);
    sigaddset(&xfsz, SIGXFSZ);
    sigprocmask(SIG_BLOCK, &xfsz, &old);
    rc = j.path ? run_protocol(&j) : IMGDUMP_EINVAL;
    sigset_t pending;
    struct timespec now = {0, 0};
    if (sigpending(&pending) == 0 && sigismember(&pending, SIGXFSZ) && !sigismember(&old, SIGXFSZ))
      sigtimedwait(&xfsz, NULL, &now); /* consume it: the EFBIG was already reported */
    sigprocmask(SIG_SETMASK, &old, NULL);
    imgdump__dirty_end(&j.dirty, rc == 0, flags == IMGDUMP_CONTINUE, j.image_ro, j.generation);
    j.image_ro = -1;
    if (!rc) saves.last_generation = j.generation;
  }
  __atomic_store_n(&heap->save_in_progress, 0, __ATOMIC_RELEASE);
  if (!rc && flags == IMGDUMP_EXIT) exit(0);
  if (!rc && flags == IMGDUMP_EXEC) rc = exec_image(j.path);
  imgdump__scratch_close(&j.s);
  return rc;
}

int imgdump_save(const char *path, unsigned flags) {
  return imgdump__save_with_id(path, flags, 0);
}

/* An outside request (`imgdump save <session>`) arrives on the control socket; it is
 * served here, at a point the runtime declared safe. */
void imgdump_safepoint(void) {
  if (imgdump__control_fd() < 0) return;
  if (!deferred_pending() && imgdump__control_idle()) return;
  struct scratch s;
  if (imgdump__scratch_open(&s, 1 << 20)) return;
  struct planner p;
  char *line;
  int fd = -1;
  if (imgdump__planner_open(&p, &s) == 0 && (take_deferred(&s, &line) || imgdump__planner_recv(&p, &s, &line, &fd, 0) == 0)) {
    if (fd >= 0) close(fd);
    struct jval *v = imgdump__json_parse(&s, line);
    const char *t = imgdump__json_str(v, "t"), *path = imgdump__json_str(v, "path"), *mode = imgdump__json_str(v, "mode");
    double id = 0;
    imgdump__json_num(v, "id", &id);
    if (t && !strcmp(t, "request-save") && path) {
      unsigned flags = mode && !strcmp(mode, "exec") ? IMGDUMP_EXEC : mode && !strcmp(mode, "exit") ? IMGDUMP_EXIT : IMGDUMP_CONTINUE;
      int rc = imgdump__save_with_id(path, flags, (unsigned)id);
      if (rc && rc != IMGDUMP_EREFUSED && rc != IMGDUMP_EPROTO && rc != IMGDUMP_EPLANNER && rc != IMGDUMP_EIO &&
          rc != IMGDUMP_EFBIG) {
        /* Refused before talking to the planner: tell it, so `imgdump save` does not wait. */
        char buf[1400];
        struct jw w = {buf, sizeof buf, 0, 0};
        imgdump__jw_fmt(&w, "{\"t\":\"refused\",\"id\":%u,\"code\":%d,\"message\":", (unsigned)id, rc);
        char text[1100];
        snprintf(text, sizeof text, "%s: %s", imgdump_strerror(rc), imgdump_last_error());
        imgdump__jw_str(&w, text);
        imgdump__jw_raw(&w, "}");
        imgdump__planner_send(&p, buf);
      }
    }
  }
  imgdump__scratch_close(&s);
}
