"""The Jepsen host layer (jepsen/hosts.py, jepsen/nemesis.py) for real: three
network namespaces on a bridge, a TCP echo server in each, and every fault
applied and healed; then nothing may be left behind, also when the test body
raises or the process is killed by SIGTERM. Needs root and `ip netns`."""
import os
import random
import signal
import socket
import subprocess
import sys
import time

import pytest

SOURCE = os.environ.get("CAIRN_SOURCE", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
sys.path.insert(0, SOURCE)
sys.path.insert(0, os.path.dirname(__file__))

from harness import pid_alive, wait_until  # noqa: E402
from jepsen import hosts, nemesis  # noqa: E402

PY = "/usr/bin/python3"
PORT = 7070
ECHO = r"""
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(64)
print("ready", flush=True)
def serve(c):
    with c:
        while True:
            d = c.recv(4096)
            if not d: return
            c.sendall(d)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

why_not = hosts.available()
pytestmark = pytest.mark.skipif(why_not is not None, reason=str(why_not))


def echo(from_ns, addr, port=PORT, timeout=2.0, payload=b"ping"):
    """Round trip through the echo server; returns the seconds it took."""
    t0 = time.monotonic()
    with hosts.connect(from_ns, addr, port, timeout=timeout) as s:
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            d = s.recv(4096)
            if not d:
                break
            got += d
    assert got == payload
    return time.monotonic() - t0


def reachable(from_ns, addr, port=PORT, timeout=1.0):
    try:
        echo(from_ns, addr, port, timeout=timeout)
        return True
    except OSError:
        return False


def root_links():
    out = hosts.run(["ip", "-o", "link", "show"]).stdout
    return sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines())


def assert_gone(run_id, links_before=None):
    left = hosts.leftovers(run_id)
    assert left == {"namespaces": [], "mounts": [], "links": []}, left
    with open("/proc/mounts") as f:
        assert f"cairnj-{run_id}" not in f.read()
    if links_before is not None:
        # No bridge or veth was ever created in (or left in) the root namespace.
        assert root_links() == links_before


def start_echoes(c):
    servers = {}
    for h in c.nodes:
        servers[h.name] = h.start([PY, "-c", ECHO, h.addr, str(PORT)], name="echo")
    for h in c.nodes:
        wait_until(lambda: "ready" in servers[h.name].log(), f"echo on {h.name}")
    return servers


def test_grudges_are_what_they_say():
    rng = random.Random(1)
    nodes = ["n1", "n2", "n3", "n4", "n5"]
    g = nemesis.halves(nodes, rng)
    small = [n for n in nodes if len(g[n]) == 3]
    assert len(small) == 2 and all(g[n] == set(nodes) - set(small) for n in small)
    g = nemesis.isolate(nodes, "n3")
    assert g["n3"] == {"n1", "n2", "n4", "n5"} and g["n1"] == {"n3"}
    g = nemesis.bridge(nodes, rng)
    mid = [n for n in nodes if not g[n]]
    assert len(mid) == 1 and all(mid[0] not in g[n] for n in nodes)
    g = nemesis.majorities_ring(nodes, rng)
    for n in nodes:
        assert len(set(nodes) - g[n]) == 3  # sees a majority, itself included
        assert all(n in g[m] for m in g[n])  # symmetric
    assert len({frozenset(v) for v in g.values()}) == 5


def test_no_netem_here_so_latency_is_a_proxy():
    # Documents the reason for delayproxy.py; passes either way.
    assert nemesis.has_netem() in (True, False)


def test_cluster_faults_and_heal(tmp_path):
    rng = random.Random(42)
    links_before = root_links()
    with hosts.Cluster(3, workdir=str(tmp_path)) as c:
        run_id = c.run_id
        assert root_links() == links_before  # everything lives in our namespaces
        assert c.nodes[0].exec(["ip", "-o", "addr", "show", "eth0"]).stdout.count("10.77.0.11/24") == 1
        n1, n2, n3 = c.nodes
        servers = start_echoes(c)
        # Everyone reaches everyone, and the hub (where clients run) reaches all.
        for a in c.nodes:
            for b in c.nodes:
                wait_until(lambda: reachable(a.ns, b.addr), f"{a.name} -> {b.name}")
            wait_until(lambda: reachable(c.hub, a.addr), f"hub -> {a.name}")

        # Partition n1 away from the others, both directions.
        nemesis.partition(c, nemesis.isolate([h.name for h in c.nodes], "n1"))
        assert not reachable(n1.ns, n2.addr)
        assert not reachable(n2.ns, n1.addr)
        assert reachable(n2.ns, n3.addr)
        assert reachable(c.hub, n1.addr)  # the hub is not part of the grudge
        nemesis.heal_partition(c)
        wait_until(lambda: reachable(n1.ns, n2.addr) and reachable(n2.ns, n1.addr), "healed")

        # Pause: the kernel still accepts, the echo does not answer; resume.
        servers["n2"].pause()
        with hosts.connect(n1.ns, n2.addr, PORT, timeout=5) as s:
            s.sendall(b"x")
            s.settimeout(0.5)
            with pytest.raises(socket.timeout):
                s.recv(1)
            servers["n2"].resume()
            s.settimeout(30)
            assert s.recv(1) == b"x"

        # Packet loss: 99% (numgen) all but cuts n3 off, 0% restores it.
        nemesis.loss(n3, 99)
        ruleset = n3.exec(["nft", "list", "chain", "inet", "cairn_jepsen", "loss"]).stdout
        assert "numgen random mod 100 < 99" in ruleset
        assert sum(reachable(n1.ns, n3.addr, timeout=0.5) for _ in range(3)) <= 1
        nemesis.loss(n3, 0)
        wait_until(lambda: reachable(n1.ns, n3.addr), "n3 after loss healed")

        # Latency through the delaying proxy: 150 ms each way.
        assert echo(n1.ns, n2.addr) < 5
        old = hosts.connect(n1.ns, n2.addr, PORT, timeout=10)  # made before: gets reset
        old.sendall(b"a")
        assert old.recv(1) == b"a"
        nemesis.add_latency(n2, PORT, 150, wait=wait_until)
        rtt = min(echo(n1.ns, n2.addr, timeout=10) for _ in range(2))
        assert rtt >= 0.28, rtt
        with old:
            with pytest.raises(OSError):
                old.sendall(b"b")
                if not old.recv(1):
                    raise ConnectionResetError("closed")
        nemesis.remove_latency(n2)
        wait_until(lambda: echo(n1.ns, n2.addr) < 0.25, "latency removed")

        # kill -9, then restart.
        servers["n3"].kill()
        assert not reachable(n1.ns, n3.addr)
        servers["n3"].start()
        wait_until(lambda: reachable(n1.ns, n3.addr), "n3 restarted")

        # A data directory that fills up, and a file corrupted and truncated.
        data = n1.tmpfs("data", 1 << 20)
        nemesis.fill(data)
        with pytest.raises(OSError):
            with open(os.path.join(data, "shard"), "wb") as f:
                f.write(b"y" * 65536)
                f.flush()
        nemesis.unfill(data)
        with open(os.path.join(data, "shard"), "wb") as f:
            f.write(bytes(range(256)) * 64)
        path = nemesis.pick_file(data, rng)
        assert path.endswith("shard")
        offsets = nemesis.corrupt(path, rng)
        with open(path, "rb") as f:
            assert f.read() != bytes(range(256)) * 64 and offsets
        size = nemesis.truncate(path, rng)
        assert os.path.getsize(path) == size < 256 * 64

        # Everything at once, then heal_all.
        nemesis.partition(c, nemesis.halves([h.name for h in c.nodes], rng))
        nemesis.loss(n2, 50)
        servers["n1"].pause()
        nemesis.heal_all(c)
        for a in c.nodes:
            for b in c.nodes:
                wait_until(lambda: reachable(a.ns, b.addr), f"{a.name} -> {b.name} after heal_all")
        pids = [p.pid for p in servers.values()]
    for pid in pids:
        assert not pid_alive(pid)
    assert_gone(run_id, links_before)


def test_crashes_are_told_from_our_kills(tmp_path):
    # jepsen/run's "processes" check: a process that dies on its own is a
    # crash (with its signal); one the nemesis killed or stopped is not.
    with hosts.Cluster(1, workdir=str(tmp_path)) as c:
        h = c.nodes[0]
        segv = h.start(["sh", "-c", "kill -SEGV $$"], name="segv")
        killed = h.start(["sleep", "600"], name="killed")
        stopped = h.start(["sleep", "600"], name="stopped")
        alive = h.start(["sleep", "600"], name="alive")
        restarted = h.start(["sleep", "600"], name="restarted")
        wait_until(lambda: not segv.alive(), "the crash")
        killed.kill()
        stopped.stop()
        restarted.kill()
        restarted.start()
        assert segv.crashed() == -signal.SIGSEGV
        assert killed.crashed() is None and stopped.crashed() is None
        assert alive.crashed() is None and restarted.crashed() is None
        os.kill(restarted.pid, signal.SIGKILL)  # dies again, this time not by our hand
        wait_until(lambda: not restarted.alive(), "the second death")
        assert restarted.crashed() == -signal.SIGKILL
        # A crash the nemesis then "kills" and restarts is still remembered.
        restarted.kill()
        restarted.start()
        assert restarted.crashed() is None and restarted.deaths == [-signal.SIGKILL]
        assert segv.deaths == []
        # What a stuck run keeps: rules, sockets, process states.
        text = h.diagnose()
        assert "nft list ruleset" in text and "ss -tanp" in text
        assert f"process alive pid {alive.pid}: S" in text or f"process alive pid {alive.pid}: R" in text
        alive.pause()
        wait_until(lambda: f"process alive pid {alive.pid}: T" in h.diagnose(), "a stopped process")
        alive.resume()


def test_cleanup_when_body_raises(tmp_path):
    links_before = root_links()
    with pytest.raises(RuntimeError, match="boom"):
        with hosts.Cluster(2, workdir=str(tmp_path)) as c:
            run_id = c.run_id
            servers = start_echoes(c)
            c.nodes[0].tmpfs("data", 1 << 20)
            nemesis.add_latency(c.nodes[1], PORT, 10, wait=wait_until)
            servers["n1"].pause()  # even a stopped process is removed
            pids = [p.pid for p in servers.values()] + [c.nodes[1].proxies[PORT].pid]
            assert hosts.leftovers(run_id)["namespaces"]
            raise RuntimeError("boom")
    for pid in pids:
        assert not pid_alive(pid)
    assert_gone(run_id, links_before)


def test_sigterm_and_run_cleanup(tmp_path):
    # A runner killed by SIGTERM removes its cluster in its signal handler.
    script = (f"import sys, time; sys.path.insert(0, {SOURCE!r}); from jepsen import hosts\n"
              f"c = hosts.Cluster(2, run_id=sys.argv[1], workdir={str(tmp_path)!r}); c.up()\n"
              f"c.nodes[0].tmpfs('data', 1 << 20)\n"
              f"c.nodes[0].start([{PY!r}, '-c', 'import time; time.sleep(600)'], name='sleeper')\n"
              f"print('up', flush=True); time.sleep(600)\n")
    run_id = "t" + os.urandom(3).hex()
    p = subprocess.Popen([PY, "-c", script, run_id], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "up"
        assert hosts.leftovers(run_id)["namespaces"]
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert_gone(run_id)

    # A runner that exits without calling down() is cleaned up at exit.
    run_id = "t" + os.urandom(3).hex()
    exiting = script.replace("print('up', flush=True); time.sleep(600)", "print('up', flush=True)")
    p = subprocess.run([PY, "-c", exiting, run_id], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "up", p.stderr
    assert_gone(run_id)

    # A runner killed by SIGKILL leaves things behind; `jepsen/run --cleanup` removes them.
    run_id = "t" + os.urandom(3).hex()
    p = subprocess.Popen([PY, "-c", script, run_id], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "up"
    finally:
        p.kill()
        p.wait()
    left = hosts.leftovers(run_id)
    assert len(left["namespaces"]) == 3 and len(left["mounts"]) == 1
    sleeper = [int(x) for x in hosts.run(["ip", "netns", "pids", f"cairnj-{run_id}-n1"]).stdout.split()]
    assert sleeper
    out = subprocess.run([os.path.join(SOURCE, "jepsen", "run"), "--cleanup", "--run-id", run_id],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "removed" in out.stdout
    assert_gone(run_id)
    wait_until(lambda: not any(pid_alive(x) for x in sleeper), "sleeper killed")


def test_run_with_binaries_that_fail_to_start(tmp_path):
    # With stand-in binaries that fail, jepsen/run creates the namespaces,
    # finds that the cluster does not start, says why, exits 2 and leaves
    # nothing behind.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for b in ("cairn-node", "cairn-gateway", "cairn-blocks", "cairn-meta"):
        (bin_dir / b).write_text("#!/bin/sh\necho stand-in refuses >&2\nexit 1\n")
        (bin_dir / b).chmod(0o755)
    run_id = "r" + os.urandom(3).hex()
    p = subprocess.run([os.path.join(SOURCE, "jepsen", "run"), "--time", "1", "--bin", str(bin_dir),
                        "--run-id", run_id, "--results", str(tmp_path / "r")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "not available" in p.stderr and "init" in p.stderr and "stand-in refuses" in p.stderr
    assert_gone(run_id)


def test_cluster_nemesis_schedule_heals(tmp_path):
    """The faults jepsen/run uses (jepsen/cairn.py build_nemesis), on echo
    servers standing in for cairn-node: each applied and healed once, then a
    short seeded schedule through the runner; afterwards all is healed."""
    from jepsen import cairn
    from jepsen.runner import Runner
    from jepsen.workloads import MemoryStore, RegisterWorkload

    class Stand:
        @staticmethod
        def group_leader(rng):
            return "n2"  # as if the map said n2 leads a group: isolate picks it

    with hosts.Cluster(3, workdir=str(tmp_path)) as c:
        run_id = c.run_id
        stand = Stand()
        stand.nodes = {h.name: h.start([PY, "-c", ECHO, h.addr, str(cairn.NODE_PORT)], name="node")
                       for h in c.nodes}
        stand.data_dirs = {h.name: h.tmpfs("data", 1 << 20) for h in c.nodes}
        chunk = "ab" + "0" * 62  # one chunk with a shard on every node, as the store names them
        for i, h in enumerate(c.nodes):
            folder = os.path.join(stand.data_dirs[h.name], "shards", "shards", "ab")
            os.makedirs(folder)
            with open(os.path.join(folder, f"{chunk}.{i}"), "wb") as f:
                f.write(b"s" * 4096)
            os.makedirs(os.path.join(stand.data_dirs[h.name], "raft", "1"))
            with open(os.path.join(stand.data_dirs[h.name], "raft", "1", "open-1"), "wb") as f:
                f.write(b"r" * 4096)  # never corrupted: not a shard
            wait_until(lambda: reachable(c.hub, h.addr, cairn.NODE_PORT), f"{h.name} up")
        names = ["kill", "pause", "partition", "loss", "latency", "disk", "corrupt"]
        nem = cairn.build_nemesis(c, stand, names, log=lambda m: None)
        rng = random.Random(9)
        for name in names:
            start, stop = nem.faults[name]
            done = start(rng)
            stop()
            if name == "corrupt":
                # A shard, and then never the same chunk on another node.
                assert f"/shards/shards/ab/{chunk}." in done["file"], done
                assert nem.faults["corrupt"][0](rng)["file"] is None
                # The repair check: the rotted shard is not whole yet (an
                # anomaly once its time is up); rebuilt with the same bytes,
                # here on another node, it is.
                assert [r["node"] for r in nem.rotted_shards] == [done["node"]]
                rec = {chunk[:16]}
                v = cairn.CairnCluster.repair_verdict(stand, nem.rotted_shards, timeout=0.3,
                                                      interval=0.1, recorded=rec)
                assert v["valid"] is False and v["anomaly_types"] == ["not-repaired"], v
                # A chunk no index holds (its upload failed) is not owed a repair.
                v = cairn.CairnCluster.repair_verdict(stand, nem.rotted_shards, timeout=0.3,
                                                      interval=0.1, recorded=set())
                assert v["valid"] is True and len(v["unrecorded"]) == 1, v
                other = next(n for n in stand.data_dirs if n != done["node"])
                rebuilt = os.path.join(stand.data_dirs[other], nem.rotted_shards[0]["shard"])
                with open(rebuilt, "wb") as f:
                    f.write(b"s" * 4096)
                v = cairn.CairnCluster.repair_verdict(stand, nem.rotted_shards, timeout=5,
                                                      recorded=rec)
                assert v["valid"] is True and v["repaired"] == 1, v
        store = MemoryStore()
        r = Runner([RegisterWorkload()], lambda wl, w: store.client(), nem, str(tmp_path / "results"),
                   seed=4, duration=3, workers_per_workload=2, nemesis_interval=(0.1, 0.4),
                   op_delay=0.01, log=lambda m: None, thread_context=c.hub_netns)
        r.run()
        code, _, text = r.write_and_check({"seed": 4})
        assert code == 0, text
        assert any(ev["event"] == "start" for ev in r.timeline)
        for h in c.nodes:
            assert stand.nodes[h.name].alive()
            assert not os.path.exists(os.path.join(stand.data_dirs[h.name], ".jepsen-filler"))
            for a in c.nodes:
                wait_until(lambda: reachable(a.ns, h.addr, cairn.NODE_PORT), f"{a.name} -> {h.name} healed")
            rules = h.exec(["nft", "list", "table", "inet", "cairn_jepsen"]).stdout
            assert "drop" not in rules and "redirect" not in rules, rules
    assert_gone(run_id)
