"""Chunks across real nodes: put with the storage pipeline, placed by
rendezvous hashing, read back byte-identical — also with nodes killed -9 (as
many as the scheme's parity) and with a shard file corrupted on disk."""
import os
import subprocess

import pytest

from harness import SOURCE, binary

CLUSTER = os.path.join(SOURCE, "scripts", "cluster")
BLOCKS = binary("cairn-blocks")
pytestmark = pytest.mark.skipif(not os.path.exists(BLOCKS), reason="cairn-blocks not built")


class Cluster:
    def __init__(self, d, nodes):
        self.dir = str(d)
        self.env = os.path.join(self.dir, "cluster.env")
        self.keys = os.path.join(self.dir, "keys")
        self.cmd("start", "--nodes", str(nodes), "--gateways", "0")  # the block path only
        subprocess.run([BLOCKS, "keygen", self.keys], check=True)

    def cmd(self, *args):
        env = dict(os.environ, CAIRN_BIN=os.path.dirname(BLOCKS))
        subprocess.run(["/usr/bin/python3", CLUSTER, *args, "--dir", self.dir], check=True,
                       env=env, capture_output=True, timeout=120)

    def put(self, data, scheme, manifest):
        p = subprocess.run([BLOCKS, "put", "--env", self.env, "--keys", self.keys, "--scheme", scheme,
                            "--manifest", manifest], input=data, capture_output=True, timeout=300)
        assert p.returncode == 0, p.stderr.decode()

    def get(self, manifest, keys=None):
        return subprocess.run([BLOCKS, "get", "--env", self.env, "--keys", keys or self.keys,
                               "--manifest", manifest], capture_output=True, timeout=300)

    def stop(self):
        self.cmd("stop")


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


def corrupt_shard_files(cluster, node):
    """Flips a byte in the middle of every shard file of a node; returns how many."""
    corrupted = 0
    for root, _, files in os.walk(os.path.join(cluster.dir, f"node{node}", "shards")):
        for name in files:
            path = os.path.join(root, name)
            size = os.path.getsize(path)
            if size > 4096:
                with open(path, "r+b") as f:
                    f.seek(size // 2)
                    b = f.read(1)
                    f.seek(size // 2)
                    f.write(bytes([b[0] ^ 0xFF]))
                corrupted += 1
    return corrupted


def manifest_lines(path):
    with open(path) as f:
        return [line.split() for line in f if line.strip()]


def test_2_plus_1_survives_a_killed_node(cluster3, tmp_path):
    data = os.urandom(48 << 20)
    manifest = str(tmp_path / "manifest")
    cluster3.put(data, "2+1", manifest)
    lines = manifest_lines(manifest)
    assert len(lines) >= 20  # content-defined chunks, about 1 MiB each
    for line in lines:
        nodes = line[3:]
        assert len(nodes) == 3 and len(set(nodes)) == 3  # one shard per node
    assert cluster3.get(manifest).stdout == data
    cluster3.cmd("kill", "2")
    p = cluster3.get(manifest)
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout == data  # degraded: from the two nodes left


def test_4_plus_2_survives_two_killed_nodes(cluster7, tmp_path):
    data = os.urandom(24 << 20)
    manifest = str(tmp_path / "manifest")
    cluster7.put(data, "4+2", manifest)
    for line in manifest_lines(manifest):
        assert len(set(line[3:])) == 6
    cluster7.cmd("kill", "3")
    cluster7.cmd("kill", "6")
    p = cluster7.get(manifest)
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout == data


def test_corrupt_shard_file_is_read_around(cluster3, tmp_path):
    data = os.urandom(8 << 20)
    manifest = str(tmp_path / "manifest")
    cluster3.put(data, "2+1", manifest)
    # Flip a byte in the middle of every shard file of node 1: each is then
    # refused by its checksum and the chunk is rebuilt from the other two.
    corrupted = corrupt_shard_files(cluster3, 1)
    assert corrupted > 0
    p = cluster3.get(manifest)
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout == data


def test_wrong_key_and_bad_manifest_fail_cleanly(cluster3, tmp_path):
    data = os.urandom(1 << 20)
    manifest = str(tmp_path / "manifest")
    cluster3.put(data, "2+1", manifest)
    other = str(tmp_path / "other-keys")
    subprocess.run([BLOCKS, "keygen", other], check=True)
    p = cluster3.get(manifest, keys=other)
    assert p.returncode == 1
    assert b"CAIRN_EKEY" in p.stderr or b"CAIRN_ECORRUPT" in p.stderr
    bad = tmp_path / "bad"
    bad.write_text("not a manifest line\n")
    p = cluster3.get(str(bad))
    assert p.returncode == 1 and b"bad line" in p.stderr
    p = subprocess.run([BLOCKS, "put", "--env", cluster3.env, "--keys", cluster3.keys, "--scheme",
                        "9+9", "--manifest", str(tmp_path / "m")], input=b"x", capture_output=True)
    assert p.returncode == 2
    # A scheme that needs more nodes than the cluster has is refused.
    p = subprocess.run([BLOCKS, "put", "--env", cluster3.env, "--keys", cluster3.keys, "--scheme",
                        "4+2", "--manifest", str(tmp_path / "m")], input=data, capture_output=True)
    assert p.returncode == 1 and b"not enough nodes" in p.stderr
