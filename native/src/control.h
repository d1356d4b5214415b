/*
 * control.h — the runtime's end of the save protocol's transport (docs/protocol.md):
 * newline-delimited JSON over a Unix stream socket, with the output file's descriptor
 * arriving as SCM_RIGHTS. The planner is either the orchestrator (`imgdump run`, socket
 * inherited as IMGDUMP_CONTROL_FD) or an `imgdump plan-save` spawned for one save.
 */
#ifndef IMGDUMP_CONTROL_H
#define IMGDUMP_CONTROL_H

#include <sys/types.h>
#include "scratch.h"

struct planner {
  int fd;
  pid_t child;    /* standalone planner process, 0 when orchestrated */
};

/* Connect: the inherited control socket, or spawn `imgdump plan-save --fd 3`. Sends hello
 * and waits for welcome (once per exec on the orchestrated socket). 0 or IMGDUMP_E*. */
int imgdump__planner_open(struct planner *p, struct scratch *s);
/* Release: a standalone planner is waited for; the orchestrated socket stays open. */
void imgdump__planner_close(struct planner *p);

/* Send one line (a '\n' is appended). 0 or IMGDUMP_EPLANNER. */
int imgdump__planner_send(struct planner *p, const char *line);
/* Receive one line into the arena, NUL-terminated without its '\n'. A descriptor that
 * arrived with it is stored in *fd_out (else -1). timeout_ms < 0 waits forever; 0 polls.
 * 0, IMGDUMP_EPLANNER (EOF/error), IMGDUMP_EPROTO (line too long), or 1 (poll: nothing). */
int imgdump__planner_recv(struct planner *p, struct scratch *s, char **line, int *fd_out, int timeout_ms);

/* The inherited control socket, or -1 (looked up once per exec). */
int imgdump__control_fd(void);
/* 1 when connected to the orchestrator and nothing is waiting on the socket: a safe point's
 * fast path (one poll with zero timeout, no allocation). */
int imgdump__control_idle(void);

#endif
