"""cairn-node as a process: init, join, run, clean shutdown, and refusals —
foreign or locked data directories, loose secret files, and peers that send
garbage, which are cut off while members keep being served."""
import os
import re
import socket
import struct
import subprocess

import pytest

from harness import binary, free_port, port_open, wait_until

NODE = binary("cairn-node")
pytestmark = pytest.mark.skipif(not os.path.exists(NODE), reason="cairn-node not built")


def run(*args, check=True):
    p = subprocess.run([NODE, *args], capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError(f"cairn-node {' '.join(args)} -> {p.returncode}\n{p.stderr}")
    return p


@pytest.fixture
def cluster_dir(tmp_path):
    secret = tmp_path / "secret"
    run("init", "--data", str(tmp_path / "n1"), "--secret", str(secret))
    return tmp_path


def start(procs, tmp_path, name="n1", port=None):
    port = port or free_port()
    p = procs.start([NODE, "run", "--listen", f"127.0.0.1:{port}", "--data", str(tmp_path / name),
                     "--secret", str(tmp_path / "secret")], name=name)
    wait_until(lambda: "node ready" in p.log() or not p.alive(), f"{name} ready")
    assert p.alive(), p.log()
    return p, port


def test_init_creates_identity_and_private_secret(cluster_dir):
    secret = cluster_dir / "secret"
    assert oct(secret.stat().st_mode & 0o777) == "0o600"
    assert re.fullmatch(r"[0-9a-f]{64}\n", secret.read_text())
    identity = (cluster_dir / "n1" / "IDENTITY").read_text()
    assert re.search(r"cluster = [0-9a-f]{32}\nnode = 1\n", identity)
    # A second init on the same directory is refused: it belongs to a cluster.
    p = run("init", "--data", str(cluster_dir / "n1"), "--secret", str(secret), check=False)
    assert p.returncode == 3
    assert "already initialised" in p.stderr


def test_run_join_and_clean_stop(procs, cluster_dir):
    node1, port = start(procs, cluster_dir)
    p = run("join", f"127.0.0.1:{port}", "--node-id", "2", "--data", str(cluster_dir / "n2"),
            "--secret", str(cluster_dir / "secret"))
    assert "as node 2" in p.stdout
    ident1 = (cluster_dir / "n1" / "IDENTITY").read_text().splitlines()[0]
    ident2 = (cluster_dir / "n2" / "IDENTITY").read_text().splitlines()[0]
    assert ident1 == ident2  # same cluster id
    node2, _ = start(procs, cluster_dir, name="n2")
    assert node1.stop() == 0
    assert node2.stop() == 0
    assert "stopped" in node1.log()
    assert not port_open(port)


def test_refuses_locked_and_foreign_data_dirs(procs, cluster_dir, tmp_path):
    start(procs, cluster_dir)
    # The same directory, in use by the running node.
    p = subprocess.run([NODE, "run", "--listen", f"127.0.0.1:{free_port()}", "--data",
                        str(cluster_dir / "n1"), "--secret", str(cluster_dir / "secret")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 3, p.stderr
    # A directory of another cluster next to ours.
    other = tmp_path / "other"
    other.mkdir()
    run("init", "--data", str(other / "d"), "--secret", str(other / "secret"))
    p = subprocess.run([NODE, "run", "--listen", f"127.0.0.1:{free_port()}", "--data",
                        str(other / "d"), "--data", str(cluster_dir / "n1"), "--secret",
                        str(cluster_dir / "secret")], capture_output=True, text=True, timeout=60)
    assert p.returncode == 3
    assert "another cluster" in p.stderr
    # A directory never initialised.
    p = subprocess.run([NODE, "run", "--listen", f"127.0.0.1:{free_port()}", "--data",
                        str(tmp_path / "empty"), "--secret", str(cluster_dir / "secret")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert "cairn-node init" in p.stderr


def test_refuses_loose_secret_and_bad_usage(cluster_dir):
    os.chmod(cluster_dir / "secret", 0o644)
    p = run("run", "--listen", "127.0.0.1:1", "--data", str(cluster_dir / "n1"), "--secret",
            str(cluster_dir / "secret"), check=False)
    assert p.returncode == 2
    assert "chmod 600" in p.stderr
    assert run("frobnicate", "--data", "x", "--secret", "y", check=False).returncode == 2
    assert run("run", "--data", "x", check=False).returncode == 2
    assert run("--help").stdout.startswith("usage:")
    p = run("join", "127.0.0.1:1", "--node-id", "1", "--data", "x", "--secret", "y", check=False)
    assert p.returncode == 2


def test_join_with_wrong_secret_is_refused(procs, cluster_dir, tmp_path):
    _, port = start(procs, cluster_dir)
    wrong = tmp_path / "wrong"
    wrong.write_text("ab" * 32 + "\n")
    os.chmod(wrong, 0o600)
    p = run("join", f"127.0.0.1:{port}", "--node-id", "2", "--data", str(tmp_path / "n9"),
            "--secret", str(wrong), check=False)
    assert p.returncode == 1
    assert "not authenticated" in p.stderr
    assert not (tmp_path / "n9" / "IDENTITY").exists()


def raw(port, data, expect_close=True):
    """Sends bytes on a fresh connection; returns True if the node closed it."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        if data:
            s.sendall(data)
        s.settimeout(30)
        try:
            return s.recv(4096) == b""
        except ConnectionResetError:
            return True


def test_bad_peers_are_cut_off_and_members_served(procs, cluster_dir):
    node, port = start(procs, cluster_dir)
    garbage = os.urandom(4096)
    http = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"." * 64
    # A hello of this version (2, offering both ciphers) with a wrong HMAC
    # (no secret).
    forged = b"CRNH\x02\x03\x00\x00" + os.urandom(64)
    # A truncated hello, then silence: cut off by the handshake timeout.
    truncated = b"CRNH\x02"
    huge = b"CRNH\x02\x03\x00\x00" + os.urandom(64) + struct.pack("<I", 0xFFFFFFFF)
    for data in (garbage, http, forged, truncated, huge, b""):
        assert raw(port, data), f"node kept a bad connection open: {data[:16]!r}"
        # Members are still served after each one.
        p = run("join", f"127.0.0.1:{port}", "--node-id", "5", "--data",
                str(cluster_dir / f"probe{len(data)}"), "--secret", str(cluster_dir / "secret"))
        assert p.returncode == 0
    assert node.alive()
    log = node.log()
    assert "err=CAIRN_EPROTO" in log  # garbage, http
    assert "err=CAIRN_EAUTH" in log   # forged hello
    assert "err=CAIRN_ETIMEOUT" in log  # truncated hello, silence
