"""Scrub and the admin port, with real nodes: three cairn-node processes
with --admin and a fast --scrub-rate, data put through cairn-blocks, one
shard file corrupted on disk. Scrub must find it (shown on /metrics), remove
it so it is never served, log it once, and a read must still return the
right bytes (read around). /metrics must parse as Prometheus text, /health
must answer, and bad requests to the admin port get the JSON error shape."""
import json
import os
import re
import shlex
import socket
import subprocess
import urllib.error
import urllib.request

import pytest

from harness import binary, free_port, wait_until

NODE = binary("cairn-node")
BLOCKS = binary("cairn-blocks")
pytestmark = pytest.mark.skipif(not os.path.exists(BLOCKS), reason="cairn-blocks not built")

# A sample line: name, optional {labels}, value (Prometheus text format 0.0.4).
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse_metrics(text):
    """Parses Prometheus text strictly: every line is a HELP, a TYPE or a
    sample of a declared family. Returns {(name, frozenset(labels)): value}
    and the families' types."""
    assert text.endswith("\n")
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            assert len(line.split(" ", 3)) == 4, line
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert name not in types, f"family declared twice: {name}"
            types[name] = kind
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, labels_text, value = m.group(1), m.group(3), m.group(4)
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert family in types, f"sample of an undeclared family: {line!r}"
        labels = {}
        if labels_text:
            pos = 0
            while pos < len(labels_text):
                lm = LABEL.match(labels_text, pos)
                assert lm, f"bad labels: {line!r}"
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
        key = (name, frozenset(labels.items()))
        assert key not in samples, f"duplicate sample: {line!r}"
        samples[key] = float(value)
    return samples, types


def metric(samples, name, **labels):
    """The value of one sample; labels not given are summed over."""
    want = set(labels.items())
    found = [v for (n, ls), v in samples.items() if n == name and want <= set(ls)]
    assert found, f"no sample {name} {labels}"
    return sum(found)


class Node:
    def __init__(self, procs, d, i):
        self.i = i
        self.data = os.path.join(d, f"node{i}")
        self.addr = f"127.0.0.1:{free_port()}"
        self.admin_port = free_port()
        self.proc = procs.start([NODE, "run", "--listen", self.addr, "--data", self.data,
                                 "--secret", os.path.join(d, "secret"), "--admin",
                                 f"127.0.0.1:{self.admin_port}", "--scrub-rate", "64MiB"],
                                name=f"node{i}")

    def get(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}{path}", timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()

    def metrics(self):
        status, ctype, text = self.get("/metrics")
        assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
        return parse_metrics(text)[0]


@pytest.fixture
def cluster(procs, tmp_path):
    d = str(tmp_path)
    secret = os.path.join(d, "secret")
    subprocess.run([NODE, "init", "--data", os.path.join(d, "node1"), "--secret", secret],
                   check=True, capture_output=True)
    nodes = [Node(procs, d, 1)]
    wait_until(lambda: "node ready" in nodes[0].proc.log(), "node1 ready")
    for i in (2, 3):
        subprocess.run([NODE, "join", nodes[0].addr, "--node-id", str(i), "--data",
                        os.path.join(d, f"node{i}"), "--secret", secret],
                       check=True, capture_output=True)
        nodes.append(Node(procs, d, i))
    for n in nodes:
        wait_until(lambda: "node ready" in n.proc.log() or not n.proc.alive(), f"node{n.i} ready")
        assert n.proc.alive(), n.proc.log()
    env = os.path.join(d, "cluster.env")
    with open(env, "w") as f:
        f.write(f"CAIRN_SECRET={shlex.quote(secret)}\n")
        for n in nodes:
            f.write(f"CAIRN_NODE_{n.i}_ADDR={n.addr}\n")
    keys = os.path.join(d, "keys")
    subprocess.run([BLOCKS, "keygen", keys], check=True)
    yield {"dir": d, "env": env, "keys": keys, "nodes": nodes}
    for n in nodes:
        assert n.proc.stop() == 0, n.proc.log()


def blocks(cluster, verb, manifest, data=None):
    p = subprocess.run([BLOCKS, verb, "--env", cluster["env"], "--keys", cluster["keys"],
                        "--manifest", manifest] + (["--scheme", "2+1"] if verb == "put" else []),
                       input=data, capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout


def shard_files(node):
    out = []
    for root, _, files in os.walk(os.path.join(node.data, "shards")):
        out += [os.path.join(root, f) for f in files if os.path.getsize(os.path.join(root, f)) > 4096]
    return sorted(out)


def test_scrub_removes_a_corrupt_shard_and_reads_go_around(cluster, tmp_path):
    node1 = cluster["nodes"][0]
    data = os.urandom(4 << 20)
    manifest = str(tmp_path / "manifest")
    blocks(cluster, "put", manifest, data)
    files = shard_files(node1)
    assert files
    before = node1.metrics()
    shards_before = metric(before, "cairn_node_shards")
    assert shards_before >= len(files)  # files: those over 4 KiB
    assert metric(before, "cairn_node_scrub_corrupt_total") == 0
    assert metric(before, "cairn_node_rpc_requests_total", type="shard_put", result="ok") >= 1

    # Rot one byte in the middle of one shard file.
    victim = files[len(files) // 2]
    size = os.path.getsize(victim)
    with open(victim, "r+b") as f:
        f.seek(size // 2)
        b = f.read(1)
        f.seek(size // 2)
        f.write(bytes([b[0] ^ 0x5A]))

    wait_until(lambda: metric(node1.metrics(), "cairn_node_scrub_corrupt_total") == 1,
               "scrub to find the corrupt shard")
    assert not os.path.exists(victim)  # set aside: never served again
    quarantine = os.path.join(cluster["nodes"][0].data, "shards", "quarantine")
    assert len(os.listdir(quarantine)) == 1  # kept for a look, not deleted
    after = node1.metrics()
    assert metric(after, "cairn_node_shards") == shards_before - 1
    # Reads go around the missing shard and return the right bytes.
    assert blocks(cluster, "get", manifest) == data

    # Logged once, naming the chunk and shard; later passes find nothing more.
    passes = metric(after, "cairn_node_scrub_passes_completed_total")
    wait_until(lambda: metric(node1.metrics(), "cairn_node_scrub_passes_completed_total")
               >= passes + 2, "two more scrub passes")
    lines = [l for l in node1.proc.log().splitlines() if "corrupt shard quarantined" in l]
    assert len(lines) == 1, lines
    assert re.search(r"chunk=[0-9a-f]{64} shard=\d+ ", lines[0])


    def between_passes():
        m = node1.metrics()
        done = metric(m, "cairn_node_scrub_pass") == metric(m, "cairn_node_scrub_passes_completed_total")
        return m if done else None

    final = wait_until(between_passes, "scrub between passes (its counters whole)")
    assert metric(final, "cairn_node_scrub_corrupt_total") == 1
    assert metric(final, "cairn_node_scrub_pass_corrupt") == 0  # a later pass: nothing new
    assert metric(final, "cairn_node_scrub_pass_shards_checked") == shards_before - 1
    # The other nodes found nothing wrong.
    for n in cluster["nodes"][1:]:
        assert metric(n.metrics(), "cairn_node_scrub_corrupt_total") == 0


def test_metrics_and_health(cluster, tmp_path):
    node1 = cluster["nodes"][0]
    data = os.urandom(1 << 20)
    manifest = str(tmp_path / "manifest")
    blocks(cluster, "put", manifest, data)
    assert blocks(cluster, "get", manifest) == data
    status, ctype, text = node1.get("/metrics")
    samples, types = parse_metrics(text)
    assert types["cairn_node_rpc_duration_seconds"] == "histogram"
    assert types["cairn_node_rpc_requests_total"] == "counter"
    for name in ("cairn_node_shards", "cairn_node_used_bytes", "cairn_node_free_bytes",
                 "cairn_node_scrub_pass", "cairn_node_scrub_pass_bytes_checked",
                 "cairn_node_connections", "cairn_node_connections_rejected_total"):
        assert name in types, name
    assert metric(samples, "cairn_node_free_bytes") > 0
    assert metric(samples, "cairn_node_scrub_rate_bytes_per_second") == 64 << 20
    # Histogram: cumulative buckets ending in +Inf == _count.
    puts = metric(samples, "cairn_node_rpc_duration_seconds_count", type="shard_put")
    assert puts >= 1
    assert metric(samples, "cairn_node_rpc_duration_seconds_bucket", type="shard_put",
                  le="+Inf") == puts
    buckets = sorted((float(dict(ls)["le"]), v) for (n, ls), v in samples.items()
                     if n == "cairn_node_rpc_duration_seconds_bucket"
                     and dict(ls)["type"] == "shard_put" and dict(ls)["le"] != "+Inf")
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))
    # The get read the data shards, wherever they are.
    gets = 0
    for n in cluster["nodes"]:
        m = n.metrics()
        if any(k[0] == "cairn_node_rpc_requests_total" and ("type", "shard_get") in k[1] for k in m):
            gets += metric(m, "cairn_node_rpc_requests_total", type="shard_get", result="ok")
    assert gets >= 2
    assert metric(samples, "cairn_node_connections") >= 0

    status, ctype, body = node1.get("/health")
    assert status == 200 and ctype == "application/json"
    health = json.loads(body)
    assert health["status"] == "ok" and health["node_id"] == 1
    assert re.fullmatch(r"[0-9a-f]{32}", health["cluster_id"])
    assert json.loads(cluster["nodes"][2].get("/health")[2])["node_id"] == 3

    # Bad requests get the JSON error shape.
    for method, path, status in (("GET", "/nope", 404), ("POST", "/metrics", 405),
                                 ("GET", "/metrics/x", 404), ("DELETE", "/health", 405)):
        req = urllib.request.Request(f"http://127.0.0.1:{node1.admin_port}{path}", method=method)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == status
        err = json.loads(e.value.read())["error"]
        assert err["status"] == status and err["code"] and err["message"]
    with socket.create_connection(("127.0.0.1", node1.admin_port), timeout=10) as s:
        s.sendall(b"GARBAGE\r\n\r\n")
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400")
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["error"]["status"] == 400
    assert node1.proc.alive()


def test_scrub_disabled_and_bad_flags(procs, tmp_path):
    d = str(tmp_path)
    secret = os.path.join(d, "secret")
    subprocess.run([NODE, "init", "--data", os.path.join(d, "n1"), "--secret", secret], check=True,
                   capture_output=True)
    base = [NODE, "run", "--listen", f"127.0.0.1:{free_port()}", "--data", os.path.join(d, "n1"),
            "--secret", secret]
    for bad in (["--scrub-rate", "fast"], ["--admin", "nowhere"], ["--admin", "127.0.0.1:99999"]):
        p = subprocess.run(base + bad, capture_output=True, text=True, timeout=60)
        assert p.returncode == 2, (bad, p.stderr)
    # A config file sets both; scrub_rate = 0 turns scrub off.
    admin_port = free_port()
    conf = os.path.join(d, "node.conf")
    with open(conf, "w") as f:
        # listen is also given as a flag below: the flag wins, the key is still known.
        f.write(f"[node]\nlisten = 127.0.0.1:1\nadmin = 127.0.0.1:{admin_port}\nscrub_rate = 0\n")

    def scrub_rate(extra):
        node = procs.start(base + ["--config", conf] + extra, name="n1")
        wait_until(lambda: "admin ready" in node.log() or not node.alive(), "admin ready")
        assert node.alive(), node.log()
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=10) as r:
            samples, _ = parse_metrics(r.read().decode())
        assert node.stop() == 0
        return metric(samples, "cairn_node_scrub_rate_bytes_per_second"), \
            metric(samples, "cairn_node_scrub_pass")

    assert scrub_rate([]) == (0, 0)  # off: no pass ever starts
    assert scrub_rate(["--scrub-rate", "1MiB"])[0] == 1 << 20  # the flag wins over the file
