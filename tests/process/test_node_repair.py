"""Repair across real nodes (node/repair.c through `cairn-blocks repair`):
shards of a node that stays down are rebuilt on the others, corrupt shards
are rebuilt in place, and afterwards the chunks survive as many new failures
as their parity — which they would not without the repair."""
import os
import subprocess

import pytest

from harness import binary
from test_node_blocks import BLOCKS, Cluster, corrupt_shard_files, manifest_lines

pytestmark = pytest.mark.skipif(not os.path.exists(BLOCKS), reason="cairn-blocks not built")


@pytest.fixture
def cluster3(tmp_path):
    c = Cluster(tmp_path / "c", 3)
    yield c
    c.stop()


@pytest.fixture
def cluster7(tmp_path):
    c = Cluster(tmp_path / "c", 7)
    yield c
    c.stop()


def repair(cluster, manifest, out):
    p = subprocess.run([BLOCKS, "repair", "--env", cluster.env, "--manifest", manifest, "--out", out],
                       capture_output=True, timeout=300)
    words = p.stdout.decode().split()
    summary = dict(zip(words[0::2], (int(w) for w in words[1::2])))
    return p, summary


def test_shards_of_a_lost_node_are_rebuilt_on_the_others(cluster7, tmp_path):
    data = os.urandom(16 << 20)
    manifest, repaired = str(tmp_path / "manifest"), str(tmp_path / "repaired")
    cluster7.put(data, "4+2", manifest)
    lines = manifest_lines(manifest)
    on_6 = sum(1 for line in lines if "6" in line[3:])
    assert on_6 > 0
    cluster7.cmd("kill", "3")
    cluster7.cmd("kill", "6")
    p = cluster7.get(manifest)
    assert p.returncode == 0 and p.stdout == data  # degraded reads
    cluster7.cmd("restart", "3")  # node 6 stays down for good

    p, summary = repair(cluster7, manifest, repaired)
    assert p.returncode == 0, p.stderr.decode()
    assert summary == {"chunks": len(lines), "healthy": len(lines) - on_6, "repaired": on_6,
                       "degraded": 0, "shards_rebuilt": on_6}
    for line in manifest_lines(repaired):
        nodes = line[3:]
        assert "6" not in nodes and len(set(nodes)) == 6

    # Full redundancy again: two more failures are survived. Without the
    # repair, every chunk that had a shard on node 6 and on node 1 or 2
    # would be lost now.
    cluster7.cmd("kill", "1")
    cluster7.cmd("kill", "2")
    p = cluster7.get(repaired)
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout == data

    # Nodes 1 and 2 come back with their shards: a second pass has nothing to do.
    cluster7.cmd("restart", "1")
    cluster7.cmd("restart", "2")
    p, summary = repair(cluster7, repaired, str(tmp_path / "again"))
    assert p.returncode == 0, p.stderr.decode()
    assert summary["healthy"] == len(lines) and summary["shards_rebuilt"] == 0
    assert manifest_lines(str(tmp_path / "again")) == manifest_lines(repaired)


def test_corrupt_shards_are_rebuilt_in_place(cluster3, tmp_path):
    data = os.urandom(6 << 20)
    manifest, repaired = str(tmp_path / "manifest"), str(tmp_path / "repaired")
    cluster3.put(data, "2+1", manifest)
    corrupted = corrupt_shard_files(cluster3, 1)
    assert corrupted > 0

    p, summary = repair(cluster3, manifest, repaired)
    assert p.returncode == 0, p.stderr.decode()
    assert summary["shards_rebuilt"] == corrupted and summary["degraded"] == 0
    assert manifest_lines(repaired) == manifest_lines(manifest)  # same homes: only shards were bad

    # Node 1's shards are good again: with node 2 gone, each chunk reads from
    # nodes 1 and 3 (without the repair, node 1's corrupt shards would leave one).
    cluster3.cmd("kill", "2")
    p = cluster3.get(repaired)
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout == data


def test_too_few_shards_is_reported_not_hidden(cluster3, tmp_path):
    data = os.urandom(2 << 20)
    manifest, repaired = str(tmp_path / "manifest"), str(tmp_path / "repaired")
    cluster3.put(data, "2+1", manifest)
    cluster3.cmd("kill", "1")
    cluster3.cmd("kill", "2")
    p, summary = repair(cluster3, manifest, repaired)
    assert p.returncode == 1
    assert summary["degraded"] == summary["chunks"] and summary["shards_rebuilt"] == 0
    assert "CAIRN_EUNAVAIL" in p.stderr.decode()
    # The manifest written keeps every shard's old home: nothing is forgotten.
    assert manifest_lines(repaired) == manifest_lines(manifest)


def test_bad_usage(tmp_path):
    p = subprocess.run([BLOCKS, "repair", "--env", "/nonexistent"], capture_output=True)
    assert p.returncode == 2
    assert b"--out" in p.stderr
    assert binary("cairn-blocks") == BLOCKS
