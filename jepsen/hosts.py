"""Hosts for Jepsen-style tests: one network namespace per node on this
machine, joined by a bridge that lives in a namespace of its own (the "hub",
where the clients run too). Nothing is added to the root namespace: no
address, no route, no interface, so test traffic cannot leave the namespaces
created here. Addresses come from 10.77.0.0/24 (hub 10.77.0.1, node i
10.77.0.(10+i)); every run has its own hub, so two runs do not collide.

Everything is created by Cluster.up() and removed by Cluster.down(), which is
called by the context manager, at exit (atexit), on SIGINT/SIGTERM, and can
be done after a crash with `jepsen/run --cleanup`, which removes whatever
carries the name prefix (namespaces "cairnj-<run>-*", tmpfs mounts under a
directory named "cairnj-<run>", processes inside those namespaces).

    with Cluster(3) as c:
        p = c.nodes[0].start([PY, "server.py", "--listen", c.nodes[0].addr])
        with c.nodes[1].netns():            # sockets made here live in n2
            s = socket.create_connection((c.nodes[0].addr, 8080))

Needs root, iproute2 and nftables.
"""
import atexit
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from contextlib import contextmanager

PREFIX = "cairnj-"
SUBNET = "10.77.0"
HUB_ADDR = SUBNET + ".1"
NFT_TABLE = "cairn_jepsen"
PY = "/usr/bin/python3"
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)
_live = set()
_live_lock = threading.Lock()
_handlers_installed = False
_prev_handlers = {}


class HostError(RuntimeError):
    pass


def run(argv, check=True, input=None, timeout=60):
    """Runs a command, returns CompletedProcess; raises HostError with its
    output on failure when check."""
    p = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise HostError(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr.strip() or p.stdout.strip()}")
    return p


def available():
    """None when the host layer can work here, else the reason it cannot."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, nftables, tmpfs mounts)"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} not found (install iproute2 and nftables; scripts/setup does)"
    try:
        run(["ip", "netns", "list"])
    except (HostError, OSError) as e:
        return f"ip netns unavailable: {e}"
    return None


@contextmanager
def netns(name):
    """Switches the calling thread into network namespace `name` for the
    body. Sockets created inside stay in that namespace afterwards."""
    orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    except OSError:
        os.close(orig)
        raise
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"setns({name}): {os.strerror(e)}")
        # Outside the namespace a 10.77.0.x address is not unreachable: this
        # machine's default route may answer any connection and then say
        # nothing, so a client in the wrong namespace waits out timeouts.
        if os.stat("/proc/thread-self/ns/net").st_ino != os.fstat(target).st_ino:
            raise OSError(f"setns({name}) left this thread in another namespace")
        try:
            yield
        finally:
            if _libc.setns(orig, CLONE_NEWNET) != 0:
                e = ctypes.get_errno()
                raise OSError(e, f"setns(back): {os.strerror(e)}")
    finally:
        os.close(target)
        os.close(orig)


def connect(ns, addr, port, timeout=2.0):
    """A TCP connection from inside namespace `ns`."""
    with netns(ns):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((addr, port))
    except BaseException:
        s.close()
        raise
    return s


class Process:
    """A process started inside a node's namespace. Popen's pid is the
    program's own (`ip netns exec` execs it)."""

    def __init__(self, host, argv, name, log_path, env=None, cwd=None):
        self.host = host
        self.argv = list(argv)
        self.name = name
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.popen = None
        self.starts = 0
        self.stopped_by_us = False  # a death we caused (kill, stop) is not a crash
        self.deaths = []  # exit statuses of earlier runs that died on their own
        self.expected_exits = set()  # exit statuses that are no crash (e.g. 4 on a full disk)

    def _note_death(self):
        """Before we kill or start it again: did it die on its own meanwhile?"""
        status = self.crashed()
        if status is not None:
            self.deaths.append(status)
            self.stopped_by_us = True  # counted once

    def start(self):
        self._note_death()
        full_env = dict(os.environ)
        full_env.update(self.env or {})
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(["ip", "netns", "exec", self.host.ns] + self.argv,
                                          stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          env=full_env, cwd=self.cwd, start_new_session=True)
        self.starts += 1
        self.stopped_by_us = False
        return self

    @property
    def pid(self):
        return self.popen.pid if self.popen else None

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def kill(self):
        """kill -9, as a crash would; waits for it."""
        self._note_death()
        self.stopped_by_us = True
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            self.popen.wait()
        return self.popen.returncode if self.popen else None

    def stop(self, grace=10.0):
        """SIGCONT (in case it is paused), SIGTERM, SIGKILL after `grace`."""
        self._note_death()
        self.stopped_by_us = True
        if not self.alive():
            return self.popen.returncode if self.popen else None
        for sig in (signal.SIGCONT, signal.SIGTERM):
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()
        return self.popen.returncode

    def crashed(self):
        """Dead, and not by our hand: its exit status (negative: the signal)."""
        if self.popen is None or self.stopped_by_us or self.alive():
            return None
        return self.popen.returncode

    def restart(self):
        self.kill()
        return self.start()

    def pause(self):
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.pid, signal.SIGCONT)


class Host:
    """One node: a namespace, an address, its processes and data dirs."""

    def __init__(self, cluster, index):
        self.cluster = cluster
        self.index = index
        self.name = f"n{index}"
        self.ns = f"{cluster.prefix}{self.name}"
        self.addr = f"{SUBNET}.{10 + index}"
        self.processes = []
        self.mounts = []
        self.proxies = {}  # port -> Process

    def __repr__(self):
        return f"Host({self.name} {self.addr} ns={self.ns})"

    def netns(self):
        return netns(self.ns)

    def connect(self, addr, port, timeout=2.0):
        return connect(self.ns, addr, port, timeout)

    def exec(self, argv, check=True, input=None):
        return run(["ip", "netns", "exec", self.ns] + list(argv), check=check, input=input)

    def nft(self, script):
        return run(["ip", "netns", "exec", self.ns, "nft", "-f", "-"], input=script)

    def start(self, argv, name=None, env=None, cwd=None):
        name = name or os.path.basename(argv[0])
        log = os.path.join(self.cluster.workdir, f"{self.name}-{name}-{len(self.processes)}.log")
        p = Process(self, argv, name, log, env=env, cwd=cwd)
        self.processes.append(p)
        return p.start()

    def diagnose(self):
        """What the network and the processes of this host look like now:
        its firewall rules (a fault not healed?), its TCP sockets and each
        process' scheduler state (T: stopped). Text, for a stuck run."""
        out = [f"==== {self.name} ({self.addr}, {self.ns})"]
        for argv in (["nft", "list", "ruleset"], ["ss", "-tanp"]):
            p = self.exec(argv, check=False)
            out.append(f"--- {' '.join(argv)} (exit {p.returncode})\n{p.stdout}{p.stderr}")
        for proc in self.processes:
            state = "not running"
            if proc.alive():
                try:
                    with open(f"/proc/{proc.pid}/status") as f:
                        state = next((l.split(":", 1)[1].strip() for l in f if l.startswith("State:")), "?")
                except OSError as e:
                    state = str(e)
            out.append(f"--- process {proc.name} pid {proc.pid}: {state}")
        return "\n".join(out) + "\n"

    def tmpfs(self, name, size_bytes):
        """A size-limited tmpfs at <workdir>/<node>-<name>, for a data
        directory that can be made to fill up."""
        path = os.path.join(self.cluster.workdir, f"{self.name}-{name}")
        os.makedirs(path, exist_ok=True)
        run(["mount", "-t", "tmpfs", "-o", f"size={int(size_bytes)},mode=0755", f"{PREFIX}tmpfs", path])
        self.mounts.append(path)
        return path


class Cluster:
    """n nodes in namespaces joined by a bridge in a hub namespace."""

    def diagnose_hub(self):
        """The hub's addresses, routes and TCP sockets (the clients' side),
        as text, for a stuck run."""
        out = [f"==== hub ({self.hub})"]
        for argv in (["ip", "-br", "addr"], ["ip", "route"], ["ss", "-tanp"]):
            p = run(["ip", "netns", "exec", self.hub] + argv, check=False)
            out.append(f"--- {' '.join(argv)} (exit {p.returncode})\n{p.stdout}{p.stderr}")
        return "\n".join(out) + "\n"

    def __init__(self, n, run_id=None, workdir=None):
        if not 1 <= n <= 200:
            raise ValueError("1..200 nodes")
        self.run_id = run_id or secrets.token_hex(3)
        self.prefix = f"{PREFIX}{self.run_id}-"
        self.hub = f"{self.prefix}hub"
        base = workdir or "/tmp"
        self.workdir = os.path.join(base, f"{PREFIX}{self.run_id}")
        self.nodes = [Host(self, i + 1) for i in range(n)]
        self.hub_processes = []
        self._up = False
        self._down_lock = threading.RLock()  # a signal may arrive while down() runs

    def __enter__(self):
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc):
        self.down()
        return False

    def node(self, name):
        return next(h for h in self.nodes if h.name == name)

    def up(self):
        os.makedirs(self.workdir, exist_ok=True)
        with _live_lock:
            _live.add(self)
        _install_handlers()
        self._up = True
        run(["ip", "netns", "add", self.hub])
        run(["ip", "-n", self.hub, "link", "set", "lo", "up"])
        run(["ip", "-n", self.hub, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", self.hub, "addr", "add", f"{HUB_ADDR}/24", "dev", "br0"])
        run(["ip", "-n", self.hub, "link", "set", "br0", "up"])
        for h in self.nodes:
            run(["ip", "netns", "add", h.ns])
            run(["ip", "-n", h.ns, "link", "set", "lo", "up"])
            # Both ends are created directly in their namespaces.
            run(["ip", "link", "add", "eth0", "netns", h.ns, "type", "veth",
                 "peer", "name", h.name, "netns", self.hub])
            run(["ip", "-n", self.hub, "link", "set", h.name, "master", "br0", "up"])
            run(["ip", "-n", h.ns, "addr", "add", f"{h.addr}/24", "dev", "eth0"])
            run(["ip", "-n", h.ns, "link", "set", "eth0", "up"])
            h.nft(_NFT_BASE)
        return self

    def hub_netns(self):
        """Clients run here (in threads switched into the hub)."""
        return netns(self.hub)

    def hub_connect(self, addr, port, timeout=2.0):
        return connect(self.hub, addr, port, timeout)

    def start_in_hub(self, argv, name):
        h = Host(self, 0)
        h.ns, h.name = self.hub, "hub"
        p = Process(h, argv, name, os.path.join(self.workdir, f"hub-{name}-{len(self.hub_processes)}.log"))
        self.hub_processes.append(p)
        return p.start()

    def down(self):
        """Stops every process, unmounts, deletes the namespaces. Safe to
        call twice, from a signal handler, or after a partial up()."""
        with self._down_lock:
            if not self._up:
                return
            for h in self.nodes:
                for p in list(h.proxies.values()) + h.processes:
                    try:
                        p.stop(grace=5)
                    except Exception:
                        pass
            for p in self.hub_processes:
                try:
                    p.stop(grace=5)
                except Exception:
                    pass
            cleanup(self.run_id)
            self._up = False
            with _live_lock:
                _live.discard(self)


_NFT_BASE = f"""
table inet {NFT_TABLE} {{
  chain partition {{ }}
  chain loss {{ }}
  chain latency_reset {{ }}
  chain input {{ type filter hook input priority 0; policy accept; jump partition; jump loss; jump latency_reset; }}
  chain output {{ type filter hook output priority 0; policy accept; jump loss; }}
  chain latency {{ type nat hook prerouting priority -100; policy accept; }}
}}
"""


def leftovers(run_id=None):
    """What is left of run `run_id` (or of every run): namespaces, mounts."""
    prefix = PREFIX + (f"{run_id}-" if run_id else "")
    out = run(["ip", "netns", "list"], check=False).stdout
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    nss = [n for n in names if n.startswith(prefix)]
    mark = "/" + PREFIX + (run_id if run_id else "")
    mounts = []
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 2 and mark in parts[1] and (parts[0].startswith(PREFIX) or parts[2] == "tmpfs"):
                mounts.append(parts[1])
    links = [line.split(":")[1].strip().split("@")[0]
             for line in run(["ip", "-o", "link", "show"], check=False).stdout.splitlines()
             if ":" in line and line.split(":")[1].strip().startswith(PREFIX)]
    return {"namespaces": nss, "mounts": mounts, "links": links}


def cleanup(run_id=None):
    """Removes everything left by run `run_id` (or by every run): kills the
    processes inside its namespaces (they are ours: they were started there),
    unmounts its tmpfs, deletes its namespaces and any link with our prefix.
    Returns what it removed."""
    left = leftovers(run_id)
    for ns in left["namespaces"]:
        pids = run(["ip", "netns", "pids", ns], check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGCONT)
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
    for m in sorted(left["mounts"], key=len, reverse=True):
        if run(["umount", m], check=False).returncode != 0:
            run(["umount", "-l", m], check=False)
    for ns in left["namespaces"]:
        for _ in range(50):
            if run(["ip", "netns", "del", ns], check=False).returncode == 0:
                break
            time.sleep(0.1)
    for link in left["links"]:
        run(["ip", "link", "del", link], check=False)
    return left


def cleanup_all_live():
    with _live_lock:
        live = list(_live)
    for c in live:
        try:
            c.down()
        except Exception:
            pass


def _on_signal(signum, frame):
    cleanup_all_live()
    prev = _prev_handlers.get(signum, signal.SIG_DFL)
    if callable(prev):
        prev(signum, frame)
    elif prev == signal.SIG_IGN:
        return
    else:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _install_handlers():
    global _handlers_installed
    if _handlers_installed or threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        _prev_handlers[sig] = signal.getsignal(sig)
        signal.signal(sig, _on_signal)
    atexit.register(cleanup_all_live)
    _handlers_installed = True
