/* Messages of the IMGDUMP_E* codes: one table, indexed by -code. */
#include "imgdump.h"

static const char *const messages[] = {
    [0] = "success",
    [-IMGDUMP_EINVAL] = "invalid argument",
    [-IMGDUMP_ENOMEM] = "heap reservation exhausted or table full",
    [-IMGDUMP_ETHREADS] = "more than one thread is running; stop or join helper threads in an on-save hook",
    [-IMGDUMP_EBUSY] = "a save is already in progress",
    [-IMGDUMP_EACCES] = "the image path cannot be written",
    [-IMGDUMP_EPLANNER] = "the imgdump planner could not be started or reached (is imgdump on PATH or IMGDUMP_CLI set?)",
    [-IMGDUMP_EPROTO] = "protocol error talking to the imgdump planner",
    [-IMGDUMP_EIO] = "I/O error while writing the image",
    [-IMGDUMP_EFBIG] = "file size limit (RLIMIT_FSIZE) reached while writing the image",
    [-IMGDUMP_EPERSONALITY] = "personality(ADDR_NO_RANDOMIZE) was denied (seccomp profile?)",
    [-IMGDUMP_EREFUSED] = "the planner refused to save this runtime",
    [-IMGDUMP_ENOHEAP] = "the heap segment could not be reserved at its fixed address",
    [-IMGDUMP_ENOSYM] = "symbol not found",
    [-IMGDUMP_EEXEC] = "the image was written but could not be executed",
    [-IMGDUMP_ECANCELED] = "the save was cancelled",
};

const char *imgdump_strerror(int code) {
  if (code > 0 || -code >= (int)(sizeof messages / sizeof messages[0]) || !messages[-code])
    return "unknown error";
  return messages[-code];
}
