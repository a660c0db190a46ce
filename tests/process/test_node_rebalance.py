"""Rebalance across real nodes (node/rebalance.c through `cairn-blocks
rebalance`): after a node joins, shards move onto it where placement wants
them; a drained node is emptied; old copies go only after the new homes are
recorded, and every chunk reads the same before, during and after."""
import os
import subprocess
import threading

import pytest

from test_node_blocks import BLOCKS, Cluster, manifest_lines

pytestmark = pytest.mark.skipif(not os.path.exists(BLOCKS), reason="cairn-blocks not built")


@pytest.fixture
def cluster4(tmp_path):
    c = Cluster(tmp_path / "c", 4)
    yield c
    c.stop()


def rebalance(cluster, manifest, out, drain=()):
    args = [BLOCKS, "rebalance", "--env", cluster.env, "--manifest", manifest, "--out", out]
    for n in drain:
        args += ["--drain", str(n)]
    p = subprocess.run(args, capture_output=True, timeout=300)
    words = p.stdout.decode().split()
    return p, dict(zip(words[0::2], (int(w) for w in words[1::2])))


def shard_files(cluster, node):
    n = 0
    for root, dirs, files in os.walk(os.path.join(cluster.dir, f"node{node}", "shards")):
        dirs[:] = [d for d in dirs if d != "quarantine"]
        n += sum(1 for f in files if not f.startswith(".") and f not in ("IDENTITY", "LOCK"))
    return n


def test_a_joining_node_gets_its_share(cluster4, tmp_path):
    data = os.urandom(12 << 20)
    manifest, moved = str(tmp_path / "manifest"), str(tmp_path / "moved")
    cluster4.cmd("kill", "4")  # the cluster has three nodes when the data is written
    cluster4.put(data, "2+1", manifest)
    lines = manifest_lines(manifest)
    assert all("4" not in line[3:] for line in lines)
    before = [shard_files(cluster4, n) for n in (1, 2, 3)]
    cluster4.cmd("restart", "4")  # ... and then node 4 joins

    # Reads go on while shards move (with the old manifest, whose copies stay
    # until the new one is written).
    reads, stop = [], threading.Event()

    def reader():
        while not stop.is_set():
            p = cluster4.get(manifest)
            reads.append(p.returncode == 0 and p.stdout == data)

    t = threading.Thread(target=reader)
    t.start()
    p, summary = rebalance(cluster4, manifest, moved)
    stop.set()
    t.join()
    assert p.returncode == 0, p.stderr.decode()
    assert reads and reads[0]  # a read during the move was whole and right

    new_lines = manifest_lines(moved)
    on_4 = sum(1 for line in new_lines if "4" in line[3:])
    assert summary["moved"] == on_4 > 0
    assert summary["deleted"] == summary["moved"]
    for line in new_lines:
        assert len(set(line[3:])) == 3
    assert shard_files(cluster4, 4) == on_4
    assert sum(shard_files(cluster4, n) for n in (1, 2, 3)) == sum(before) - on_4
    p = cluster4.get(moved)
    assert p.returncode == 0 and p.stdout == data

    # Placement is stable: a second pass moves nothing.
    p, summary = rebalance(cluster4, moved, str(tmp_path / "again"))
    assert p.returncode == 0 and summary["moved"] == 0


def test_a_drained_node_is_emptied(cluster4, tmp_path):
    data = os.urandom(8 << 20)
    manifest, drained = str(tmp_path / "manifest"), str(tmp_path / "drained")
    cluster4.put(data, "2+1", manifest)
    on_2 = sum(1 for line in manifest_lines(manifest) if "2" in line[3:])
    assert on_2 > 0 and shard_files(cluster4, 2) == on_2

    p, summary = rebalance(cluster4, manifest, drained, drain=[2])
    assert p.returncode == 0, p.stderr.decode()
    assert summary["moved"] == on_2 and summary["deleted"] == on_2
    assert shard_files(cluster4, 2) == 0
    for line in manifest_lines(drained):
        assert "2" not in line[3:] and len(set(line[3:])) == 3

    # Node 2 can go; the chunks still survive one more failure.
    cluster4.cmd("kill", "2")
    cluster4.cmd("kill", "1")
    p = cluster4.get(drained)
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout == data


def test_draining_below_the_scheme_is_refused(cluster4, tmp_path):
    data = os.urandom(1 << 20)
    manifest, out = str(tmp_path / "manifest"), str(tmp_path / "out")
    cluster4.put(data, "2+1", manifest)
    p, summary = rebalance(cluster4, manifest, out, drain=[1, 2])
    assert p.returncode == 1
    assert b"CAIRN_EUNAVAIL" in p.stderr
    # Nothing moved, nothing deleted, every chunk still whole.
    p = cluster4.get(manifest)
    assert p.returncode == 0 and p.stdout == data
