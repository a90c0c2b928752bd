/*
 * posix_spawn for the worker's jobs (Linux). Node's child_process forks the whole worker: with
 * the V8 heap mapped that copies ~1.5 MiB of page tables per job, the child then faults on
 * copy-on-write pages and its execve tears the copy down again. posix_spawn (glibc: clone with
 * CLONE_VM|CLONE_VFORK) shares the worker's memory until the job's execve: no copy, no teardown.
 * Measured here per `sh -c true`: 1.4 → 0.45 ms of worker CPU, 1.8 → 0.2 ms until it returns.
 *
 * spawn(file, argv, env, cwd, extraFd, onExit) starts `file` in its own session (setsid), in
 * `cwd`, with exactly `env`, signal mask empty and every signal at its default, stdin on
 * /dev/null and stdout/stderr on new pipes (stdout's of STDOUT_PIPE_BYTES). With extraFd > 2 the
 * child also gets one end of a socket pair there (a sandbox's secrets). With glibc 2.34 or
 * later every other descriptor is closed in the child. Returns
 * [pid, stdoutFd, stderrFd, extraFd or -1]: the worker's ends, close-on-exec. onExit(code,
 * signal, cpuMs) is called once, from the event loop, when the child is reaped (through a pidfd,
 * so libuv's own SIGCHLD handling and this never take each other's children); (null, null, null)
 * if something else reaped it first. cpuMs is what the kernel hands over with the reaped child
 * (wait4's rusage): its user+system CPU time and that of every descendant it waited for. Not its
 * ru_maxrss: a child that shared the worker's memory until its execve (as this one did) keeps the
 * worker's resident high-water mark as its own.
 * Failure to start throws an Error with `code` (e.g. ENOENT) and `syscall` 'spawn'. On a kernel
 * without pidfd_open (before 5.3) the module exports nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

typedef struct {
  uv_poll_t poll;
  int pidfd;
  pid_t pid;
  napi_env env;
  napi_ref onExit;
  napi_async_context async;
} Child;

#define CHECK(call)                                                                                \
  do {                                                                                             \
    if ((call) != napi_ok) {                                                                       \
      napi_throw_error(env, NULL, "builder spawn: " #call " failed");                              \
      goto fail;                                                                                   \
    }                                                                                              \
  } while (0)

static void freeStrings(char **list) {
  if (!list) return;
  for (char **p = list; *p; p++) free(*p);
  free(list);
}

static char *string(napi_env env, napi_value v) {
  size_t n;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok) return NULL;
  char *s = malloc(n + 1);
  if (s && napi_get_value_string_utf8(env, v, s, n + 1, &n) != napi_ok) {
    free(s);
    return NULL;
  }
  return s;
}

static char **strings(napi_env env, napi_value array) {
  uint32_t n;
  if (napi_get_array_length(env, array, &n) != napi_ok) return NULL;
  char **out = calloc(n + 1, sizeof(char *));
  if (!out) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    if (napi_get_element(env, array, i, &item) != napi_ok || !(out[i] = string(env, item))) {
      freeStrings(out);
      return NULL;
    }
  }
  return out;
}

static void throwErrno(napi_env env, int err, const char *file) {
  napi_value code, message, error;
  const char *name = err == ENOENT ? "ENOENT" : err == EACCES ? "EACCES" : err == ENOEXEC ? "ENOEXEC" : NULL;
  char text[512];
  snprintf(text, sizeof text, "spawn %s %s (%s)", file, name ? name : "failed", strerror(err));
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, NULL, message, &error);
  if (name) {
    napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
    napi_set_named_property(env, error, "code", code);
  }
  napi_value syscall_;
  napi_create_string_utf8(env, "spawn", NAPI_AUTO_LENGTH, &syscall_);
  napi_set_named_property(env, error, "syscall", syscall_);
  napi_create_int32(env, -err, &code);
  napi_set_named_property(env, error, "errno", code);
  napi_throw(env, error);
}

static void onClosed(uv_handle_t *handle) { free(handle->data); }

static void onReadable(uv_poll_t *poll, int status, int events) {
  (void)status;
  (void)events;
  Child *c = poll->data;
  siginfo_t info;
  struct rusage ru;
  memset(&info, 0, sizeof info);
  memset(&ru, 0, sizeof ru);
  // the raw waitid: Linux's takes a fifth argument, the reaped child's rusage (glibc's wrapper has none)
  // reaped by someone else (ECHILD) counts as ended, how unknown: never poll a readable pidfd again
  int gone = syscall(SYS_waitid, P_PID, c->pid, &info, WEXITED | WNOHANG, &ru) != 0;
  if (!gone && info.si_pid == 0) return;
  uv_poll_stop(&c->poll);
  close(c->pidfd);
  napi_env env = c->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) == napi_ok) {
    napi_value onExit, global, args[3], result;
    if (gone) {
      for (int i = 0; i < 3; i++) napi_get_null(env, &args[i]);
    } else {
      if (info.si_code == CLD_EXITED) {
        napi_create_int32(env, info.si_status, &args[0]);
        napi_get_null(env, &args[1]);
      } else {
        napi_get_null(env, &args[0]);
        napi_create_int32(env, info.si_status, &args[1]);
      }
      double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
                   (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
      napi_create_double(env, cpu, &args[2]);
    }
    if (napi_get_reference_value(env, c->onExit, &onExit) == napi_ok && napi_get_global(env, &global) == napi_ok)
      napi_make_callback(env, c->async, global, onExit, 3, args, &result);
    napi_close_handle_scope(env, scope);
  }
  napi_delete_reference(env, c->onExit);
  napi_async_destroy(env, c->async);
  uv_close((uv_handle_t *)&c->poll, onClosed);
}

/*
 * The job's stdout pipe holds this much (the kernel's default is 64 KiB): as much as one read
 * takes (OUTPUT_READ_MAX), so a job writing its console in bulk blocks and wakes a quarter as
 * often, and the worker reads it in a quarter as many reads. A pipe rather than the socket pair
 * used before: no buffer allocated per write. Measured with a 200 MiB console (8 alternating
 * runs, medians): worker CPU 0.61 → 0.53 s, wall 0.82 → 0.75 s.
 */
#define STDOUT_PIPE_BYTES (256 * 1024)

static napi_value Spawn(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value a[6];
  char *file = NULL, *cwd = NULL, **argv = NULL, **envp = NULL;
  int out[2] = {-1, -1}, err[2] = {-1, -1}, extra[2] = {-1, -1};
  int32_t extraFd = -1;
  Child *c = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, a, NULL, NULL));
  if (argc != 6) {
    napi_throw_type_error(env, NULL, "spawn(file, argv, env, cwd, extraFd, onExit)");
    return NULL;
  }
  file = string(env, a[0]);
  argv = strings(env, a[1]);
  envp = strings(env, a[2]);
  cwd = string(env, a[3]);
  CHECK(napi_get_value_int32(env, a[4], &extraFd));
  if (!file || !argv || !envp || !cwd) {
    napi_throw_type_error(env, NULL, "spawn: file, argv, env and cwd must be strings");
    goto fail;
  }
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0 ||
      (extraFd > 2 && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, extra) != 0)) {
    throwErrno(env, errno, file);
    goto fail;
  }
  // best effort: the user's pipe quota (fs.pipe-user-pages-soft) or fs.pipe-max-size may refuse it
  fcntl(out[0], F_SETPIPE_SZ, STDOUT_PIPE_BYTES);
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  if (extraFd > 2) posix_spawn_file_actions_adddup2(&actions, extra[0], extraFd);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
  // nothing else reaches the job, not even what the worker itself inherited without close-on-exec
  for (int fd = 3; fd < (extraFd > 2 ? extraFd : 3); fd++) posix_spawn_file_actions_addclose(&actions, fd);
  posix_spawn_file_actions_addclosefrom_np(&actions, extraFd > 2 ? extraFd + 1 : 3);
#endif
  posix_spawn_file_actions_addchdir_np(&actions, cwd);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid;
  int rc = posix_spawn(&pid, file, &actions, &attr, argv, envp);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    throwErrno(env, rc, file);
    goto fail;
  }
  close(out[1]);
  close(err[1]);
  if (extra[0] >= 0) close(extra[0]);
  out[1] = err[1] = extra[0] = -1;

  c = calloc(1, sizeof *c);
  if (!c) {
    kill(-pid, SIGKILL);
    waitpid(pid, NULL, 0);
    throwErrno(env, ENOMEM, file);
    goto fail;
  }
  uv_loop_t *loop;
  napi_value name;
  c->pid = pid;
  c->env = env;
  c->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (c->pidfd < 0 || napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &c->poll, c->pidfd) != 0) {
    // started, but its end could not be watched: do not leave a job nobody waits for
    kill(-pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (c->pidfd >= 0) close(c->pidfd);
    throwErrno(env, c->pidfd < 0 ? errno : EINVAL, file);
    free(c);
    c = NULL;
    goto fail;
  }
  c->poll.data = c;
  napi_create_reference(env, a[5], 1, &c->onExit);
  napi_create_string_utf8(env, "builder.spawn", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &c->async);
  uv_poll_start(&c->poll, UV_READABLE, onReadable);

  napi_value result, v;
  napi_create_array_with_length(env, 4, &result);
  napi_create_int32(env, pid, &v);
  napi_set_element(env, result, 0, v);
  napi_create_int32(env, out[0], &v);
  napi_set_element(env, result, 1, v);
  napi_create_int32(env, err[0], &v);
  napi_set_element(env, result, 2, v);
  napi_create_int32(env, extra[1], &v);
  napi_set_element(env, result, 3, v);
  free(file);
  free(cwd);
  freeStrings(argv);
  freeStrings(envp);
  return result;

fail:;
  int fds[] = {out[0], out[1], err[0], err[1], extra[0], extra[1]};
  for (int i = 0; i < 6; i++)
    if (fds[i] >= 0) close(fds[i]);
  free(file);
  free(cwd);
  freeStrings(argv);
  freeStrings(envp);
  return NULL;
}

/*
 * The job's output, read here rather than through a net.Socket per stream: wrapping a socket pair
 * in one (handle type probes, a Pipe handle, a Duplex) and taking it down again cost the worker
 * about 0.3 ms of CPU per trivial job over not reading the output at all; read here, 0.15 ms.
 *
 * watch(fd, onData) makes fd non-blocking and reads it whenever it is readable, up to 256 KiB per
 * wakeup, calling onData(buffer) with a copy of what it read, then onData(null, 0) at the end of
 * the stream or onData(null, errno) when a read fails; after that the fd is closed and the handle
 * is gone. pause(handle) and resume(handle) stop and restart the reading (backpressure);
 * close(handle) closes it without a further call. No call may follow the end or a close.
 */
typedef struct {
  uv_poll_t poll;
  int fd;
  int closing;
  napi_env env;
  napi_ref onData;
  napi_async_context async;
} Output;

#define OUTPUT_READ_MAX (256 * 1024)
static _Thread_local char outputScratch[OUTPUT_READ_MAX];

static void onOutputClosed(uv_handle_t *handle) {
  Output *o = handle->data;
  close(o->fd);
  free(o);
}

static void closeOutput(Output *o) {
  if (o->closing) return;
  o->closing = 1;
  uv_poll_stop(&o->poll);
  napi_delete_reference(o->env, o->onData);
  napi_async_destroy(o->env, o->async);
  uv_close((uv_handle_t *)&o->poll, onOutputClosed);
}

/**
 * onData(buffer) or onData(null, err). 1: delivered; 0: the handle was closed meanwhile (by the
 * callback); -1: no Buffer could be made for the bytes (out of memory), told as a failed read
 * (ENOMEM): the caller closes the handle, the bytes are lost.
 */
static int deliver(Output *o, const char *data, size_t length, int err) {
  napi_env env = o->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return 0;
  napi_value onData, global, args[2], result;
  int lost = 0;
  void *copy;
  if (data && napi_create_buffer_copy(env, length, data, &copy, &args[0]) == napi_ok) {
    napi_get_undefined(env, &args[1]);
  } else {
    lost = data != NULL;
    napi_get_null(env, &args[0]);
    napi_create_int32(env, lost ? ENOMEM : err, &args[1]);
  }
  if (napi_get_reference_value(env, o->onData, &onData) == napi_ok && napi_get_global(env, &global) == napi_ok)
    napi_make_callback(env, o->async, global, onData, 2, args, &result);
  napi_close_handle_scope(env, scope);
  return lost ? -1 : !o->closing;
}

static void onOutputReadable(uv_poll_t *poll, int status, int events) {
  (void)events;
  Output *o = poll->data;
  size_t total = 0;
  int end = 0, err = status < 0 ? -status : 0;
  while (!err && total < OUTPUT_READ_MAX) {
    size_t want = OUTPUT_READ_MAX - total;
    ssize_t n = read(o->fd, outputScratch + total, want);
    if (n > 0) {
      total += (size_t)n;
      if ((size_t)n < want) break; // drained for now (as libuv does: no read just to see EAGAIN)
    } else if (n == 0) {
      end = 1;
      break;
    } else if (errno != EINTR) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
      break;
    }
  }
  if (total > 0) {
    int delivered = deliver(o, outputScratch, total, 0);
    if (delivered < 0) closeOutput(o);
    if (delivered <= 0) return;
  }
  if (end || err) {
    deliver(o, NULL, 0, err);
    closeOutput(o);
  }
}

static Output *outputOf(napi_env env, napi_value v) {
  void *o = NULL;
  if (napi_get_value_external(env, v, &o) != napi_ok || !o) napi_throw_type_error(env, NULL, "not an output handle");
  return o;
}

static napi_value Watch(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value a[2], handle, name;
  int32_t fd;
  uv_loop_t *loop;
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc != 2 ||
      napi_get_value_int32(env, a[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "watch(fd, onData)");
    return NULL;
  }
  Output *o = calloc(1, sizeof *o);
  int flags = fcntl(fd, F_GETFL);
  if (!o || flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 || napi_get_uv_event_loop(env, &loop) != napi_ok ||
      uv_poll_init(loop, &o->poll, fd) != 0) {
    free(o);
    napi_throw_error(env, NULL, "builder spawn: cannot watch the job's output");
    return NULL;
  }
  o->fd = fd;
  o->env = env;
  o->poll.data = o;
  napi_create_reference(env, a[1], 1, &o->onData);
  napi_create_string_utf8(env, "builder.output", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &o->async);
  uv_poll_start(&o->poll, UV_READABLE, onOutputReadable);
  napi_create_external(env, o, NULL, NULL, &handle);
  return handle;
}

static napi_value OutputCall(napi_env env, napi_callback_info info, int what) {
  size_t argc = 1;
  napi_value a[1];
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc != 1) return NULL;
  Output *o = outputOf(env, a[0]);
  if (!o || o->closing) return NULL;
  if (what == 0) uv_poll_stop(&o->poll);
  else if (what == 1) uv_poll_start(&o->poll, UV_READABLE, onOutputReadable);
  else closeOutput(o);
  return NULL;
}
static napi_value Pause(napi_env env, napi_callback_info info) { return OutputCall(env, info, 0); }
static napi_value Resume(napi_env env, napi_callback_info info) { return OutputCall(env, info, 1); }
static napi_value Close(napi_env env, napi_callback_info info) { return OutputCall(env, info, 2); }

/*
 * killGroup(pgid, signal): kill(-pgid, signal), returning 0 or the errno. The worker signals every
 * job's group when its first process ends (to stop what it left behind); nearly always nothing is
 * left, and process.kill reports that ESRCH by building an exception.
 */
static napi_value KillGroup(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value a[2], result;
  int32_t pgid, sig;
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc != 2 ||
      napi_get_value_int32(env, a[0], &pgid) != napi_ok || napi_get_value_int32(env, a[1], &sig) != napi_ok ||
      pgid <= 1) {
    napi_throw_type_error(env, NULL, "killGroup(pgid > 1, signal)");
    return NULL;
  }
  napi_create_int32(env, kill(-pgid, sig) == 0 ? 0 : errno, &result);
  return result;
}

NAPI_MODULE_INIT() {
  // pidfds came with Linux 5.3: on an older kernel export nothing, and the worker uses child_process
  int probe = (int)syscall(SYS_pidfd_open, getpid(), 0);
  if (probe < 0) return exports;
  close(probe);
  const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {{"spawn", Spawn}, {"watch", Watch}, {"pause", Pause}, {"resume", Resume}, {"close", Close}, {"killGroup", KillGroup}};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value fn;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &fn) != napi_ok) return NULL;
    napi_set_named_property(env, exports, fns[i].name, fn);
  }
  return exports;
}
