#include "pin.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "process-facts.h"
#include "scratch.h"

void imgdump__pin_probe(struct pin_state *st) {
  int persona = personality(0xffffffff);
  struct rlimit rl;
  memset(st, 0, sizeof *st);
  getrlimit(RLIMIT_STACK, &rl);
  st->stack_limit = rl.rlim_cur;
  st->pinned = persona != -1 && (persona & ADDR_NO_RANDOMIZE) && rl.rlim_cur != RLIM_INFINITY;
}

/* Split a NUL-separated /proc buffer into a NULL-terminated vector, with room for `extra`. */
static char **split_vector(struct scratch *s, char *buf, size_t len, int extra) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++) n += buf[i] == 0;
  char **v = imgdump__scratch_alloc(s, (n + (size_t)extra + 1) * sizeof *v);
  if (!v) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < len; i += strlen(buf + i) + 1) v[k++] = buf + i;
  v[k] = NULL;
  return v;
}

static int env_has(char **envp, const char *name) {
  size_t n = strlen(name);
  for (; *envp; envp++)
    if (!strncmp(*envp, name, n) && (*envp)[n] == '=') return 1;
  return 0;
}

/* The file to exec again: AT_EXECFN keeps the path the user ran (so argv[0], AT_EXECFN and
 * /proc/self/exe look the same to the runtime) — unless that path is a `#!` script, whose
 * process is the interpreter: exec'ing the script again would add its path to argv twice. */
static const char *reexec_path(void) {
  const char *path = (const char *)getauxval(AT_EXECFN);
  struct stat a, b;
  if (path && *path && stat(path, &a) == 0 && stat("/proc/self/exe", &b) == 0 && a.st_dev == b.st_dev &&
      a.st_ino == b.st_ino)
    return path;
  return "/proc/self/exe";
}

int imgdump__pin_reexec(struct pin_state *st, uint64_t stack_limit) {
  struct scratch s = {0};
  int rc = imgdump__scratch_open(&s, 1 << 20);
  if (rc) return rc;
  size_t alen = 0, elen = 0;
  char *args = imgdump__read_proc_file(&s, "/proc/self/cmdline", &alen);
  char *env = imgdump__read_proc_file(&s, "/proc/self/environ", &elen);
  char **argv = args ? split_vector(&s, args, alen, 0) : NULL;
  char **envp = env ? split_vector(&s, env, elen, 2) : NULL;
  if (!argv || !envp || !argv[0]) { imgdump__scratch_close(&s); return -ENOMEM; }
  if (env_has(envp, PIN_REEXEC_ENV)) { imgdump__scratch_close(&s); return -EAGAIN; }

  size_t n = 0;
  while (envp[n]) n++;
  envp[n++] = PIN_REEXEC_ENV "=1";
  struct rlimit rl;
  getrlimit(RLIMIT_STACK, &rl);
  if (rl.rlim_cur == RLIM_INFINITY) {
    char *var = imgdump__scratch_alloc(&s, 64);
    snprintf(var, 64, PIN_STACK_ENV "=unlimited");
    envp[n++] = var;
    rl.rlim_cur = stack_limit && stack_limit < rl.rlim_max ? stack_limit : PIN_DEFAULT_STACK;
    if (setrlimit(RLIMIT_STACK, &rl)) { imgdump__scratch_close(&s); return -errno; }
  }
  envp[n] = NULL;

  int persona = personality(0xffffffff);
  if (persona == -1 || personality((unsigned long)persona | ADDR_NO_RANDOMIZE) == -1) {
    st->denied_errno = errno;
    imgdump__scratch_close(&s);
    return -EPERM;
  }
  execve(reexec_path(), argv, envp);
  rc = -errno;
  execve("/proc/self/exe", argv, envp);
  personality((unsigned long)persona);
  imgdump__scratch_close(&s);
  return rc;
}

void imgdump__pin_release_children(void) {
  int persona = personality(0xffffffff);
  if (persona != -1 && (persona & ADDR_NO_RANDOMIZE)) personality((unsigned long)persona & ~(unsigned long)ADDR_NO_RANDOMIZE);
}

int imgdump__pin_for_exec(void) {
  int persona = personality(0xffffffff);
  if (persona == -1 || personality((unsigned long)persona | ADDR_NO_RANDOMIZE) == -1) return -errno;
  return 0;
}
