"""The real `cairn` CLI against three real cairn-nodes and a real
cairn-gateway (tests/process/drive.py): login and its 0600 config file,
small and empty files byte-identical both ways, folders, moves, the trash and
restore by path, versions and `get --version`, a stale --if-match (exit 5
with the server's message), a large put through tus killed mid-way and
resumed from the server's offset, a get killed mid-way and resumed with
Range, sharing with a second user (viewer cannot write: exit 3), `watch`
printing events as they happen, admin commands, logout revoking the token,
and the exit codes for not found (4), conflict (5), auth (3), no server (6)
and usage (2)."""
import hashlib
import json
import os
import re
import signal
import stat
import subprocess
import time

import pytest
import requests

from drive import ADMIN_PASSWORD, Drive, built
from harness import binary, free_port, wait_until

pytestmark = pytest.mark.skipif(not built(), reason="cairn-gateway not built")

CAIRN = binary("cairn")
MiB = 1 << 20


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    with Drive(tmp_path_factory.mktemp("drive")) as d:
        yield d


def unsupported(r):
    """A call the gateway does not serve yet (501, or a route it lacks) skips
    the test, naming it, so the test runs as soon as the gateway has it."""
    if r.returncode != 0 and ("CAIRN_EUNSUPPORTED" in r.stderr or "no such resource" in r.stderr):
        pytest.skip("gateway lacks: " + r.stderr.strip().splitlines()[0])


class User:
    """One person at a terminal: their own config and state folders."""

    def __init__(self, drive, home, name):
        self.drive = drive
        self.home = str(home)
        self.name = name
        self.env = dict(os.environ, HOME=self.home, XDG_CONFIG_HOME=os.path.join(self.home, "cfg"),
                        XDG_STATE_HOME=os.path.join(self.home, "state"), CAIRN_ENDPOINT=drive.url)
        self.env.pop("CAIRN_TOKEN", None)
        self.env.pop("CAIRN_PASSWORD", None)

    def run(self, *args, input=None, ok=True, timeout=300):
        r = subprocess.run([CAIRN, *args], env=self.env, capture_output=True, text=True,
                           input=input, timeout=timeout, cwd=self.home)
        unsupported(r)
        if ok:
            assert r.returncode == 0, f"cairn {' '.join(args)}: rc {r.returncode}\n{r.stderr}"
        return r

    def fails(self, code, *args, **kw):
        r = self.run(*args, ok=False, **kw)
        assert r.returncode == code, f"cairn {' '.join(args)}: rc {r.returncode}, want {code}\n{r.stderr}"
        assert r.stderr.startswith("cairn: "), r.stderr
        return r

    def login(self, password):
        return self.run("login", self.name, "--password-stdin", input=password + "\n")

    def token(self):
        with open(os.path.join(self.home, "cfg", "cairn", "config")) as f:
            for line in f:
                if line.startswith("token = "):
                    return line.split("=", 1)[1].strip()
        return None

    def path(self, name):
        return os.path.join(self.home, name)

    def write(self, name, data):
        with open(self.path(name), "wb") as f:
            f.write(data)
        return self.path(name)

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()

    def stat(self, remote):
        return json.loads(self.run("--json", "stat", remote).stdout)


@pytest.fixture(scope="module")
def admin(drive, tmp_path_factory):
    u = User(drive, tmp_path_factory.mktemp("admin-home"), "admin")
    u.login(ADMIN_PASSWORD)
    return u


@pytest.fixture(scope="module")
def alice(drive, admin, tmp_path_factory):
    admin.run("admin", "user", "add", "alice", "--password-stdin", input="alice-password\n")
    u = User(drive, tmp_path_factory.mktemp("alice-home"), "alice")
    u.login("alice-password")
    return u


def sha(data):
    return hashlib.sha256(data).hexdigest()


def test_login_writes_a_private_config(drive, admin, tmp_path):
    cfg = os.path.join(admin.home, "cfg", "cairn")
    st = os.stat(os.path.join(cfg, "config"))
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(cfg).st_mode) == 0o700
    text = open(os.path.join(cfg, "config")).read()
    assert f"endpoint = {drive.url}" in text and "user = admin" in text and admin.token()
    # The file alone is enough: no endpoint in the environment.
    env_less = User(drive, admin.home, "admin")
    env_less.env.pop("CAIRN_ENDPOINT")
    env_less.run("ls")
    # A wrong password: exit 3 with the server's words; the file is untouched.
    other = User(drive, tmp_path, "admin")
    r = other.fails(3, "login", "admin", "--password-stdin", input="wrong\n")
    assert "HTTP 401" in r.stderr
    assert not os.path.exists(os.path.join(str(tmp_path), "cfg", "cairn", "config"))


def test_small_files_round_trip(alice):
    alice.write("orphan", b"x")
    # Into a folder that does not exist: the server says so (exit 4).
    r = alice.fails(4, "put", alice.path("orphan"), "Small/")
    assert "HTTP 404" in r.stderr
    alice.run("mkdir", "Small")
    for size in (0, 1, 100_000):
        data = os.urandom(size)
        alice.write(f"f{size}", data)
        alice.run("put", alice.path(f"f{size}"), "Small/")
        remote = f"Small/f{size}"
        entry = alice.stat(remote)
        assert entry["size"] == size and entry["kind"] == "file" and entry["version"] >= 1
        alice.run("get", remote, alice.path(f"back{size}"))
        assert alice.read(f"back{size}") == data
        assert not os.path.exists(alice.path(f"back{size}.cairn-part"))
        out = subprocess.run([CAIRN, "get", remote, "-"], env=alice.env, capture_output=True,
                             timeout=120)
        assert out.returncode == 0 and out.stdout == data
    names = alice.run("ls", "Small").stdout
    assert "f0" in names and "f1" in names and "f100000" in names
    # An existing folder as the remote target keeps the local name.
    alice.run("put", alice.path("f1"), "Small")
    assert alice.stat("Small/f1")["version"] >= 2
    # A folder as the local target keeps the remote name.
    os.mkdir(alice.path("into"))
    alice.run("get", "Small/f1", alice.path("into"))
    assert os.path.exists(os.path.join(alice.path("into"), "f1"))


def test_folders_moves_trash_and_restore(alice):
    alice.run("mkdir", "-p", "Docs/2026/Q1")
    alice.run("mkdir", "-p", "Docs/2026/Q1")  # -p: existing folders are fine
    r = alice.fails(5, "mkdir", "Docs")
    assert "HTTP 409" in r.stderr
    alice.write("report.txt", b"quarterly\n")
    alice.run("put", alice.path("report.txt"), "Docs/2026/Q1/report draft.txt")
    alice.run("mv", "Docs/2026/Q1/report draft.txt", "Docs/report #1.txt")
    alice.fails(4, "stat", "Docs/2026/Q1/report draft.txt")
    assert alice.stat("Docs/report #1.txt")["size"] == 10
    listing = [json.loads(line) for line in alice.run("--json", "ls", "Docs").stdout.splitlines()]
    assert {e["name"] for e in listing} == {"2026", "report #1.txt"}
    item = alice.stat("Docs/report #1.txt")
    alice.run("rm", "Docs/report #1.txt")
    r = alice.fails(4, "stat", "Docs/report #1.txt")
    assert "HTTP 404" in r.stderr
    alice.run("restore", item["id"])
    assert alice.run("get", "Docs/report #1.txt", "-").stdout == "quarterly\n"
    alice.fails(4, "restore", "12345")
    alice.fails(2, "mv", "only-one")
    # Purged for good: nothing left to restore.
    alice.write("gone.txt", b"gone\n")
    alice.run("put", alice.path("gone.txt"), "Docs/gone.txt")
    gone = alice.stat("Docs/gone.txt")
    alice.run("rm", "Docs/gone.txt")
    alice.run("trash", "purge", gone["id"])
    alice.fails(4, "restore", gone["id"])
    alice.fails(2, "trash", "purge")


def test_trash_listing_and_restore_by_path(alice):
    alice.run("mkdir", "-p", "Bin")
    alice.write("junk.txt", b"junk\n")
    alice.run("put", alice.path("junk.txt"), "Bin/junk.txt")
    alice.run("rm", "Bin/junk.txt")
    assert "junk.txt" in alice.run("trash").stdout
    alice.run("restore", "Bin/junk.txt")
    assert alice.run("get", "Bin/junk.txt", "-").stdout == "junk\n"
    alice.fails(4, "restore", "Bin/never-there")


def test_versions_and_stale_base(alice):
    alice.write("v.txt", b"one\n")
    alice.run("put", alice.path("v.txt"), "v.txt")
    first = alice.stat("v.txt")
    alice.write("v.txt", b"two!\n")
    alice.run("put", alice.path("v.txt"), "v.txt", "--if-match", first["etag"])
    second = alice.stat("v.txt")
    assert second["version"] > first["version"]
    versions = [json.loads(l) for l in alice.run("--json", "versions", "v.txt").stdout.splitlines()]
    assert {first["version"], second["version"]} <= {v["version"] for v in versions}
    alice.run("get", "v.txt", alice.path("old.txt"), "--version", str(first["version"]))
    assert alice.read("old.txt") == b"one\n"
    # A stale If-Match: the server refuses; exit 5 and its message.
    alice.write("v.txt", b"three\n")
    r = alice.fails(5, "put", alice.path("v.txt"), "v.txt", "--if-match", first["etag"])
    assert "HTTP 409" in r.stderr or "HTTP 412" in r.stderr
    # A stale base on a file large enough for tus: still refused, nothing replaced.
    alice.write("v-big.bin", os.urandom(9 * MiB))
    r = alice.fails(5, "put", alice.path("v-big.bin"), "v.txt", "--base", str(first["version"]))
    assert "HTTP 409" in r.stderr
    assert alice.stat("v.txt")["version"] == second["version"]
    alice.run("versions", "v.txt", "--restore", str(first["version"]))
    assert alice.run("get", "v.txt", "-").stdout == "one\n"


def poll_until(condition, what, timeout=120):
    """wait_until with a tight, fixed pace: for catching a transfer in flight
    (wait_until's growing pause could let a fast one finish first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.005)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def interrupt(proc):
    """Freezes the client at once (SIGSTOP), then kills it as a crash would."""
    if proc.alive():
        os.kill(proc.pid, signal.SIGSTOP)
    proc.kill()


def record_files(user, kind):
    d = os.path.join(user.home, "state", "cairn", kind)
    return [os.path.join(d, f) for f in os.listdir(d)] if os.path.isdir(d) else []


def test_large_put_is_resumed_after_a_kill(alice, procs):
    size = 128 * MiB
    data = os.urandom(size)
    local = alice.write("big.bin", data)
    p = procs.start([CAIRN, "put", local, "big.bin", "--chunk-size", "1MiB", "--no-progress"],
                    name="cairn-put", env=alice.env)

    def recorded_url():
        files = record_files(alice, "uploads")
        return files and open(files[0]).read().strip()

    url = poll_until(lambda: recorded_url() or not p.alive(), "the upload recorded")
    assert p.alive(), p.log()
    headers = {"Authorization": "Bearer " + alice.token(), "Tus-Resumable": "1.0.0"}

    def offset():
        return int(requests.head(url, headers=headers, timeout=30).headers["Upload-Offset"])

    poll_until(lambda: offset() >= 2 * MiB or not p.alive(), "some bytes uploaded")
    interrupt(p)
    at_kill = offset()
    assert 0 < at_kill < size, f"the put finished before it could be killed ({at_kill})"
    r = alice.run("put", local, "big.bin", "--chunk-size", "8MiB")
    assert "resuming the upload" in r.stderr, r.stderr
    resumed_at = int(r.stderr.split("at byte ")[1].split()[0])
    assert resumed_at >= at_kill
    assert record_files(alice, "uploads") == []
    assert alice.stat("big.bin")["size"] == size
    alice.run("get", "big.bin", alice.path("big.back"))
    assert sha(alice.read("big.back")) == sha(data)


def test_get_is_resumed_after_a_kill(alice, procs):
    size = 64 * MiB
    data = os.urandom(size)
    alice.run("put", alice.write("dl.bin", data), "dl.bin", "--chunk-size", "16MiB")
    target = alice.path("dl.copy")
    part = target + ".cairn-part"
    p = procs.start([CAIRN, "get", "dl.bin", target, "--no-progress"], name="cairn-get",
                    env=alice.env)
    poll_until(lambda: (os.path.exists(part) and os.path.getsize(part) >= 2 * MiB) or not p.alive(),
               "part of the download")
    interrupt(p)
    have = os.path.getsize(part) if os.path.exists(part) else size
    assert 0 < have < size, f"the get finished before it could be killed ({have})"
    assert not os.path.exists(target)
    r = alice.run("get", "dl.bin", target)
    assert "resuming the download" in r.stderr, r.stderr
    assert sha(alice.read("dl.copy")) == sha(data)
    assert not os.path.exists(part) and record_files(alice, "downloads") == []
    # A part file of another version is started again, not spliced.
    with open(part, "wb") as f:
        f.write(b"x" * 1000)
    alice.run("get", "dl.bin", target)
    assert sha(alice.read("dl.copy")) == sha(data)


def test_sharing(drive, admin, alice, tmp_path):
    admin.run("admin", "user", "add", "bob", "--password-stdin", input="bob-password\n")
    bob = User(drive, tmp_path, "bob")
    bob.login("bob-password")
    alice.run("mkdir", "-p", "Shared/Plans")
    alice.write("plan.txt", b"the plan\n")
    alice.run("put", alice.path("plan.txt"), "Shared/Plans/plan.txt")
    alice.run("share", "Shared", "bob", "--role", "viewer")
    assert "bob" in alice.run("share", "Shared").stdout

    def shared_root():
        # The grant reaches bob's side through the metadata's outbox: soon, not at once.
        shares = [json.loads(l) for l in bob.run("--json", "shared").stdout.splitlines()]
        return ([s["root"] for s in shares if s["name"] == "Shared"] or [None])[0]

    root = wait_until(shared_root, "the share listed by bob's `cairn shared`")
    assert "Plans" in bob.run("--root", root, "ls").stdout
    assert bob.run("--root", root, "get", "Plans/plan.txt", "-").stdout == "the plan\n"
    bob.write("mine.txt", b"bob was here\n")
    r = bob.fails(3, "--root", root, "put", bob.path("mine.txt"), "Plans/mine.txt")
    assert "HTTP 403" in r.stderr
    # As an editor bob writes into the share, small (PUT ?root=) and large (tus "root").
    alice.run("share", "Shared", "bob", "--role", "editor")
    bob.write("big-from-bob.bin", os.urandom(10 * MiB))

    def bob_can_write():
        return bob.run("--root", root, "put", bob.path("mine.txt"), "Plans/mine.txt",
                       ok=False).returncode == 0

    wait_until(bob_can_write, "bob's editor role in effect")
    bob.run("--root", root, "put", bob.path("big-from-bob.bin"), "Plans/", "--tus-min", "1MiB",
            "--chunk-size", "4MiB")
    assert alice.stat("Shared/Plans/mine.txt")["size"] == len(b"bob was here\n")
    assert alice.stat("Shared/Plans/big-from-bob.bin")["size"] == 10 * MiB
    alice.run("get", "Shared/Plans/big-from-bob.bin", alice.path("from-bob.bin"))
    assert alice.read("from-bob.bin") == bob.read("big-from-bob.bin")
    alice.run("unshare", "Shared", "bob")
    r = wait_until(lambda: (lambda r: r if r.returncode != 0 else None)(bob.run("--root", root, "ls", ok=False)),
                   "bob's access gone")
    assert r.returncode in (3, 4), r.stderr


def test_watch_prints_events_as_they_happen(alice, procs):
    p = procs.start([CAIRN, "--json", "watch", "--timeout", "20", "-n", "2"], name="cairn-watch",
                    env=alice.env)
    wait_until(lambda: "watching from cursor" in p.log() or not p.alive(), "watch started")
    assert p.alive(), p.log()
    alice.run("mkdir", "Watched")
    alice.write("w.txt", b"w")
    alice.run("put", alice.path("w.txt"), "Watched/w.txt")
    wait_until(lambda: not p.alive(), "watch exits after 2 events", timeout=120)
    assert p.popen.returncode == 0, p.log()
    events = [json.loads(l) for l in p.log().splitlines() if l.startswith("{")]
    assert [e["kind"] for e in events] == ["created", "created"], events
    assert {e["name"] for e in events} == {"Watched", "w.txt"}


def test_admin_commands(admin, alice):
    r = admin.fails(5, "admin", "user", "add", "alice", "--password-stdin", input="again-pw\n")
    assert "HTTP 409" in r.stderr
    r = alice.fails(3, "admin", "user", "add", "mallory", "--password-stdin", input="mallory-pw\n")
    assert "HTTP 403" in r.stderr
    status = json.loads(admin.run("admin", "status").stdout)  # skips while the gateway lacks it
    assert isinstance(status, dict) and status
    r = alice.fails(3, "admin", "status")
    assert "HTTP 403" in r.stderr


def test_exit_codes_without_a_usable_server(drive, alice, tmp_path):
    nobody = User(drive, tmp_path, "nobody")
    nobody.fails(3, "ls")  # not signed in
    r = nobody.fails(3, "--token", "not-a-token", "ls")
    assert "HTTP 401" in r.stderr
    r = nobody.fails(6, "--endpoint", f"http://127.0.0.1:{free_port()}", "--token", "t", "ls")
    assert "CAIRN_EUNAVAIL" in r.stderr
    nobody.fails(2, "frobnicate")
    nobody.fails(2, "get")
    nobody.fails(2, "login", "--password-stdin", input="pw\n")  # no user
    nobody.fails(2, "--endpoint", "ftp://nowhere", "ls")
    alice.fails(4, "get", "no/such/file", alice.path("x"))
    assert not os.path.exists(alice.path("x")) and not os.path.exists(alice.path("x.cairn-part"))
    # Bad local and remote inputs: named on stderr, nothing sent or half-written.
    alice.fails(4, "put", alice.path("no-such-local-file"), "x")
    r = alice.fails(1, "put", alice.home, "x")
    assert "not a regular file" in r.stderr
    alice.fails(1, "put", alice.write("ok.txt", b"ok"), "a/../b")
    alice.run("put", alice.path("ok.txt"), "ok.txt")
    alice.fails(4, "get", "ok.txt", alice.path("v999"), "--version", "999")
    assert not os.path.exists(alice.path("v999")) and not os.path.exists(alice.path("v999.cairn-part"))
    alice.run("mkdir", "-p", "AFolder")
    r = alice.fails(1, "get", "AFolder", alice.path("folder"))
    assert "is a folder" in r.stderr


def test_logout_revokes_the_token(drive, tmp_path, admin):
    admin.run("admin", "user", "add", "carol", "--password-stdin", input="carol-password\n")
    carol = User(drive, tmp_path, "carol")
    carol.login("carol-password")
    token = carol.token()
    carol.run("ls")
    carol.run("logout")
    assert carol.token() is None
    carol.fails(3, "ls")
    r = carol.fails(3, "--token", token, "ls")
    assert "HTTP 401" in r.stderr


class OwnGateway:
    """A second cairn-gateway on a port of our choosing, so it can be killed
    and started again at the same address while a client talks to it."""

    def __init__(self, drive, procs):
        self.drive = drive
        self.procs = procs
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self):
        self.proc = self.procs.start(
            [binary("cairn-gateway"), "--listen", f"127.0.0.1:{self.port}", "--nodes",
             ",".join(self.drive.addrs), "--secret", self.drive.secret, "--keys", self.drive.keys],
            name="gateway-own")

        def healthy():
            assert self.proc.alive(), self.proc.log()[-3000:]
            return requests.get(self.url + "/health", timeout=5).status_code == 200

        wait_until(healthy, "own gateway healthy", timeout=120)

    def kill(self):
        self.proc.kill()


def test_transfers_ride_out_a_gateway_restart(drive, alice, procs):
    """put (tus) and get keep going in the same run when their gateway dies
    and comes back: they ask the offset again, or Range from the part."""
    gw = OwnGateway(drive, procs)
    gw.start()
    env = dict(alice.env, CAIRN_ENDPOINT=gw.url)
    size = 128 * MiB
    data = os.urandom(size)
    local = alice.write("restart.bin", data)

    put = procs.start([CAIRN, "put", local, "restart.bin", "--chunk-size", "1MiB", "--no-progress"],
                      name="cairn-put-restart", env=env)
    poll_until(lambda: record_files(alice, "uploads") or not put.alive(), "the upload recorded")
    url = open(record_files(alice, "uploads")[0]).read().strip()
    headers = {"Authorization": "Bearer " + alice.token(), "Tus-Resumable": "1.0.0"}
    head = url.replace(gw.url, drive.url)  # ask the other gateway: any one serves a session
    poll_until(lambda: int(requests.head(head, headers=headers, timeout=30).headers["Upload-Offset"]) >= 2 * MiB
               or not put.alive(), "some bytes uploaded")
    gw.kill()
    assert put.alive(), put.log()
    gw.start()
    wait_until(lambda: not put.alive(), "put done", timeout=300)
    assert put.popen.returncode == 0, put.log()
    assert "resuming (1/5)" in put.log(), put.log()
    assert alice.stat("restart.bin")["size"] == size

    target = alice.path("restart.copy")
    get = procs.start([CAIRN, "get", "restart.bin", target, "--no-progress"],
                      name="cairn-get-restart", env=env)
    poll_until(lambda: (os.path.exists(target + ".cairn-part")
                        and os.path.getsize(target + ".cairn-part") >= 2 * MiB) or not get.alive(),
               "part of the download")
    gw.kill()
    assert get.alive(), get.log()
    gw.start()
    wait_until(lambda: not get.alive(), "get done", timeout=300)
    assert get.popen.returncode == 0, get.log()
    assert "resuming the download" in get.log(), get.log()
    assert sha(alice.read("restart.copy")) == sha(data)


def test_watch_rides_out_a_gateway_restart(drive, alice, procs):
    """A watch whose gateway dies goes on from its cursor when one is back:
    the event made while it was down is printed, none is lost."""
    gw = OwnGateway(drive, procs)
    gw.start()
    env = dict(alice.env, CAIRN_ENDPOINT=gw.url)
    p = procs.start([CAIRN, "--json", "watch", "--timeout", "5", "-n", "2"], name="cairn-watch-restart",
                    env=env)
    wait_until(lambda: "watching from cursor" in p.log() or not p.alive(), "watch started")
    alice.run("mkdir", "Before")
    wait_until(lambda: '"Before"' in p.log() or not p.alive(), "the first event")
    gw.kill()
    alice.run("mkdir", "During")  # through the module's gateway, while this one is down
    wait_until(lambda: "retrying in" in p.log() or not p.alive(), "the watch noticing")
    gw.start()
    wait_until(lambda: not p.alive(), "the watch done", timeout=120)
    assert p.popen.returncode == 0, p.log()
    events = [json.loads(l) for l in p.log().splitlines() if l.startswith("{")]
    assert [e["name"] for e in events] == ["Before", "During"], p.log()


def test_progress_bar_on_a_terminal_only(alice):
    """put and get draw the bar when stderr is a terminal (a pty here), and
    nothing of it when it is not."""
    import pty

    local = alice.write("prog.bin", os.urandom(12 * MiB))
    for args in (["put", local, "prog.bin", "--chunk-size", "4MiB"],
                 ["get", "prog.bin", alice.path("prog.back")]):
        master, slave = pty.openpty()
        p = subprocess.Popen([CAIRN, *args], env=alice.env, stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        os.close(master)
        assert p.wait(timeout=120) == 0, seen
        text = seen.decode(errors="replace")
        assert "\r" in text and "prog.bin  [" in text and "100%" in text and "12.0 MiB/12.0 MiB" in text, text
        # Every line counts against the whole file, also across tus PATCHes.
        totals = set(re.findall(r"/([0-9.]+ (?:B|KiB|MiB))  ", text))
        assert totals == {"12.0 MiB"}, text
        r = alice.run(*args)  # stderr is a pipe: no bar
        assert "%" not in r.stderr and "[" not in r.stderr, r.stderr
    assert alice.read("prog.back") == alice.read("prog.bin")


def run_measured(user, *args):
    """Runs cairn and returns (exit code, stderr, peak RSS in MiB) from wait4()."""
    p = subprocess.Popen([CAIRN, *args], env=user.env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, cwd=user.home)
    err = p.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, err, usage.ru_maxrss / 1024


def test_transfers_stream_with_bounded_memory(alice):
    """A 256 MiB file up (simple PUT and tus) and down: the client's peak RSS
    stays a fraction of the file's size (bytes go between the socket and the
    file in libcurl's buffers, never whole in memory)."""
    size = 256 * MiB
    block = os.urandom(MiB)
    path = alice.path("huge.bin")
    with open(path, "wb") as f:
        for _ in range(size // MiB):
            f.write(block)
    peaks = {}
    for name, args in (("put", ["put", path, "huge-simple.bin", "--tus-min", "1TiB"]),
                       ("tus", ["put", path, "huge-tus.bin", "--chunk-size", "64MiB"]),
                       ("get", ["get", "huge-tus.bin", alice.path("huge.back")])):
        rc, err, peak = run_measured(alice, *args)
        assert rc == 0, err
        peaks[name] = peak
    small_rc, _, baseline = run_measured(alice, "stat", "huge-tus.bin")
    assert small_rc == 0
    for name, peak in peaks.items():
        assert peak < baseline + 32, f"{name}: peak RSS {peak:.0f} MiB (a stat: {baseline:.0f} MiB)"
    assert os.path.getsize(alice.path("huge.back")) == size
    with open(alice.path("huge.back"), "rb") as f:
        assert all(f.read(MiB) == block for _ in range(size // MiB))
    print(f"peak RSS MiB: {peaks}, stat {baseline:.0f}")
