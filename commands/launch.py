"""Run a training command on MXNet's parameter server: one scheduler, servers and workers.

    python launch.py -n 2 -- python train_cifar10.py --kv-store dist_sync --classes 0,1
    python launch.py -n 4 -s 2 -H hosts -- python train_cifar10.py --kv-store dist_sync

Every process runs the same command with its role in DMLC_ROLE (MXNet turns a scheduler or server
process into its kvstore loop on `import mxnet`, as MXNet's own tools/launch.py relies on).
Locally (the default) all of them run on this machine and talk over 127.0.0.1. With -H HOSTS (a
file with one host name or address per line) workers and servers are started round robin on
those hosts with ssh, in the same folder path as here; the scheduler runs on this machine and
the hosts reach it at --scheduler-host.

The launcher watches every process. When one exits with an error, the others would wait for it
forever (the parameter server has no failure detection that helps), so the launcher stops all of
them, says which one failed, and exits with its code. When the workers are done, the servers
and the scheduler get --grace seconds to finish by themselves.
"""
import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import time

# common.cli and common.cpu are the standard library only: MXNet never loads in the launcher
from common import cpu
from common.cli import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_TIMEOUT, EXIT_USAGE, ArgumentParser

POLL_SECONDS = 0.2


def build_parser():
    parser = ArgumentParser(__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--num-workers", type=int, required=True, help="worker processes")
    parser.add_argument("-s", "--num-servers", type=int, default=None,
                        help="server processes; None: as many as workers (as MXNet's launch.py)")
    parser.add_argument("-H", "--hostfile", default=None,
                        help="start workers and servers on these hosts with ssh; None: all local")
    parser.add_argument("--scheduler-host", default=None,
                        help="the address of this machine as the workers reach it; None: "
                             "127.0.0.1 locally, this machine's host name with -H")
    parser.add_argument("--port", type=int, default=0, help="the scheduler's port; 0: a free one")
    parser.add_argument("--timeout", type=float, default=None,
                        help="stop everything after this many seconds (None: no limit)")
    parser.add_argument("--grace", type=float, default=10.0,
                        help="seconds the servers and scheduler get to exit after the workers")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="the training command, after --")
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if not args.command:
        parser.error("no command: put it after --, e.g. -- python train_cifar10.py --kv-store dist_sync")
    if args.num_workers < 1 or (args.num_servers is not None and args.num_servers < 1):
        parser.error("-n and -s must be at least 1")
    if args.num_servers is None:
        args.num_servers = args.num_workers
    return args


def read_hosts(path):
    with open(path) as f:
        hosts = [line.split("#")[0].strip() for line in f]
    hosts = [h for h in hosts if h]
    if not hosts:
        raise ValueError("%s lists no hosts" % path)
    return hosts


def free_port(host):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------------------------
# The processes of a job

def plan(args, hosts=None):
    """[(name, host, env)] for the scheduler, the servers and the workers; host None is local."""
    root = args.scheduler_host or ("127.0.0.1" if hosts is None else socket.getfqdn())
    port = args.port or free_port("127.0.0.1" if hosts is None else "")
    common = {"DMLC_PS_ROOT_URI": root, "DMLC_PS_ROOT_PORT": str(port),
              "DMLC_NUM_SERVER": str(args.num_servers), "DMLC_NUM_WORKER": str(args.num_workers)}
    roles = [("scheduler", "scheduler", None)]
    roles += [("server %d" % i, "server", None if hosts is None else hosts[i % len(hosts)])
              for i in range(args.num_servers)]
    roles += [("worker %d" % i, "worker", None if hosts is None else hosts[i % len(hosts)])
              for i in range(args.num_workers)]
    jobs = []
    for name, role, host in roles:
        env = dict(common, DMLC_ROLE=role, DMLC_NODE_HOST=host or root)
        if hosts is None and role == "worker" and "OMP_NUM_THREADS" not in os.environ:
            # Local workers share this machine's cores instead of each taking all of them.
            env["OMP_NUM_THREADS"] = str(max(1, cpu.usable_cores() // args.num_workers))
        if role != "worker":
            env["OMP_NUM_THREADS"] = "1"  # a server only sums and updates
        jobs.append((name, host, env))
    return jobs


def start(command, host, env):
    """Starts one process (in a session of its own, so that its children stop with it)."""
    if host is None:
        return subprocess.Popen(command, env=dict(os.environ, **env), start_new_session=True)
    exports = " ".join("%s=%s" % (k, shlex.quote(v)) for k, v in sorted(env.items()))
    remote = "cd %s && env %s %s" % (shlex.quote(os.getcwd()), exports, shlex.join(command))
    return subprocess.Popen(["ssh", "-o", "BatchMode=yes", host, remote], start_new_session=True)


def stop(procs, grace=5.0):
    """SIGTERM to every running process group, SIGKILL to those still running after `grace` s."""
    for proc in procs.values():
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs.values():
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()


def _signal_group(proc, sig):
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def watch(procs, timeout=None, grace=10.0):
    """Waits for the job; returns (exit code, message or None). Stops everything on a failure."""
    deadline = None if timeout is None else time.monotonic() + timeout
    workers = {n: p for n, p in procs.items() if n.startswith("worker")}
    workers_done_at = None
    while True:
        for name, proc in procs.items():
            code = proc.poll()
            if code not in (None, 0):
                stop(procs)
                how = "was killed by signal %d" % -code if code < 0 else "exited with code %d" % code
                return (code if code > 0 else EXIT_ERROR,
                        "%s %s; stopped the other processes of the job" % (name, how))
        if all(p.poll() is not None for p in procs.values()):
            return 0, None
        now = time.monotonic()
        if workers_done_at is None and all(p.poll() is not None for p in workers.values()):
            workers_done_at = now
        if workers_done_at is not None and now - workers_done_at > grace:
            stop(procs)
            return 0, None  # the work is done; servers that linger are only stopped
        if deadline is not None and now > deadline:
            stop(procs)
            return EXIT_TIMEOUT, "the job ran longer than --timeout %g s; stopped all its processes" % timeout
        time.sleep(POLL_SECONDS)


def main(argv=None):
    args = parse_args(argv)
    try:
        hosts = read_hosts(args.hostfile) if args.hostfile else None
    except (OSError, ValueError) as e:
        print("launch: error: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    procs = {}
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops the job as Ctrl-C does
    try:
        for name, host, env in plan(args, hosts):
            procs[name] = start(args.command, host, env)
        code, message = watch(procs, args.timeout, args.grace)
    except KeyboardInterrupt:
        stop(procs)
        code, message = EXIT_INTERRUPTED, "interrupted; stopped all processes of the job"
    except OSError as e:  # e.g. the command or ssh cannot be started
        stop(procs)
        code, message = EXIT_USAGE, "cannot start the job: %s" % e
    if message:
        print("launch: %s" % message, file=sys.stderr)
    return code
