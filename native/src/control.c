#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "imgdump.h"
#include "internal.h"
#include "json-lite.h"

#define LINE_MAX_BYTES (1u << 20)

extern char **environ;

/* Transport state of this exec: bytes received past the last line, the pending fd, hello
 * sent. Process-local: the image starts with it zeroed (IMGDUMP_PROCESS_LOCAL). */
IMGDUMP_PROCESS_LOCAL static struct {
  char *buf; /* anonymous mapping of LINE_MAX_BYTES */
  size_t len;
  int pending_fd; /* valid when has_fd */
  int has_fd;
  int hello_done;
  int fd_known; /* imgdump__control_fd below was looked up in this exec */
  int fd;
} io;


static int control_fd_lookup(void);

/* Safe points call this often: look the socket up once per exec. */
int imgdump__control_fd(void) {
  if (!io.fd_known) {
    io.fd = control_fd_lookup();
    io.fd_known = 1;
  }
  return io.fd;
}

int imgdump__control_idle(void) {
  if (!io.hello_done || io.len > 0) return 0; /* not connected yet, or a line is buffered */
  struct pollfd pf = {io.fd, POLLIN, 0};
  return poll(&pf, 1, 0) == 0;
}

static int control_fd_lookup(void) {
  const char *v = getenv("IMGDUMP_CONTROL_FD");
  if (!v || !*v) return -1;
  char *end;
  long fd = strtol(v, &end, 10);
  if (*end || fd < 0 || fd > 65535 || fcntl((int)fd, F_GETFD) == -1) return -1;
  return (int)fd;
}

/* The planner's environment: ours without the library's own settings, so that Node neither
 * preloads libimgdump nor pins its own layout (DESIGN §3). */
static char **planner_environment(struct scratch *s) {
  size_t n = 0;
  while (environ[n]) n++;
  char **env = imgdump__scratch_alloc(s, (n + 1) * sizeof *env);
  if (!env) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    const char *e = environ[i];
    if (!strncmp(e, "LD_PRELOAD=", 11) && strstr(e, "libimgdump")) continue;
    if (!strncmp(e, "IMGDUMP_HEAP_", 13) || !strncmp(e, "IMGDUMP_CONTROL_FD=", 19) ||
        !strncmp(e, "IMGDUMP_REEXEC=", 15) || !strncmp(e, "IMGDUMP_PIN_STACK=", 18))
      continue;
    env[k++] = (char *)e;
  }
  env[k] = NULL;
  return env;
}

static int spawn_planner(struct planner *p, struct scratch *s) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) return IMGDUMP_EPLANNER;
  const char *cli = getenv("IMGDUMP_CLI");
  const char *argv[6];
  int a = 0;
  if (cli && *cli) {
    size_t n = strlen(cli);
    if (n > 3 && !strcmp(cli + n - 3, ".js")) argv[a++] = "node";
    argv[a++] = cli;
  } else {
    argv[a++] = "imgdump";
  }
  argv[a++] = "plan-save";
  argv[a++] = "--fd";
  argv[a++] = "3";
  argv[a] = NULL;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, sv[1], 3); /* dup2 clears close-on-exec on fd 3 */
  char **env = planner_environment(s);
  pid_t pid;
  int rc = env ? posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, env) : ENOMEM;
  posix_spawn_file_actions_destroy(&fa);
  close(sv[1]);
  if (rc) {
    close(sv[0]);
    imgdump__set_error("cannot start the planner %s: %s", argv[0], strerror(rc));
    return IMGDUMP_EPLANNER;
  }
  p->fd = sv[0];
  p->child = pid;
  return 0;
}

static int hello(struct planner *p, struct scratch *s) {
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[n > 0 ? n : 0] = 0;
  char buf[8192];
  struct jw w = {buf, sizeof buf, 0, 0};
  imgdump__jw_fmt(&w, "{\"t\":\"hello\",\"v\":1,\"pid\":%d,\"api\":%d,\"exe\":", (int)getpid(), IMGDUMP_API_VERSION);
  imgdump__jw_str(&w, exe);
  imgdump__jw_raw(&w, "}");
  if (w.overflow) return IMGDUMP_EPROTO;
  int rc = imgdump__planner_send(p, buf);
  char *line;
  int fd;
  if (!rc) rc = imgdump__planner_recv(p, s, &line, &fd, -1);
  if (rc) return rc;
  struct jval *v = imgdump__json_parse(s, line);
  const char *t = imgdump__json_str(v, "t");
  if (!t || strcmp(t, "welcome")) {
    const char *msg = imgdump__json_str(v, "message");
    imgdump__set_error("planner refused the connection: %s", msg ? msg : line);
    return IMGDUMP_EPROTO;
  }
  return 0;
}

int imgdump__planner_open(struct planner *p, struct scratch *s) {
  p->fd = imgdump__control_fd();
  p->child = 0;
  if (p->fd < 0) {
    /* A fresh connection: forget bytes of any previous standalone planner. */
    io.len = 0;
    io.has_fd = 0;
    int rc = spawn_planner(p, s);
    if (rc) return rc;
    rc = hello(p, s);
    if (rc) imgdump__planner_close(p);
    return rc;
  }
  if (io.hello_done) return 0;
  int rc = hello(p, s);
  if (!rc) io.hello_done = 1;
  return rc;
}

void imgdump__planner_close(struct planner *p) {
  if (p->child) {
    close(p->fd);
    int status;
    while (waitpid(p->child, &status, 0) == -1 && errno == EINTR) {}
    p->child = 0;
    p->fd = -1;
    io.len = 0;
  }
}

int imgdump__planner_send(struct planner *p, const char *line) {
  size_t n = strlen(line);
  struct iovec iov[2] = {{(void *)line, n}, {"\n", 1}};
  struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
  size_t total = n + 1, sent = 0;
  while (sent < total) {
    ssize_t r = sendmsg(p->fd, &mh, MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) { struct pollfd pf = {p->fd, POLLOUT, 0}; poll(&pf, 1, -1); continue; }
      imgdump__set_error("lost the connection to the planner: %s", strerror(errno));
      return IMGDUMP_EPLANNER;
    }
    sent += (size_t)r;
    /* advance the iovecs past what was sent */
    size_t skip = (size_t)r;
    while (mh.msg_iovlen && skip >= mh.msg_iov->iov_len) { skip -= mh.msg_iov->iov_len; mh.msg_iov++; mh.msg_iovlen--; }
    if (mh.msg_iovlen) { mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + skip; mh.msg_iov->iov_len -= skip; }
  }
  return 0;
}

/* One recvmsg into the buffer, keeping any descriptor that arrives. */
static int receive_some(struct planner *p, int timeout_ms) {
  struct pollfd pf = {p->fd, POLLIN, 0};
  int pr;
  while ((pr = poll(&pf, 1, timeout_ms)) < 0 && errno == EINTR) {}
  if (pr == 0) return 1;
  if (io.len >= LINE_MAX_BYTES) return IMGDUMP_EPROTO;
  union { struct cmsghdr h; char space[CMSG_SPACE(sizeof(int) * 4)]; } ctl;
  struct iovec iov = {io.buf + io.len, LINE_MAX_BYTES - io.len};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.space, .msg_controllen = sizeof ctl.space};
  ssize_t r;
  while ((r = recvmsg(p->fd, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {}
  if (r <= 0) {
    imgdump__set_error("the planner closed the connection%s", r < 0 ? " with an error" : "");
    return IMGDUMP_EPLANNER;
  }
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    int nfds = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    int fds[4];
    memcpy(fds, CMSG_DATA(c), sizeof(int) * (size_t)(nfds > 4 ? 4 : nfds));
    for (int i = 0; i < nfds && i < 4; i++) {
      if (io.has_fd) close(io.pending_fd);
      io.pending_fd = fds[i];
      io.has_fd = 1;
    }
  }
  io.len += (size_t)r;
  return 0;
}

int imgdump__planner_recv(struct planner *p, struct scratch *s, char **line, int *fd_out, int timeout_ms) {
  if (!io.buf) {
    struct scratch b;
    if (imgdump__scratch_open(&b, LINE_MAX_BYTES)) return IMGDUMP_ENOMEM;
    io.buf = b.base; /* lives for the rest of this exec */
  }
  for (;;) {
    char *nl = memchr(io.buf, '\n', io.len);
    if (nl) {
      size_t n = (size_t)(nl - io.buf);
      char *out = imgdump__scratch_alloc(s, n + 1);
      if (!out) return IMGDUMP_ENOMEM;
      memcpy(out, io.buf, n);
      out[n] = 0;
      memmove(io.buf, nl + 1, io.len - n - 1);
      io.len -= n + 1;
      *line = out;
      *fd_out = io.has_fd ? io.pending_fd : -1;
      io.has_fd = 0;
      return 0;
    }
    int rc = receive_some(p, timeout_ms);
    if (rc) return rc;
    timeout_ms = timeout_ms == 0 ? -1 : timeout_ms; /* a line has begun: wait for its end */
  }
}
