"""scripts/cluster with a gateway: start writes a private cluster.env with
the endpoint and the admin's password, the admin signs in with it, status
sees every process, and stop leaves none running."""
import os
import stat
import subprocess

import pytest
import requests

from harness import SOURCE, binary

CLUSTER = os.path.join(SOURCE, "scripts", "cluster")
GATEWAY = binary("cairn-gateway")
pytestmark = pytest.mark.skipif(not os.path.exists(GATEWAY), reason="cairn-gateway not built")


def cluster(*args):
    env = dict(os.environ, CAIRN_BIN=os.path.dirname(GATEWAY))
    return subprocess.run(["/usr/bin/python3", CLUSTER, *args], capture_output=True, text=True,
                          env=env, timeout=180)


def read_env(path):
    out = {}
    with open(path) as f:
        for line in f:
            if "=" in line and not line.startswith("#"):
                k, v = line.strip().split("=", 1)
                out[k] = v.strip("'")
    return out


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_start_with_a_gateway_then_stop(tmp_path):
    d = str(tmp_path / "c")
    p = cluster("start", "--nodes", "3", "--dir", d)
    try:
        assert p.returncode == 0, p.stderr
        env_path = os.path.join(d, "cluster.env")
        assert stat.S_IMODE(os.stat(env_path).st_mode) == 0o600  # it holds the admin's password
        env = read_env(env_path)
        assert env["CAIRN_ENDPOINT"] == env["CAIRN_GATEWAY_1_URL"]
        r = requests.post(env["CAIRN_ENDPOINT"] + "/v1/auth/login",
                          json={"user": env["CAIRN_ADMIN_USER"], "password": env["CAIRN_ADMIN_PASSWORD"]},
                          timeout=30)
        assert r.status_code == 200, r.text
        r = requests.post(env["CAIRN_ENDPOINT"] + "/v1/auth/login",
                          json={"user": "admin", "password": "not-the-password"}, timeout=30)
        assert r.status_code == 401
        s = cluster("status", "--dir", d)
        assert s.returncode == 0 and "gateway 1:" in s.stdout and " down" not in s.stdout, s.stdout
    finally:
        cluster("stop", "--dir", d)
    env = read_env(os.path.join(d, "cluster.env"))
    pids = [int(v) for k, v in env.items() if k.endswith("_PID")]
    assert len(pids) == 4 and not any(alive(pid) for pid in pids)
