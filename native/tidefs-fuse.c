// tidefs's FUSE binding: libfuse 2's low-level (inode based) API served on Node's main thread.
//
// The kernel's /dev/fuse descriptor is polled by libuv; each request is read and handed to libfuse,
// which calls one of the ops below, which calls the JavaScript handler of the same name at once. The
// handler answers later (or at once) through one of the reply functions exported here. There are
// no threads: a request costs one wake-up of the event loop, where fuse-native's high-level binding
// costs a libfuse thread, a hop to the event loop and a hop back, and its path-based API adds
// calls of its own (a getattr after every create, a getattr per lookup).
//
// libfuse 2 predates FUSE_MAX_PAGES (kernel 4.20), so with it the kernel sends at most 32 pages
// (128 KiB) per read or write request. Requests go through a channel of our own here, whose send
// adds FUSE_MAX_PAGES and the page count to libfuse's INIT answer: requests of up to max_write.
//
// After serving what the kernel had queued, the thread keeps looking for the next request for a
// short while (busy polling) before it goes back to sleep in libuv: a client doing one operation
// at a time usually sends its next request within tens of microseconds, and waking a sleeping
// thread costs about as much again on a virtual machine.
//
// A request is named to JavaScript by its fuse_req_t pointer as a number (user-space addresses fit
// in 53 bits). Every request must be answered exactly once; the JavaScript side guarantees that.
#define FUSE_USE_VERSION 29
#define _FILE_OFFSET_BITS 64
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fuse_lowlevel.h>
#include <fuse_kernel.h>
#include <sys/uio.h>
#include <node_api.h>
#include <uv.h>

#define CHECK(call)                                                                     \
  do {                                                                                  \
    if ((call) != napi_ok) {                                                            \
      napi_throw_error(env, NULL, "tidefs-fuse: N-API call failed: " #call);           \
      return NULL;                                                                      \
    }                                                                                   \
  } while (0)

// The JavaScript handlers, by name; a missing one answers ENOSYS.
enum {
  H_LOOKUP, H_GETATTR, H_SETATTR, H_READLINK, H_MKNOD, H_MKDIR, H_UNLINK, H_RMDIR, H_SYMLINK,
  H_RENAME, H_LINK, H_OPEN, H_READ, H_WRITE, H_RELEASE, H_FSYNC, H_OPENDIR, H_READDIR,
  H_RELEASEDIR, H_FSYNCDIR, H_STATFS, H_SETXATTR, H_GETXATTR, H_LISTXATTR, H_REMOVEXATTR,
  H_CREATE, H_COUNT
};
static const char *handler_names[H_COUNT] = {
  "lookup", "getattr", "setattr", "readlink", "mknod", "mkdir", "unlink", "rmdir", "symlink",
  "rename", "link", "open", "read", "write", "release", "fsync", "opendir", "readdir",
  "releasedir", "fsyncdir", "statfs", "setxattr", "getxattr", "listxattr", "removexattr",
  "create",
};

// The kernel's fuse_init_out from protocol 7.28 on (libfuse 2 knows only its first 24 bytes).
struct init_out_with_max_pages {
  uint32_t major, minor, max_readahead, flags;
  uint16_t max_background, congestion_threshold;
  uint32_t max_write, time_gran;
  uint16_t max_pages, map_alignment;
  uint32_t flags2, unused[7];
};
#define INIT_FLAG_MAX_PAGES (1u << 22)

typedef struct {
  napi_env env;
  struct fuse_session *se;
  struct fuse_chan *mount_ch;  // fuse_mount's channel: owns the descriptor
  struct fuse_chan *ch;        // ours, over the same descriptor (see chan_send)
  uint64_t init_unique;        // the INIT request being answered, 0 after
  uint32_t kernel_minor;       // the kernel's protocol minor version, from its INIT request
  uint16_t max_pages;
  uint64_t busy_poll_ns;       // how long to keep looking for the next request before sleeping
  napi_ref on_event;           // JavaScript's onEvent("ready" | "gone")
  char *mountpoint;
  int fd;
  uv_poll_t poll;
  int polling;
  int unmounted;
  char *buf;
  size_t bufsize;
  napi_ref handlers[H_COUNT];
  napi_ref resource;
  napi_async_context async_context;
} session_t;

// ---- calling JavaScript ----

static napi_value num(napi_env env, double value) {
  napi_value v;
  napi_create_double(env, value, &v);
  return v;
}

static napi_value str(napi_env env, const char *value) {
  napi_value v;
  napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v);
  return v;
}

static napi_value copy_of(napi_env env, const void *data, size_t length) {
  napi_value v;
  void *unused;
  napi_create_buffer_copy(env, length, data, &unused, &v);
  return v;
}

static double ms_of(const struct timespec *t) {
  return (double) t->tv_sec * 1e3 + (double) t->tv_nsec / 1e6;
}

/** Calls handler `h` with the request and `argc` more arguments; answers ENOSYS if there is none. */
static void call(fuse_req_t req, int h, size_t argc, napi_value *args) {
  session_t *s = fuse_req_userdata(req);
  napi_env env = s->env;
  napi_value fn, global, result;
  napi_value argv[10];
  // Only functions were referenced at mount.
  if (s->handlers[h] == NULL || napi_get_reference_value(env, s->handlers[h], &fn) != napi_ok || fn == NULL) {
    fuse_reply_err(req, ENOSYS);
    return;
  }
  argv[0] = num(env, (double) (uintptr_t) req);
  for (size_t i = 0; i < argc && i < 9; i++) argv[i + 1] = args[i];
  napi_get_global(env, &global);
  if (napi_call_function(env, global, fn, argc + 1, argv, &result) == napi_pending_exception) {
    // A handler must never throw (it owes the kernel an answer): treat it as the bug it is.
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    napi_fatal_exception(env, error);
  }
}

#define ARGS(...) napi_value args[] = {__VA_ARGS__}; call(req, H, sizeof(args) / sizeof(args[0]), args)

static napi_env env_of(fuse_req_t req) { return ((session_t *) fuse_req_userdata(req))->env; }

static napi_value caller_uid(fuse_req_t req) { return num(env_of(req), fuse_req_ctx(req)->uid); }
static napi_value caller_gid(fuse_req_t req) { return num(env_of(req), fuse_req_ctx(req)->gid); }

// ---- the low-level ops ----

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  napi_env env = env_of(req);
  enum { H = H_LOOKUP }; ARGS(num(env, parent), str(env, name));
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, unsigned long nlookup) {
  // Inodes live in the state machine, not in the kernel's lookup counts.
  fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
  fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  napi_env env = env_of(req);
  enum { H = H_GETATTR }; ARGS(num(env, ino));
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) {
  napi_env env = env_of(req);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  double atime = (to_set & FUSE_SET_ATTR_ATIME_NOW) ? ms_of(&now) : ms_of(&attr->st_atim);
  double mtime = (to_set & FUSE_SET_ATTR_MTIME_NOW) ? ms_of(&now) : ms_of(&attr->st_mtim);
  int valid = to_set;
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) valid |= FUSE_SET_ATTR_ATIME;
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) valid |= FUSE_SET_ATTR_MTIME;
  enum { H = H_SETATTR };
  ARGS(num(env, ino), num(env, valid), num(env, attr->st_mode), num(env, attr->st_uid), num(env, attr->st_gid),
       num(env, (double) attr->st_size), num(env, atime), num(env, mtime));
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  napi_env env = env_of(req);
  enum { H = H_READLINK }; ARGS(num(env, ino));
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  napi_env env = env_of(req);
  enum { H = H_MKNOD }; ARGS(num(env, parent), str(env, name), num(env, mode), caller_uid(req), caller_gid(req));
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  napi_env env = env_of(req);
  enum { H = H_MKDIR }; ARGS(num(env, parent), str(env, name), num(env, mode), caller_uid(req), caller_gid(req));
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
  napi_env env = env_of(req);
  enum { H = H_UNLINK }; ARGS(num(env, parent), str(env, name));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
  napi_env env = env_of(req);
  enum { H = H_RMDIR }; ARGS(num(env, parent), str(env, name));
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name) {
  napi_env env = env_of(req);
  enum { H = H_SYMLINK }; ARGS(str(env, target), num(env, parent), str(env, name), caller_uid(req), caller_gid(req));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname) {
  napi_env env = env_of(req);
  enum { H = H_RENAME }; ARGS(num(env, parent), str(env, name), num(env, newparent), str(env, newname));
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  napi_env env = env_of(req);
  enum { H = H_LINK }; ARGS(num(env, ino), num(env, newparent), str(env, newname));
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  napi_env env = env_of(req);
  enum { H = H_OPEN }; ARGS(num(env, ino), num(env, fi->flags));
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  napi_env env = env_of(req);
  enum { H = H_READ }; ARGS(num(env, ino), num(env, (double) size), num(env, (double) off));
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  napi_env env = env_of(req);
  // The request buffer is reused for the next request: the handler gets its own copy.
  enum { H = H_WRITE }; ARGS(num(env, ino), copy_of(env, buf, size), num(env, (double) off));
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  napi_env env = env_of(req);
  enum { H = H_RELEASE }; ARGS(num(env, ino));
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  napi_env env = env_of(req);
  enum { H = H_FSYNC }; ARGS(num(env, ino));
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  napi_env env = env_of(req);
  enum { H = H_OPENDIR }; ARGS(num(env, ino));
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  napi_env env = env_of(req);
  enum { H = H_READDIR }; ARGS(num(env, (double) fi->fh), num(env, (double) size), num(env, (double) off));
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  napi_env env = env_of(req);
  enum { H = H_RELEASEDIR }; ARGS(num(env, (double) fi->fh));
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  napi_env env = env_of(req);
  enum { H = H_FSYNCDIR }; ARGS(num(env, ino));
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino) {
  napi_env env = env_of(req);
  enum { H = H_STATFS }; ARGS(num(env, ino));
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) {
  napi_env env = env_of(req);
  enum { H = H_SETXATTR }; ARGS(num(env, ino), str(env, name), copy_of(env, value, size), num(env, flags));
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  // tidefs stores no security.* or system.* attributes (capabilities, SELinux labels, POSIX ACLs):
  // the kernel's probes for them (one per write(2), two per `ls -l` entry) are answered here.
  if (strncmp(name, "security.", 9) == 0 || strncmp(name, "system.", 7) == 0) {
    fuse_reply_err(req, ENODATA);
    return;
  }
  napi_env env = env_of(req);
  enum { H = H_GETXATTR }; ARGS(num(env, ino), str(env, name), num(env, (double) size));
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  napi_env env = env_of(req);
  enum { H = H_LISTXATTR }; ARGS(num(env, ino), num(env, (double) size));
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
  napi_env env = env_of(req);
  enum { H = H_REMOVEXATTR }; ARGS(num(env, ino), str(env, name));
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
  napi_env env = env_of(req);
  enum { H = H_CREATE }; ARGS(num(env, parent), str(env, name), num(env, mode), num(env, fi->flags), caller_uid(req), caller_gid(req));
}

// No flush: nothing happens at each close(2) (the write-back starts at the last release); libfuse
// answers ENOSYS once and the kernel stops sending it. No access: with default_permissions the
// kernel checks modes itself, without it every access is allowed (as before).
static const struct fuse_lowlevel_ops ops = {
  .lookup = op_lookup,
  .forget = op_forget,
  .forget_multi = op_forget_multi,
  .getattr = op_getattr,
  .setattr = op_setattr,
  .readlink = op_readlink,
  .mknod = op_mknod,
  .mkdir = op_mkdir,
  .unlink = op_unlink,
  .rmdir = op_rmdir,
  .symlink = op_symlink,
  .rename = op_rename,
  .link = op_link,
  .open = op_open,
  .read = op_read,
  .write = op_write,
  .release = op_release,
  .fsync = op_fsync,
  .opendir = op_opendir,
  .readdir = op_readdir,
  .releasedir = op_releasedir,
  .fsyncdir = op_fsyncdir,
  .statfs = op_statfs,
  .setxattr = op_setxattr,
  .getxattr = op_getxattr,
  .listxattr = op_listxattr,
  .removexattr = op_removexattr,
  .create = op_create,
};

// ---- the channel ----

static int chan_receive(struct fuse_chan **chp, char *buf, size_t size) {
  return -EIO;  // never called: on_readable reads the requests
}

static int chan_send(struct fuse_chan *ch, const struct iovec iov[], size_t count) {
  session_t *s = fuse_chan_data(ch);
  struct fuse_out_header header;
  struct init_out_with_max_pages init;
  struct iovec patched[2];
  if (s->init_unique != 0 && count == 2 && iov[0].iov_len == sizeof(header) &&
      ((const struct fuse_out_header *) iov[0].iov_base)->unique == s->init_unique) {
    s->init_unique = 0;
    memcpy(&header, iov[0].iov_base, sizeof(header));
    // FUSE_MAX_PAGES and the longer answer exist from protocol 7.28 on (Linux 4.20).
    if (header.error == 0 && s->kernel_minor >= 28 && iov[1].iov_len == sizeof(struct fuse_init_out)) {
      memset(&init, 0, sizeof(init));
      memcpy(&init, iov[1].iov_base, sizeof(struct fuse_init_out));
      init.flags |= INIT_FLAG_MAX_PAGES;
      init.max_pages = s->max_pages;
      header.len = sizeof(header) + sizeof(init);
      patched[0] = (struct iovec) {&header, sizeof(header)};
      patched[1] = (struct iovec) {&init, sizeof(init)};
      iov = patched;
    }
  }
  if (writev(fuse_chan_fd(ch), iov, count) == -1) return -errno;  // ENOENT: the request was interrupted
  return 0;
}

static void chan_destroy(struct fuse_chan *ch) {
  // The descriptor is fuse_mount's channel's, closed by fuse_unmount.
}

static struct fuse_chan_ops chan_ops = {.receive = chan_receive, .send = chan_send, .destroy = chan_destroy};

// ---- the request loop ----

static void stop_polling(session_t *s) {
  if (s->polling) {
    uv_poll_stop(&s->poll);
    s->polling = 0;
  }
}

/** Tells JavaScript's onEvent about the session (inside on_readable's scopes). */
static void emit(session_t *s, const char *event) {
  napi_value fn, global, result, arg = str(s->env, event);
  if (napi_get_reference_value(s->env, s->on_event, &fn) != napi_ok || fn == NULL) return;
  napi_get_global(s->env, &global);
  if (napi_call_function(s->env, global, fn, 1, &arg, &result) == napi_pending_exception) {
    napi_value error;
    napi_get_and_clear_last_exception(s->env, &error);
    napi_fatal_exception(s->env, error);
  }
}

/** Requests served per wake-up of the event loop at most, so that timers and other events get a turn. */
#define REQUESTS_PER_TURN 64

/** Reads and serves the requests the kernel has queued, at most `limit`; returns how many. */
static int serve_queued(session_t *s, int limit) {
  napi_env env = s->env;
  napi_handle_scope handles;
  napi_callback_scope scope;
  napi_value resource;
  napi_open_handle_scope(env, &handles);
  napi_get_reference_value(env, s->resource, &resource);
  // Promise jobs and nextTicks queued by the handlers run when this scope closes.
  napi_open_callback_scope(env, resource, s->async_context, &scope);
  int served = 0;
  while (served < limit && s->polling) {
    ssize_t n = read(s->fd, s->buf, s->bufsize);
    if (n < 0) {
      if (errno == EINTR || errno == ENOENT) continue;  // ENOENT: the request was interrupted
      if (errno != EAGAIN) {  // ENODEV: the connection is gone (unmounted, or aborted)
        stop_polling(s);
        emit(s, "gone");
      }
      break;
    }
    const struct fuse_in_header *in = (const struct fuse_in_header *) s->buf;
    int is_init = (size_t) n >= sizeof(*in) + sizeof(struct fuse_init_in) && in->opcode == FUSE_INIT;
    if (is_init) {
      s->init_unique = in->unique;
      s->kernel_minor = ((const struct fuse_init_in *) (in + 1))->minor;
    }
    napi_handle_scope request_handles;
    napi_open_handle_scope(env, &request_handles);
    fuse_session_process(s->se, s->buf, (size_t) n, s->ch);
    if (is_init) emit(s, "ready");
    napi_close_handle_scope(env, request_handles);
    served++;
  }
  napi_close_callback_scope(env, scope);
  napi_close_handle_scope(env, handles);
  return served;
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t) t.tv_sec * 1000000000u + (uint64_t) t.tv_nsec;
}

/**
 * Whether a request arrives within `ns`, looked for without sleeping. Gives up at once when
 * anything else is ready for the event loop (libuv's epoll descriptor is readable): a file read
 * finished by libuv's threads, a message from the S3 worker.
 */
static int request_within(session_t *s, uint64_t ns) {
  struct pollfd pfd[2] = {{.fd = s->fd, .events = POLLIN}, {.fd = uv_backend_fd(s->poll.loop), .events = POLLIN}};
  for (uint64_t until = now_ns() + ns; now_ns() < until;) {
    if (poll(pfd, 2, 0) > 0) return (pfd[0].revents & POLLIN) != 0;
  }
  return 0;
}

/**
 * libuv saw /dev/fuse readable: serve, and busy-poll while requests keep coming (see the top), up
 * to REQUESTS_PER_TURN in all: timers (which never make a descriptor readable) must run too.
 */
static void on_readable(uv_poll_t *handle, int status, int events) {
  session_t *s = handle->data;
  int total = 0;
  for (;;) {
    int left = REQUESTS_PER_TURN - total;
    int served = serve_queued(s, left);
    total += served;
    if (served == 0 || served == left || !s->polling || s->busy_poll_ns == 0) return;
    if (!request_within(s, s->busy_poll_ns)) return;
  }
}

static napi_value get_string(napi_env env, napi_value value, char **out) {
  size_t length;
  CHECK(napi_get_value_string_utf8(env, value, NULL, 0, &length));
  *out = malloc(length + 1);
  CHECK(napi_get_value_string_utf8(env, value, *out, length + 1, &length));
  return value;
}

static int make_args(struct fuse_args *args, const char *options) {
  *args = (struct fuse_args) FUSE_ARGS_INIT(0, NULL);
  if (fuse_opt_add_arg(args, "tidefs") != 0) return -1;
  if (options[0] == '\0') return 0;
  if (fuse_opt_add_arg(args, "-o") != 0 || fuse_opt_add_arg(args, options) != 0) return -1;
  return 0;
}

/** mount(mountpoint, mountOptions, sessionOptions, maxWrite, busyPollUs, handlers, onEvent) -> session */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7], session_value;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char *mountpoint = NULL, *mount_options = NULL, *session_options = NULL;
  napi_valuetype on_event_type = napi_undefined;
  if (argc >= 7) napi_typeof(env, argv[6], &on_event_type);
  if (argc < 7 || on_event_type != napi_function || get_string(env, argv[0], &mountpoint) == NULL || get_string(env, argv[1], &mount_options) == NULL ||
      get_string(env, argv[2], &session_options) == NULL) {
    free(mountpoint);
    free(mount_options);
    free(session_options);
    napi_throw_type_error(env, NULL, "mount(mountpoint, mountOptions, sessionOptions, maxWrite, busyPollUs, handlers, onEvent)");
    return NULL;
  }
  session_t *s = calloc(1, sizeof(session_t));
  s->env = env;
  // The handlers first: nothing may fail once the file system is mounted.
  for (int h = 0; h < H_COUNT; h++) {
    napi_value fn;
    napi_valuetype type;
    if (napi_get_named_property(env, argv[5], handler_names[h], &fn) == napi_ok &&
        napi_typeof(env, fn, &type) == napi_ok && type == napi_function) {
      napi_create_reference(env, fn, 1, &s->handlers[h]);
    }
  }
  napi_create_reference(env, argv[6], 1, &s->on_event);
  napi_value resource;
  napi_create_object(env, &resource);
  napi_create_reference(env, resource, 1, &s->resource);
  napi_async_init(env, resource, str(env, "tidefs:fuse"), &s->async_context);
  s->mountpoint = mountpoint;
  size_t page = (size_t) getpagesize();
  double max_write = 0;
  napi_get_value_double(env, argv[3], &max_write);
  s->max_pages = (uint16_t) (max_write / page < 1 ? 1 : max_write / page > 256 ? 256 : max_write / page);
  double busy_poll_us = 0;
  napi_get_value_double(env, argv[4], &busy_poll_us);
  s->busy_poll_ns = busy_poll_us > 0 ? (uint64_t) (busy_poll_us * 1000) : 0;
  s->bufsize = (size_t) s->max_pages * page + page;
  s->buf = malloc(s->bufsize);
  struct fuse_args margs, sargs;
  const char *failure = NULL;
  if (s->buf == NULL || make_args(&margs, mount_options) != 0 || make_args(&sargs, session_options) != 0) {
    failure = "out of memory";
  } else if ((s->mount_ch = fuse_mount(mountpoint, &margs)) == NULL) {
    failure = "the kernel refused the mount (see the message above)";
  } else if ((s->ch = fuse_chan_new(&chan_ops, fuse_chan_fd(s->mount_ch), s->bufsize, s)) == NULL ||
             (s->se = fuse_lowlevel_new(&sargs, &ops, sizeof(ops), s)) == NULL) {
    fuse_unmount(mountpoint, s->mount_ch);
    failure = "libfuse refused the session options";
  }
  fuse_opt_free_args(&margs);
  fuse_opt_free_args(&sargs);
  free(mount_options);
  free(session_options);
  if (failure) {
    for (int h = 0; h < H_COUNT; h++) {
      if (s->handlers[h] != NULL) napi_delete_reference(env, s->handlers[h]);
    }
    napi_async_destroy(env, s->async_context);
    napi_delete_reference(env, s->resource);
    napi_delete_reference(env, s->on_event);
    free(mountpoint);
    free(s->buf);
    free(s);
    napi_throw_error(env, NULL, failure);
    return NULL;
  }
  fuse_session_add_chan(s->se, s->ch);
  s->fd = fuse_chan_fd(s->ch);
  fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK);
  // A child process must not hold the connection open after this process is gone.
  fcntl(s->fd, F_SETFD, fcntl(s->fd, F_GETFD) | FD_CLOEXEC);
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  uv_poll_init(loop, &s->poll, s->fd);
  s->poll.data = s;
  uv_poll_start(&s->poll, UV_READABLE, on_readable);
  s->polling = 1;
  napi_create_external(env, s, NULL, NULL, &session_value);
  return session_value;
}

static session_t *session_arg(napi_env env, napi_value value) {
  void *s = NULL;
  if (napi_get_value_external(env, value, &s) != napi_ok) napi_throw_type_error(env, NULL, "not a session");
  return s;
}

/**
 * unmount(session): stops serving and detaches the mount (lazily, if files are still open). The
 * session's memory is kept: a handler still running may answer later, and its answer must find
 * libfuse's structures intact (the JavaScript side drops answers after unmount).
 */
static napi_value js_unmount(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session_t *s = session_arg(env, argv[0]);
  if (s == NULL || s->unmounted) return NULL;
  s->unmounted = 1;
  stop_polling(s);
  uv_close((uv_handle_t *) &s->poll, NULL);
  fuse_session_remove_chan(s->ch);
  fuse_unmount(s->mountpoint, s->mount_ch);  // closes the descriptor, then umount2(MNT_DETACH) as root
  return NULL;
}

// ---- replies ----

static fuse_req_t req_arg(napi_env env, napi_value value) {
  double d = 0;
  napi_get_value_double(env, value, &d);
  return (fuse_req_t) (uintptr_t) d;
}

static double double_arg(napi_env env, napi_value value) {
  double d = 0;
  napi_get_value_double(env, value, &d);
  return d;
}

/** Attributes come as a Float64Array: ino, mode, nlink, uid, gid, size, atimeMs, mtimeMs, ctimeMs. */
static int stat_arg(napi_env env, napi_value value, struct stat *st) {
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_typedarray_info(env, value, &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_float64_array || length < 9) {
    napi_throw_type_error(env, NULL, "attributes must be a Float64Array of 9");
    return -1;
  }
  const double *a = data;
  memset(st, 0, sizeof(*st));
  st->st_ino = (ino_t) a[0];
  st->st_mode = (mode_t) a[1];
  st->st_nlink = (nlink_t) a[2];
  st->st_uid = (uid_t) a[3];
  st->st_gid = (gid_t) a[4];
  st->st_size = (off_t) a[5];
  st->st_blksize = 4096;
  st->st_blocks = (blkcnt_t) ((a[5] + 511) / 512);
  double times[3] = {a[6], a[7], a[8]};
  struct timespec *fields[3] = {&st->st_atim, &st->st_mtim, &st->st_ctim};
  for (int i = 0; i < 3; i++) {
    double sec = floor(times[i] / 1e3);
    long nsec = (long) ((times[i] - sec * 1e3) * 1e6);
    fields[i]->tv_sec = (time_t) sec;
    fields[i]->tv_nsec = nsec < 0 ? 0 : nsec > 999999999 ? 999999999 : nsec;
  }
  return 0;
}

#define REPLY_ARGS(n)                                          \
  size_t argc = n;                                             \
  napi_value argv[n];                                          \
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL)); \
  fuse_req_t req = req_arg(env, argv[0])

/** replyErr(req, errno): 0 for success of an op that returns nothing. */
static napi_value js_reply_err(napi_env env, napi_callback_info info) {
  REPLY_ARGS(2);
  fuse_reply_err(req, (int) double_arg(env, argv[1]));
  return NULL;
}

static int entry_arg(napi_env env, napi_value *argv, struct fuse_entry_param *e) {
  memset(e, 0, sizeof(*e));
  if (stat_arg(env, argv[0], &e->attr) != 0) return -1;
  e->ino = e->attr.st_ino;
  e->entry_timeout = double_arg(env, argv[1]);
  e->attr_timeout = double_arg(env, argv[2]);
  return 0;
}

/** replyEntry(req, attributes, entryTimeout, attrTimeout); ino 0 is a cached "no such name". */
static napi_value js_reply_entry(napi_env env, napi_callback_info info) {
  REPLY_ARGS(4);
  struct fuse_entry_param e;
  if (entry_arg(env, argv + 1, &e) != 0) return NULL;
  fuse_reply_entry(req, &e);
  return NULL;
}

/** replyCreate(req, attributes, entryTimeout, attrTimeout) */
static napi_value js_reply_create(napi_env env, napi_callback_info info) {
  REPLY_ARGS(4);
  struct fuse_entry_param e;
  if (entry_arg(env, argv + 1, &e) != 0) return NULL;
  struct fuse_file_info fi;
  memset(&fi, 0, sizeof(fi));
  fuse_reply_create(req, &e, &fi);
  return NULL;
}

/** replyAttr(req, attributes, attrTimeout) */
static napi_value js_reply_attr(napi_env env, napi_callback_info info) {
  REPLY_ARGS(3);
  struct stat st;
  if (stat_arg(env, argv[1], &st) != 0) return NULL;
  fuse_reply_attr(req, &st, double_arg(env, argv[2]));
  return NULL;
}

/** replyOpen(req, fh, keepCache) */
static napi_value js_reply_open(napi_env env, napi_callback_info info) {
  REPLY_ARGS(3);
  struct fuse_file_info fi;
  memset(&fi, 0, sizeof(fi));
  fi.fh = (uint64_t) double_arg(env, argv[1]);
  bool keep;
  napi_get_value_bool(env, argv[2], &keep);
  fi.keep_cache = keep ? 1 : 0;
  fuse_reply_open(req, &fi);
  return NULL;
}

/** replyWrite(req, count) */
static napi_value js_reply_write(napi_env env, napi_callback_info info) {
  REPLY_ARGS(2);
  fuse_reply_write(req, (size_t) double_arg(env, argv[1]));
  return NULL;
}

/** replyBuffer(req, buffer): the bytes read, a link's target, an attribute's value. */
static napi_value js_reply_buffer(napi_env env, napi_callback_info info) {
  REPLY_ARGS(2);
  void *data;
  size_t length;
  CHECK(napi_get_buffer_info(env, argv[1], &data, &length));
  fuse_reply_buf(req, data, length);
  return NULL;
}

/** replyReadlink(req, target) */
static napi_value js_reply_readlink(napi_env env, napi_callback_info info) {
  REPLY_ARGS(2);
  char *target;
  if (get_string(env, argv[1], &target) == NULL) return NULL;
  fuse_reply_readlink(req, target);
  free(target);
  return NULL;
}

/** replyXattr(req, size, value): the value's length when size is 0, ERANGE when it does not fit. */
static napi_value js_reply_xattr(napi_env env, napi_callback_info info) {
  REPLY_ARGS(3);
  size_t size = (size_t) double_arg(env, argv[1]);
  void *data;
  size_t length;
  CHECK(napi_get_buffer_info(env, argv[2], &data, &length));
  if (size == 0) fuse_reply_xattr(req, length);
  else if (length > size) fuse_reply_err(req, ERANGE);
  else fuse_reply_buf(req, data, length);
  return NULL;
}

/** replyStatfs(req, [bsize, blocks, bfree, files, ffree, namemax]) */
static napi_value js_reply_statfs(napi_env env, napi_callback_info info) {
  REPLY_ARGS(2);
  double f[6];
  for (uint32_t i = 0; i < 6; i++) {
    napi_value v;
    CHECK(napi_get_element(env, argv[1], i, &v));
    f[i] = double_arg(env, v);
  }
  struct statvfs st;
  memset(&st, 0, sizeof(st));
  st.f_bsize = st.f_frsize = (unsigned long) f[0];
  st.f_blocks = (fsblkcnt_t) f[1];
  st.f_bfree = st.f_bavail = (fsblkcnt_t) f[2];
  st.f_files = (fsfilcnt_t) f[3];
  st.f_ffree = st.f_favail = (fsfilcnt_t) f[4];
  st.f_namemax = (unsigned long) f[5];
  fuse_reply_statfs(req, &st);
  return NULL;
}

/**
 * replyDirectory(req, size, offset, names, inos, modes): the entries from `offset` on (the arrays
 * start there) that fit in `size` bytes; entry i is at offset + i + 1.
 */
static napi_value js_reply_directory(napi_env env, napi_callback_info info) {
  REPLY_ARGS(6);
  size_t size = (size_t) double_arg(env, argv[1]);
  double offset = double_arg(env, argv[2]);
  uint32_t count;
  CHECK(napi_get_array_length(env, argv[3], &count));
  char *buf = malloc(size);
  if (buf == NULL) {
    fuse_reply_err(req, ENOMEM);
    return NULL;
  }
  size_t used = 0;
  for (uint32_t i = 0; i < count; i++) {
    napi_value name_value, ino_value, mode_value;
    char name[1025];
    size_t name_length;
    if (napi_get_element(env, argv[3], i, &name_value) != napi_ok || napi_get_element(env, argv[4], i, &ino_value) != napi_ok ||
        napi_get_element(env, argv[5], i, &mode_value) != napi_ok ||
        napi_get_value_string_utf8(env, name_value, name, sizeof(name), &name_length) != napi_ok) {
      break;
    }
    struct stat st;
    memset(&st, 0, sizeof(st));
    st.st_ino = (ino_t) double_arg(env, ino_value);
    st.st_mode = (mode_t) double_arg(env, mode_value);
    size_t need = fuse_add_direntry(req, NULL, 0, name, NULL, 0);
    if (used + need > size) break;
    fuse_add_direntry(req, buf + used, size - used, name, &st, (off_t) (offset + i + 1));
    used += need;
  }
  fuse_reply_buf(req, buf, used);
  free(buf);
  return NULL;
}

#define EXPORT(name, fn)                                                     \
  do {                                                                       \
    napi_value f;                                                            \
    CHECK(napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &f)); \
    CHECK(napi_set_named_property(env, exports, name, f));                  \
  } while (0)

static napi_value init(napi_env env, napi_value exports) {
  EXPORT("mount", js_mount);
  EXPORT("unmount", js_unmount);
  EXPORT("replyErr", js_reply_err);
  EXPORT("replyEntry", js_reply_entry);
  EXPORT("replyCreate", js_reply_create);
  EXPORT("replyAttr", js_reply_attr);
  EXPORT("replyOpen", js_reply_open);
  EXPORT("replyWrite", js_reply_write);
  EXPORT("replyBuffer", js_reply_buffer);
  EXPORT("replyReadlink", js_reply_readlink);
  EXPORT("replyXattr", js_reply_xattr);
  EXPORT("replyStatfs", js_reply_statfs);
  EXPORT("replyDirectory", js_reply_directory);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
