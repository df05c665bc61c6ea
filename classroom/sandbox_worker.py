"""The sandbox's worker process: a warm zygote that forks one locked-down child per job.

`classroom.sandbox` starts this module in its own process with an EMPTY environment and
`python -I` (isolated mode), as `python -I -c "...; sandbox_worker.main()" CONFIG_JSON`. The zygote
imports torch and gptcore once (one torch thread, no OpenMP pool), runs a self-test child to
prove that the kernel applies Landlock and seccomp, says hello, then forks a fresh child per
request. Learner code only ever runs in such a child, never in the zygote or the server.

A child, before it touches learner code (`lockdown`):
  dies with the zygote (PR_SET_PDEATHSIG); works in a fresh scratch folder; has stdin on
  /dev/null, stdout+stderr in a file in that folder (size-capped by RLIMIT_FSIZE), the result
  pipe on fd 3 and no other file descriptor; sees only HOME/TMPDIR/LANG in its environment;
  gets rlimits (address space, CPU, file size, open files, no core, no processes); drops every
  capability (when the host runs us as root); then PR_SET_NO_NEW_PRIVS, Landlock (read-only:
  the Python installation, its site-packages, the repo's public files, system libraries;
  read-write: scratch; nothing else, not even /proc; no TCP; no signals or abstract unix
  sockets outside itself) and a seccomp allow-list (no fork/exec/clone without CLONE_THREAD,
  no sockets, no ptrace, signals only to itself, ...). Last, an audit hook that turns the
  usual Python-level attempts (os.fork, subprocess, socket, os.kill, writes outside scratch)
  into a plain message. The hook is only the friendly layer: the walls are the kernel's.

Protocol, one JSON object per line (bounded on every read, never pickled):
  server -> zygote  {"op": "run", "id": 7, "job": "check", "args": {...}, "limits": {...}}
                    {"op": "cancel", "id": 7}
  zygote -> server  {"hello": {"ok": true, "reason": "", "landlock_abi": 7, ...}}   once
                    {"id": 7, "event": {...}}       any number: what the job streams
                    {"id": 7, "done": {"result": ..., "output": "...", "meta": {...}}}
                    {"id": 7, "error": {"kind": "timeout", "detail": "...", "meta": {...}}}
  child -> zygote   {"event": ...} | {"result": ...} | {"violation": KIND, "detail": "..."}
                    | {"error": "..."}   (all untrusted: the learner owns that process)

A job is a trusted callable `job(args: dict, emit) -> JSON-safe value`, named in `JOBS` as
"module:function"; `emit(dict)` streams an event. Adding a job is one line in `JOBS` (or the
`jobs` argument of `classroom.sandbox.Sandbox`).
"""
from __future__ import annotations

import ctypes
import errno
import importlib
import json
import os
import resource
import select
import shutil
import signal
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

JOBS = {
    "check": "classroom.sandbox_worker:check_job",  # gptcore.exercises.check(...).to_dict()
    "call": "classroom.sandbox_worker:call_job",    # call the learner's function on inputs
    "train_yours": "classroom.sandbox_worker:train_yours_job",  # lesson 5: your Block, trained
}

EXIT_SETUP, EXIT_VIOLATION, EXIT_MEMORY = 70, 71, 72
RESULT_FD = 3
CHILD_NICE = 10                 # learner code yields the CPU to the server (2 cores, many learners)
MAX_LINE = 1 << 20              # one line from a child (an event or the result)
MAX_REQUEST = 8 << 20           # one line from the server
MAX_CHILDREN = 8                # the server caps lower; this is the zygote's own backstop
TENSOR_MAX_NUMEL = 100_000
MEMORY_LINE = b'{"violation": "memory", "detail": ""}\n'  # preallocated: no memory needed to send

# prctl / clone / Landlock constants (Linux UAPI)
PR_SET_PDEATHSIG, PR_GET_SECCOMP, PR_SET_NO_NEW_PRIVS = 1, 21, 38
CLONE_VM, CLONE_VFORK, CLONE_PARENT, CLONE_THREAD = 0x100, 0x4000, 0x8000, 0x10000
CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC = 0x20000, 0x02000000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_PTRACE = 0x10000000, 0x20000000, 0x40000000, 0x2000
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
LANDLOCK_CREATE_RULESET_VERSION, LANDLOCK_RULE_PATH_BENEATH = 1, 1
LANDLOCK_ACCESS_NET_BIND_TCP, LANDLOCK_ACCESS_NET_CONNECT_TCP = 1, 2
LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET, LANDLOCK_SCOPE_SIGNAL = 1, 2

# seccomp: an allow-list; anything else fails with ENOSYS (so new kernels' syscalls are denied too)
SECCOMP_ALLOW = """
read write readv writev pread64 pwrite64 preadv pwritev preadv2 pwritev2 lseek
open openat openat2 creat close close_range
stat fstat lstat newfstatat statx statfs fstatfs access faccessat faccessat2 readlink readlinkat
getdents getdents64 getcwd chdir fchdir
mkdir mkdirat rmdir unlink unlinkat rename renameat renameat2
ftruncate fallocate fsync fdatasync sync_file_range flock fcntl fadvise64 readahead
getxattr lgetxattr fgetxattr listxattr llistxattr flistxattr
dup dup2 dup3 pipe pipe2 copy_file_range sendfile splice tee
mmap munmap mprotect mremap madvise msync mincore brk mbind get_mempolicy set_mempolicy
rt_sigaction rt_sigprocmask rt_sigreturn rt_sigpending rt_sigtimedwait rt_sigsuspend sigaltstack
restart_syscall nanosleep clock_nanosleep clock_gettime clock_getres gettimeofday time
getitimer setitimer alarm timer_create timer_settime timer_gettime timer_getoverrun timer_delete
timerfd_create timerfd_settime timerfd_gettime
poll ppoll select pselect6 epoll_create epoll_create1 epoll_ctl epoll_wait epoll_pwait
epoll_pwait2 eventfd eventfd2
futex set_robust_list set_tid_address rseq membarrier
sched_yield sched_get_priority_max sched_get_priority_min sched_rr_get_interval
getpid gettid getppid getuid geteuid getgid getegid getgroups getresuid getresgid getpgrp getpgid
getsid getpriority getrlimit getrusage getcpu uname sysinfo times capget
exit exit_group arch_prctl prctl getrandom
seccomp landlock_create_ruleset landlock_add_rule landlock_restrict_self
""".split()
# stopped outright (the child dies with SIGSYS): starting a process, reaching into another
# process, changing identity, namespaces and mounts, kernel interfaces
SECCOMP_KILL = """
fork vfork execve execveat ptrace process_vm_readv process_vm_writev process_madvise
process_mrelease kcmp pidfd_open pidfd_getfd pidfd_send_signal tkill rt_sigqueueinfo
rt_tgsigqueueinfo setuid setgid setreuid setregid setresuid setresgid setfsuid setfsgid setgroups
capset unshare setns mount umount2 pivot_root chroot move_mount open_tree fsopen fsconfig
fsmount fspick mount_setattr bpf perf_event_open keyctl add_key request_key init_module
finit_module delete_module kexec_load kexec_file_load reboot iopl ioperm swapon swapoff acct
userfaultfd io_uring_setup io_uring_enter io_uring_register setrlimit
""".split()
SECCOMP_EACCES = ["socket", "socketpair"]  # a library probing for nscd gets an error, not a kill
# these take a pid, and a host that is not root runs the server under the learner's uid:
# allowed only on the child itself (0 or its own pid)
SECCOMP_SELF_ONLY = ["sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_getscheduler",
                     "sched_getattr", "get_robust_list"]
IOCTL_ALLOWED = (0x5401, 0x5413, 0x541B, 0x5421, 0x5450, 0x5451)  # TCGETS TIOCGWINSZ FIONREAD FIONBIO FIONCLEX FIOCLEX

_log = lambda *a: print("sandbox_worker:", *a, file=sys.stderr, flush=True)  # noqa: E731


# --------------------------------------------------------------------------------------------
# jobs (trusted code; the learner's source is an argument)

def check_job(args: dict, emit) -> dict:
    """gptcore's own checker, run on the learner's source: `check(...).to_dict()`."""
    from gptcore.exercises import check

    return check(str(args["exercise_id"]), str(args["source"])).to_dict()


def call_job(args: dict, emit) -> dict:
    """Run the learner's source, call `name` on each of `calls` (lists of JSON arguments; a
    {"tensor": [...], "dtype": "float32"} argument becomes a tensor) and return the outputs."""
    namespace = {"__name__": "learner"}
    exec(compile(str(args["source"]), "<your code>", "exec"), namespace)
    fn = namespace[str(args["name"])]
    outputs = [fn(*[_from_json(a) for a in call]) for call in args.get("calls", [])]
    return {"outputs": [to_json(o) for o in outputs]}


def train_yours_job(args: dict, emit) -> dict:
    """Lesson 5's 'Train my GPT': the book's GPT with the learner's Block beside the book's,
    same weights and batches (gptcore.exercises.yourgpt). Streams one event per step; the
    trained weights come back as safetensors (no pickle), under the book's names."""
    import base64

    from safetensors.torch import save

    from gptcore.config import GPTConfig
    from gptcore.exercises.yourgpt import train_side_by_side
    from gptcore.trainer import TrainConfig

    namespace = {"__name__": "learner"}
    exec(compile(str(args["source"]), "<your code>", "exec"), namespace)
    result = train_side_by_side(namespace["Block"], str(args["text"]),
                                GPTConfig(**args["model"]), TrainConfig(**args["train"]),
                                on_step=emit)
    return {"parted_at": result["parted_at"], "max_difference": result["max_difference"],
            "val_loss": result["val_loss"], "train_loss": result["train_loss"],
            "sample": result["sample"],
            "weights": base64.b64encode(save(result["weights"])).decode("ascii")}


def _from_json(value):
    if isinstance(value, dict) and "tensor" in value:
        import torch
        return torch.tensor(value["tensor"], dtype=getattr(torch, value.get("dtype", "float32")))
    return value


def to_json(value, _depth=0):
    """JSON-safe and bounded: tensors become {"tensor": nested lists, "shape", "dtype"}."""
    if _depth > 20:
        raise ValueError("value nested too deeply to send back")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [to_json(v, _depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v, _depth + 1) for k, v in value.items()}
    if type(value).__module__ == "torch" and hasattr(value, "tolist"):
        if value.numel() > TENSOR_MAX_NUMEL:
            raise ValueError(f"tensor of {value.numel()} values is too big to send back")
        return {"tensor": value.detach().cpu().tolist(), "shape": list(value.shape),
                "dtype": str(value.dtype).replace("torch.", "")}
    return repr(value)[:1000]


def _selftest_job(args: dict, emit) -> dict:
    """Run inside a locked-down child at startup: is every wall really up?"""
    libc = ctypes.CDLL(None, use_errno=True)
    out = {"seccomp_mode": libc.prctl(PR_GET_SECCOMP, 0, 0, 0, 0)}
    probes = {"landlock_root": lambda: os.listdir("/"),
              "landlock_proc": lambda: open("/proc/self/status").read(),
              "landlock_write": lambda: open(os.path.join(os.path.dirname(os.getcwd()), "x"), "w")}
    for name, probe in probes.items():
        try:
            probe()
            out[name] = False
        except PermissionError:
            out[name] = True
    out["seccomp_socket"] = libc.socket(2, 1, 0) < 0  # AF_INET, SOCK_STREAM, straight to the kernel
    with open("scratch-ok", "w") as f:
        out["scratch_write"] = f.write("ok") == 2
    return out


# --------------------------------------------------------------------------------------------
# the child: lock down, run one job, write its result to fd 3, exit

_libc_handle = None


def _libc():
    global _libc_handle
    if _libc_handle is None:
        _libc_handle = ctypes.CDLL(None, use_errno=True)
    return _libc_handle


def _check(rc, what):
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return rc


def landlock_abi() -> int:
    """Landlock's ABI version on this kernel (0: none). Uses the PyPI `landlock` package."""
    try:
        import landlock
        return int(landlock.landlock_abi_version())
    except Exception:  # noqa: BLE001 - ENOSYS/EOPNOTSUPP or no package: no Landlock
        return 0


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def apply_landlock(abi: int, read_only: list[str], read_write: list[str], devices: list[str]):
    """Restrict this process (and threads it starts later) to these paths.

    The PyPI `landlock` package gives the access flags and the ABI probe; the syscalls are
    made here because its `Ruleset` handles only filesystem rights, and ABI 4+ also denies
    TCP bind/connect and ABI 6+ scopes signals and abstract unix sockets to this process."""
    from landlock import FSAccess as A

    if abi < 1:
        raise OSError(errno.EOPNOTSUPP, "Landlock is not available on this kernel")
    handled = (A.EXECUTE | A.WRITE_FILE | A.READ_FILE | A.READ_DIR | A.REMOVE_DIR | A.REMOVE_FILE
               | A.MAKE_CHAR | A.MAKE_DIR | A.MAKE_REG | A.MAKE_SOCK | A.MAKE_FIFO | A.MAKE_BLOCK
               | A.MAKE_SYM)
    if abi >= 2:
        handled |= A.REFER
    if abi >= 3:
        handled |= A.TRUNCATE
    if abi >= 5:
        handled |= A.IOCTL_DEV
    file_rights = A.EXECUTE | A.WRITE_FILE | A.READ_FILE | (A.TRUNCATE if abi >= 3 else 0)
    read = A.READ_FILE | A.READ_DIR | A.EXECUTE
    scratch = (A.READ_FILE | A.READ_DIR | A.WRITE_FILE | A.MAKE_REG | A.MAKE_DIR | A.REMOVE_FILE
               | A.REMOVE_DIR | (A.TRUNCATE if abi >= 3 else 0))
    device = A.READ_FILE | A.WRITE_FILE | (A.TRUNCATE if abi >= 3 else 0)

    attr = _RulesetAttr(int(handled),
                        LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP if abi >= 4 else 0,
                        LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL if abi >= 6 else 0)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    libc = _libc()
    ctypes.set_errno(0)
    ruleset = _check(libc.syscall(ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET), ctypes.byref(attr),
                                  ctypes.c_size_t(size), ctypes.c_uint32(0)), "landlock_create_ruleset")
    try:
        for paths, rights in ((read_only, read), (read_write, scratch), (devices, device)):
            for path in paths:
                try:
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue  # a path this host does not have
                try:
                    allowed = rights if os.path.isdir(path) else rights & file_rights
                    rule = _PathBeneath(int(allowed), fd)
                    _check(libc.syscall(ctypes.c_long(SYS_LANDLOCK_ADD_RULE), ctypes.c_int(ruleset),
                                        ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH), ctypes.byref(rule),
                                        ctypes.c_uint32(0)), f"landlock_add_rule {path}")
                finally:
                    os.close(fd)
        _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
        _check(libc.syscall(ctypes.c_long(SYS_LANDLOCK_RESTRICT_SELF), ctypes.c_int(ruleset),
                            ctypes.c_uint32(0)), "landlock_restrict_self")
    finally:
        os.close(ruleset)


def apply_seccomp(pid: int):
    """Load the allow-list filter (libseccomp through the PyPI `pyseccomp` package)."""
    import pyseccomp as sc

    def number(name):
        nr = sc.resolve_syscall(sc.Arch.NATIVE, name)
        return nr if nr >= 0 else None  # not a syscall on this architecture

    f = sc.SyscallFilter(sc.ERRNO(errno.ENOSYS))  # unknown and future syscalls: "not implemented"
    f.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)  # i386 int 0x80 and friends
    for name in SECCOMP_ALLOW:
        if (nr := number(name)) is not None:
            f.add_rule(sc.ALLOW, nr)
    for name in SECCOMP_KILL:
        if (nr := number(name)) is not None:
            f.add_rule(sc.KILL_PROCESS, nr)
    for name in SECCOMP_EACCES:
        if (nr := number(name)) is not None:
            f.add_rule(sc.ERRNO(errno.EACCES), nr)
    # threads only: clone must carry CLONE_THREAD|CLONE_VM and no namespace/vfork/ptrace flag;
    # without CLONE_THREAD it is a new process: kill. clone3 cannot be inspected: ENOSYS, so
    # glibc falls back to clone.
    bad = (CLONE_THREAD | CLONE_VM | CLONE_VFORK | CLONE_PARENT | CLONE_PTRACE | CLONE_NEWNS
           | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET)
    f.add_rule(sc.ALLOW, "clone", sc.Arg(0, sc.MASKED_EQ, bad, CLONE_THREAD | CLONE_VM))
    f.add_rule(sc.KILL_PROCESS, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, 0))
    # signals: only to itself
    f.add_rule(sc.ALLOW, "kill", sc.Arg(0, sc.EQ, pid))
    f.add_rule(sc.KILL_PROCESS, "kill", sc.Arg(0, sc.NE, pid))
    f.add_rule(sc.ALLOW, "tgkill", sc.Arg(0, sc.EQ, pid))
    f.add_rule(sc.KILL_PROCESS, "tgkill", sc.Arg(0, sc.NE, pid))
    for name in SECCOMP_SELF_ONLY:
        if (nr := number(name)) is not None:
            for who in (0, pid):
                f.add_rule(sc.ALLOW, nr, sc.Arg(0, sc.EQ, who))
    # reading its own limits is fine; setting them (root could raise them) or reading another
    # process's is not
    for who in (0, pid):
        f.add_rule(sc.ALLOW, "prlimit64", sc.Arg(0, sc.EQ, who), sc.Arg(2, sc.EQ, 0))
    for request in IOCTL_ALLOWED:  # isatty() and friends; no TIOCSTI
        f.add_rule(sc.ALLOW, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, request))
    _check(_libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
    f.load()


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def drop_capabilities():
    """Root (a developer's machine, CI) keeps its uid but loses every capability."""
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    _check(_libc().capset(ctypes.byref(header), data), "capset")


def _vm_size() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def lockdown(scratch: str, result_fd: int, out_fd: int, limits: dict, cfg: dict):
    """Everything a child does before learner code. Any failure: the child exits unrun."""
    libc = _libc()
    zygote = os.getppid()
    _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "PR_SET_PDEATHSIG")
    if os.getppid() != zygote:
        os._exit(EXIT_SETUP)
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGXFSZ, signal.SIGXCPU):
        signal.signal(sig, signal.SIG_DFL)  # Python ignores SIGXFSZ: we want the kill

    # file descriptors: 0 </dev/null, 1 and 2 >output file, 3 result pipe, nothing else
    r, o, n = os.dup(result_fd), os.dup(out_fd), os.open(os.devnull, os.O_RDONLY)
    os.dup2(n, 0)
    os.dup2(o, 1)
    os.dup2(o, 2)
    if r != RESULT_FD:
        os.dup2(r, RESULT_FD)
    os.closerange(RESULT_FD + 1, max(resource.getrlimit(resource.RLIMIT_NOFILE)[0], 1024))

    os.chdir(scratch)
    sys.dont_write_bytecode = True  # a lazy import must not try to write .pyc files into the repo
    os.environ.clear()
    os.environ.update(HOME=scratch, TMPDIR=scratch, LANG="C.UTF-8")
    tempfile.tempdir = scratch

    mb = 1 << 20
    vm = _vm_size()
    cpu = max(1, int(-(-float(limits["cpu_s"]) // 1)))
    for res, value in ((resource.RLIMIT_AS, vm + int(limits["memory_mb"]) * mb),
                       (resource.RLIMIT_CPU, (cpu, cpu + 1)),
                       (resource.RLIMIT_FSIZE, int(limits["output_bytes"])),
                       (resource.RLIMIT_NOFILE, 64),
                       (resource.RLIMIT_CORE, 0),
                       (resource.RLIMIT_NPROC, 0),  # no new process or thread (non-root hosts)
                       (resource.RLIMIT_MEMLOCK, 0),
                       (resource.RLIMIT_MSGQUEUE, 0)):
        soft, hard = value if isinstance(value, tuple) else (value, value)
        resource.setrlimit(res, (soft, hard))
    os.setpriority(os.PRIO_PROCESS, 0, min(19, os.getpriority(os.PRIO_PROCESS, 0) + CHILD_NICE))
    drop_capabilities()
    apply_landlock(cfg["landlock_abi"], cfg["read_only"], [scratch], cfg["devices"])
    apply_seccomp(os.getpid())


def _write_all(fd: int, data: bytes):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _send(obj):
    _write_all(RESULT_FD, (json.dumps(obj) + "\n").encode())


def _audit_hook(scratch: str):
    """Plain messages for the usual Python-level attempts. Not a wall (ctypes goes around it);
    the walls are seccomp and Landlock underneath."""
    own = os.getpid()
    prefix = scratch + os.sep
    process = frozenset({"os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn",
                         "os.spawn", "subprocess.Popen", "pty.spawn"})
    network = frozenset({"socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo",
                         "socket.gethostbyname", "socket.sendto"})
    changes = frozenset({"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.symlink", "os.link",
                         "os.chmod", "os.chown", "os.truncate", "os.utime", "shutil.rmtree"})
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    realpath, fsdecode = os.path.realpath, os.fsdecode

    def outside(path) -> bool:
        if isinstance(path, int):
            return False
        try:
            p = realpath(fsdecode(path))
        except Exception:  # noqa: BLE001
            return True
        return not (p == scratch or p.startswith(prefix) or p == os.devnull)

    def stop(kind: str, detail):
        _write_all(RESULT_FD, (json.dumps({"violation": kind, "detail": str(detail)[:200]}) + "\n").encode())
        os._exit(EXIT_VIOLATION)

    def hook(event, args):
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            writes = (isinstance(flags, int) and flags & write_flags) or (
                isinstance(mode, str) and any(c in mode for c in "wax+"))
            if writes and outside(path):
                stop("write", path)
        elif event in process:
            what = [a for a in args[:2] if a is not None]
            stop("process", what[0] if what else event)
        elif event in network:
            stop("network", event)
        elif event in ("os.kill", "os.killpg"):
            if event == "os.killpg" or args[0] != own:
                stop("signal", args[0])
        elif event in changes:
            for path in args[:2]:
                if isinstance(path, (str, bytes, os.PathLike)) and outside(path):
                    stop("write", path)

    sys.addaudithook(hook)


OUT_OF_MEMORY = ("MemoryError", "can't allocate memory", "std::bad_alloc")


def _ran_out_of_memory(result) -> bool:
    """A checker that turned the learner's failed allocation into feedback: a memory kill."""
    if not isinstance(result, dict) or result.get("passed") is not False:
        return False
    text = str(result.get("feedback", ""))
    return any(marker in text for marker in OUT_OF_MEMORY)


def _child(req: dict, fn, result_fd: int, out_fd: int, scratch: str, cfg: dict):
    """Runs in the forked child; never returns."""
    code = EXIT_SETUP
    try:
        try:
            lockdown(scratch, result_fd, out_fd, req["limits"], cfg)
        except BaseException as exc:  # noqa: BLE001 - never run learner code half-locked
            try:
                _send({"error": f"sandbox setup failed: {exc}"})
            finally:
                os._exit(EXIT_SETUP)
        if fn is not _selftest_job:  # the self-test probes the kernel's walls, not the hook
            _audit_hook(scratch)
        code = 0
        try:
            result = fn(req.get("args") or {}, lambda event: _send({"event": to_json(event)}))
            if _ran_out_of_memory(result):
                raise MemoryError  # reported as "your code used more than N MB", not a traceback
            payload = {"result": to_json(result)}
        except MemoryError:
            raise
        except BaseException as exc:  # noqa: BLE001 - the job failed (a bug, or the learner's exit())
            payload = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001
                pass
        _send(payload)
    except MemoryError:
        try:
            os.write(RESULT_FD, MEMORY_LINE)
        finally:
            os._exit(EXIT_MEMORY)
    except BaseException:  # noqa: BLE001
        code = EXIT_SETUP if code == EXIT_SETUP else 1
    finally:
        os._exit(code)


# --------------------------------------------------------------------------------------------
# the zygote

def _resolve(spec: str):
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


PRIVATE_REPO_ENTRIES = ("data", "runs")  # corpora, uploads, checkpoints of other learners


def _read_only_paths(root: str) -> list[str]:
    """What a child may read: Python (prefix, base prefix, every sys.path entry), system
    libraries, and the repo's public top-level entries (the book's source). Hidden entries
    (.git, .streamlit with a host's secrets.toml, .env), data/, runs/ and whatever .gitignore
    names at the top stay unreadable."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    paths.update(p for p in sys.path if p and os.path.isabs(p) and os.path.realpath(p) != os.path.realpath(root))
    paths.update(["/usr/lib", "/usr/lib64", "/usr/local/lib", "/lib", "/lib64", "/usr/share/zoneinfo",
                  "/etc/ld.so.cache", "/etc/localtime"])
    private = set(PRIVATE_REPO_ENTRIES)
    try:  # what git ignores at the top (runs/, caches) is the host's, not the book's
        with open(os.path.join(root, ".gitignore")) as f:
            private.update(line.strip().strip("/") for line in f
                           if line.strip() and not line.startswith("#") and "*" not in line
                           and "/" not in line.strip().strip("/"))
    except OSError:
        pass
    for entry in os.listdir(root):
        if not entry.startswith(".") and entry not in private:
            paths.add(os.path.join(root, entry))
    return sorted(p for p in paths if os.path.exists(p))


class _Child:
    __slots__ = ("id", "pid", "rfd", "out_fd", "scratch", "limits", "deadline", "started", "buf",
                 "total", "result", "has_result", "violation", "error", "killed", "eof", "status",
                 "rusage", "next_disk")

    def __init__(self, rid, pid, rfd, out_fd, scratch, limits):
        self.id, self.pid, self.rfd, self.out_fd, self.scratch, self.limits = rid, pid, rfd, out_fd, scratch, limits
        self.started = time.monotonic()
        self.deadline = self.started + float(limits["wall_s"])
        self.next_disk = self.started + 0.2
        self.buf, self.total = bytearray(), 0
        self.result, self.has_result, self.violation, self.error, self.killed = None, False, None, None, None
        self.eof, self.status, self.rusage = False, None, None


class Zygote:
    def __init__(self, cfg: dict, out_fd: int):
        self.cfg, self.out = cfg, out_fd
        self.children: dict[int, _Child] = {}    # pid -> child
        self.by_fd: dict[int, _Child] = {}
        self.by_id: dict[int, _Child] = {}
        self.poll = select.poll()                # no fd of its own: nothing for a child to inherit
        self.jobs = {}
        self.job_errors = {}
        for name, spec in {**JOBS, **cfg.get("jobs", {})}.items():
            try:
                self.jobs[name] = _resolve(spec)
            except Exception as exc:  # noqa: BLE001 - e.g. gptcore.exercises not there yet
                self.job_errors[name] = f"{spec}: {type(exc).__name__}: {exc}"
        self.jobs["_selftest"] = _selftest_job
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)

    # -- output to the server
    def reply(self, obj):
        _write_all(self.out, (json.dumps(obj) + "\n").encode())

    # -- children
    def spawn(self, rid: int, job: str, args, limits: dict) -> _Child | None:
        fn = self.jobs.get(job)
        if fn is None:
            self.reply({"id": rid, "error": {"kind": "unknown_job", "detail": self.job_errors.get(job, job), "meta": {}}})
            return None
        if len(self.children) >= MAX_CHILDREN:
            self.reply({"id": rid, "error": {"kind": "busy", "detail": "", "meta": {}}})
            return None
        scratch = os.path.realpath(tempfile.mkdtemp(prefix=f"run{rid}-", dir=self.cfg["scratch_base"]))
        out_fd = os.open(os.path.join(scratch, "output.txt"), os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        rfd, wfd = os.pipe2(os.O_CLOEXEC)
        req = {"args": args, "limits": limits}
        pid = os.fork()
        if pid == 0:  # the child
            _child(req, fn, wfd, out_fd, scratch, self.cfg)
            os._exit(EXIT_SETUP)  # not reached
        os.close(wfd)
        os.set_blocking(rfd, False)
        child = _Child(rid, pid, rfd, out_fd, scratch, limits)
        self.children[pid] = self.by_fd[rfd] = self.by_id[rid] = child
        self.poll.register(rfd, select.POLLIN | select.POLLHUP | select.POLLERR)
        return child

    def kill(self, child: _Child, why: str):
        if child.status is None and child.killed is None:
            child.killed = why
            try:
                os.kill(child.pid, signal.SIGKILL)  # still unreaped: the pid cannot be reused
            except ProcessLookupError:
                pass

    def read_child(self, child: _Child):
        while True:
            try:
                chunk = os.read(child.rfd, 65536)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                child.eof = True
                self.poll.unregister(child.rfd)
                return
            child.total += len(chunk)
            if child.total > int(child.limits["result_bytes"]):
                self.kill(child, "too_much_data")
                continue  # drain until EOF
            child.buf += chunk
            while (nl := child.buf.find(b"\n")) >= 0:
                line = bytes(child.buf[:nl])
                del child.buf[:nl + 1]
                self.child_line(child, line)
            if len(child.buf) > MAX_LINE:
                self.kill(child, "too_much_data")
                child.buf.clear()

    def child_line(self, child: _Child, line: bytes):
        if child.has_result or child.violation or child.killed:
            return
        try:
            msg = json.loads(line)
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        if "event" in msg:
            self.reply({"id": child.id, "event": msg["event"]})
        elif "result" in msg:
            child.result, child.has_result = msg["result"], True
        elif "violation" in msg:
            child.violation = (str(msg["violation"])[:40], str(msg.get("detail", ""))[:200])
        elif "error" in msg:
            child.error = str(msg["error"])[:2000]

    def reap(self):
        for child in list(self.children.values()):
            if child.status is not None:
                continue
            try:
                pid, status, rusage = os.wait4(child.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status, rusage = child.pid, 0, None
            if pid:
                child.status, child.rusage = status, rusage

    def scratch_usage(self, child: _Child) -> tuple[int, int]:
        total = count = 0
        stack = [child.scratch]
        while stack and count < 100_000:
            try:
                with os.scandir(stack.pop()) as it:
                    for entry in it:
                        count += 1
                        st = entry.stat(follow_symlinks=False)
                        total += st.st_blocks * 512
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
            except OSError:
                pass
        return total, count

    def finish(self, child: _Child):
        limits = child.limits
        status, ru = child.status, child.rusage
        cpu = (ru.ru_utime + ru.ru_stime) if ru else 0.0
        try:
            out_size = os.fstat(child.out_fd).st_size
            tail = os.pread(child.out_fd, 4096, max(0, out_size - 4096)).decode("utf-8", "replace")
        except OSError:
            out_size, tail = 0, ""
        os.close(child.out_fd)
        os.close(child.rfd)
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        meta = {"scratch": child.scratch, "pid": child.pid, "wall_s": round(time.monotonic() - child.started, 4),
                "cpu_s": round(cpu, 4), "max_rss_mb": round(ru.ru_maxrss / 1024, 1) if ru else None,
                "exit": code if code is not None else -sig, "output_bytes": out_size}
        kind, detail = None, ""
        if child.killed:
            kind = child.killed
        elif child.violation:
            kind, detail = child.violation
        elif sig == signal.SIGXFSZ or out_size >= int(limits["output_bytes"]):
            kind = "output" if out_size >= int(limits["output_bytes"]) else "file_size"
        elif sig == signal.SIGSYS:
            kind = "syscall"
        elif sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= float(limits["cpu_s"]) - 0.05):
            kind = "cpu"
        elif sig:
            kind, detail = "crash", signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        elif code == EXIT_MEMORY:
            kind = "memory"
        elif code == 0 and child.has_result:
            kind = None
        elif child.error and code == EXIT_SETUP:
            kind, detail = "setup", child.error
        elif child.error:
            kind, detail = "job_error", child.error
        else:
            kind, detail = "exit", str(code)
        _rmtree(child.scratch)
        del self.children[child.pid], self.by_fd[child.rfd], self.by_id[child.id]
        if kind is None:
            self.reply({"id": child.id, "done": {"result": child.result, "output": tail, "meta": meta}})
        else:
            self.reply({"id": child.id, "error": {"kind": kind, "detail": detail, "output": tail, "meta": meta}})

    def tick(self):
        now = time.monotonic()
        for child in list(self.children.values()):
            if child.status is None and child.killed is None:
                if now >= child.deadline:
                    self.kill(child, "timeout")
                elif now >= child.next_disk:
                    child.next_disk = now + 0.2
                    used, files = self.scratch_usage(child)
                    if os.fstat(child.out_fd).st_size >= int(child.limits["output_bytes"]):
                        self.kill(child, "output")  # it may have chosen to ignore SIGXFSZ
                    elif used > int(child.limits["scratch_mb"]) << 20 or files > 2000:
                        self.kill(child, "disk")
            if child.status is not None and child.eof:
                self.finish(child)
            elif child.status is not None and not child.eof:
                self.read_child(child)  # the pipe has no writer left: drains to EOF
                if child.eof:
                    self.finish(child)

    def timeout_ms(self) -> int:
        if not self.children:
            return 1000
        now = time.monotonic()
        soonest = min(min(c.deadline, c.next_disk) for c in self.children.values())
        return max(0, min(200, int((soonest - now) * 1000) + 1))

    def handle(self, msg: dict):
        op = msg.get("op")
        if op == "run":
            self.spawn(int(msg["id"]), str(msg["job"]), msg.get("args"), dict(msg["limits"]))
        elif op == "cancel":
            child = self.by_id.get(int(msg["id"]))
            if child:
                self.kill(child, "cancelled")

    def selftest(self) -> dict:
        limits = {"memory_mb": 256, "cpu_s": 10, "wall_s": 20, "output_bytes": 65536,
                  "scratch_mb": 4, "result_bytes": 65536}
        child = self.spawn(0, "_selftest", {}, limits)
        box = {}
        self.reply_orig, self.reply = self.reply, lambda obj: box.update(obj)
        try:
            while child.pid in self.children:
                self.poll.poll(50)
                if child.rfd in self.by_fd and not child.eof:
                    self.read_child(child)
                self.reap()
                self.tick()
        finally:
            self.reply = self.reply_orig
        return box

    def serve(self, in_fd: int):
        self.poll.register(in_fd, select.POLLIN | select.POLLHUP)
        self.poll.register(self.wake_r, select.POLLIN)
        buf = bytearray()
        try:
            while True:
                for fd, _ev in self.poll.poll(self.timeout_ms()):
                    if fd == in_fd:
                        chunk = os.read(in_fd, 1 << 16)
                        if not chunk:
                            return  # the server went away
                        buf += chunk
                        while (nl := buf.find(b"\n")) >= 0:
                            line = bytes(buf[:nl])
                            del buf[:nl + 1]
                            try:
                                self.handle(json.loads(line))
                            except Exception as exc:  # noqa: BLE001 - a bad request must not kill us
                                _log("bad request:", exc)
                        if len(buf) > MAX_REQUEST:
                            buf.clear()
                    elif fd == self.wake_r:
                        try:
                            while os.read(self.wake_r, 4096):
                                pass
                        except BlockingIOError:
                            pass
                    elif (child := self.by_fd.get(fd)) is not None:
                        self.read_child(child)
                self.reap()
                self.tick()
        finally:
            for child in list(self.children.values()):
                self.kill(child, "cancelled")
            for child in list(self.children.values()):
                try:
                    os.waitpid(child.pid, 0)
                except ChildProcessError:
                    pass
                _rmtree(child.scratch)


def _rmtree(path: str):
    def onerror(func, p, _exc):
        try:
            os.chmod(p, 0o700)
            func(p)
        except OSError:
            pass
    shutil.rmtree(path, onerror=onerror)
    if os.path.exists(path):
        shutil.rmtree(path, ignore_errors=True)


def _warm_up():
    """Import and touch what checks use, once, in one thread; prove no thread pool is alive."""
    import torch

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    x = torch.randn(8, 8, requires_grad=True)
    (torch.softmax(x @ x.T, dim=-1).sum() + torch.nn.functional.gelu(x).sum()).backward()
    import gptcore  # noqa: F401
    for name in ("gptcore.model", "gptcore.attention", "gptcore.generate", "gptcore.data",
                 "gptcore.tokenizers", "gptcore.exercises"):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a module being written right now
            pass
    try:  # each exercise's reference answer is imported lazily by the checker: do it once here
        for exercise in importlib.import_module("gptcore.exercises").EXERCISES:
            exercise.reference_object()
    except Exception:  # noqa: BLE001
        pass
    import landlock  # noqa: F401
    import pyseccomp  # noqa: F401 - dlopen libseccomp now, before any child is locked down


def main():
    cfg = json.loads(sys.argv[1])
    in_fd, out_fd = os.dup(0), os.dup(1)  # the protocol; nothing else may write to it
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(2, 1)  # a stray print goes to the server's stderr, never into the protocol
    os.close(null)
    hello = {"ok": False, "reason": "", "stage": "kernel", "pid": os.getpid(),
             "python": sys.version.split()[0], "landlock_abi": landlock_abi(), "seccomp": False}
    try:
        need = int(cfg.get("min_landlock_abi", 1))
        if hello["landlock_abi"] < need:
            raise OSError(errno.EOPNOTSUPP, f"Landlock ABI {hello['landlock_abi']} is below the required {need}")
        hello["stage"] = "startup"
        _warm_up()
        hello["threads"] = len(os.listdir("/proc/self/task"))
        cfg["landlock_abi"] = hello["landlock_abi"]
        cfg["read_only"] = _read_only_paths(cfg["root"])
        cfg["devices"] = ["/dev/null", "/dev/zero", "/dev/urandom"]
        zygote = Zygote(cfg, out_fd)
        hello["stage"] = "kernel"  # from here on, a failure is the self-test's: the kernel said no
        hello["jobs"] = sorted(j for j in zygote.jobs if not j.startswith("_"))
        hello["job_errors"] = zygote.job_errors
        box = zygote.selftest()
        if "done" in box:
            t = box["done"]["result"]
            hello["seccomp"] = t.get("seccomp_mode") == 2 and t.get("seccomp_socket") is True
            landlock_ok = all(t.get(k) is True for k in ("landlock_root", "landlock_proc", "landlock_write"))
            if not hello["seccomp"]:
                hello["reason"] = "seccomp filter not in force in the test child"
            elif not landlock_ok:
                hello["reason"] = "Landlock rules not in force in the test child"
            elif not t.get("scratch_write"):
                hello["reason"] = "the scratch folder was not writable"
            else:
                hello["ok"] = True
            hello["selftest"] = t
        else:
            err = box.get("error", {})
            hello["reason"] = err.get("detail") or err.get("kind") or "self-test child failed"
    except Exception as exc:  # noqa: BLE001 - report, then exit: never serve unsandboxed
        hello["reason"] = f"{type(exc).__name__}: {exc}"
    _write_all(out_fd, (json.dumps({"hello": hello}) + "\n").encode())
    if hello["ok"]:
        zygote.serve(in_fd)


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    main()
