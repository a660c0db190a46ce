"""Process-test harness: start real programs on free loopback ports, wait on
conditions (never fixed sleeps), and always stop what was started, by PID.

Use through the `procs` fixture (conftest.py):

    def test_x(procs):
        port = free_port()
        p = procs.start(["cairn-node", "run", ...], name="node1")
        wait_until(lambda: port_open(port), "node1 listening")
"""
import atexit
import os
import random
import signal
import socket
import subprocess
import time

SOURCE = os.environ.get("CAIRN_SOURCE", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BIN = os.environ.get("CAIRN_BIN", os.path.join(SOURCE, "build", "bin"))
# Generous: a busy 2-core machine makes tests slower, never flaky.
DEFAULT_TIMEOUT = float(os.environ.get("CAIRN_TEST_TIMEOUT", "60"))


def binary(name):
    """Path of a Cairn binary in the build, e.g. binary('cairn-node')."""
    return os.path.join(BIN, name)


_ports = random.SystemRandom()  # not the global generator: tests seed that one
_claimed = []  # files of the ports this process holds (below)
PORT_CLAIMS = "/tmp/cairn-test-ports"


def _claim(port):
    """Claims port for this process against the other test processes ctest
    runs at the same time: a file named after the port, created exclusively
    and removed when this process exits. A port another process picked but
    has not bound yet passes the bind check below; its claim does not. A
    claim left by a process that died is never taken over (rare; the range
    is large)."""
    os.makedirs(PORT_CLAIMS, exist_ok=True)
    path = os.path.join(PORT_CLAIMS, str(port))
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    _claimed.append(path)
    return True


@atexit.register
def _release():
    for path in _claimed:
        try:
            os.unlink(path)
        except OSError:
            pass


def free_port(host="127.0.0.1"):
    """A port that was free a moment ago, below the kernel's ephemeral range
    (/proc/sys/net/ipv4/ip_local_port_range, 32768-60999 here): a port taken
    from that range (bind to 0) can be handed out again as the local port of
    another process's outgoing connection before our server binds it, and the
    server then fails with "address already in use" (seen in ctest's
    parallel runs). Never one handed out before, by this process or by
    another test process running now (_claim): a node's address is picked
    before it binds it, and session 6's CI lost a node to "listen: address
    already in use" that way, most likely to another test picking the same
    port in between."""
    for _ in range(1000):
        port = _ports.randint(20000, 32000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        if _claim(port):
            return port
    raise RuntimeError("no free port in 20000-32000")


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_until(condition, what, timeout=DEFAULT_TIMEOUT, interval=0.05):
    """Polls condition() until it returns a true value, which is returned.
    Raises TimeoutError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as e:  # a condition may fail while a server starts
            last_error = e
        time.sleep(interval)
        interval = min(interval * 1.5, 1.0)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}"
                       + (f" (last error: {last_error!r})" if last_error else ""))


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class Proc:
    """One started program: its Popen, its name and where its output goes."""

    def __init__(self, popen, name, log_path):
        self.popen = popen
        self.name = name
        self.log_path = log_path

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, grace=10.0):
        """SIGTERM, then SIGKILL after `grace` seconds. Returns the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode

    def kill(self):
        """kill -9, as a crash would."""
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
        return self.popen.returncode


class Procs:
    """Every process a test started; stop_all() is called at teardown."""

    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.started = []

    def start(self, argv, name=None, env=None, cwd=None):
        name = name or os.path.basename(argv[0])
        log_path = os.path.join(self.log_dir, f"{name}-{len(self.started)}.log")
        log = open(log_path, "ab")
        full_env = dict(os.environ)
        full_env.update(env or {})
        popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env=full_env, cwd=cwd)
        log.close()
        proc = Proc(popen, name, log_path)
        self.started.append(proc)
        return proc

    def stop_all(self):
        for proc in reversed(self.started):
            proc.stop()

    def dump_logs(self, tail=40):
        out = []
        for proc in self.started:
            lines = proc.log().splitlines()[-tail:]
            out.append(f"--- {proc.name} (pid {proc.pid}, rc {proc.popen.returncode})\n" + "\n".join(lines))
        return "\n".join(out)
