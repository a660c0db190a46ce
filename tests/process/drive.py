"""A Drive test bed: three real cairn-node processes (init, join, run) and one
cairn-gateway on loopback, with an admin user; helpers to sign in and call
the API (requests). Every process is started through harness.Procs and
stopped by PID at teardown.

    from drive import Drive
    @pytest.fixture(scope="module")
    def drive(tmp_path_factory):
        with Drive(tmp_path_factory.mktemp("drive")) as d:
            yield d
"""
import json
import os
import subprocess

import requests

from harness import Procs, binary, free_port, wait_until

NODE = binary("cairn-node")
GATEWAY = binary("cairn-gateway")
BLOCKS = binary("cairn-blocks")
META = binary("cairn-meta")
ADMIN_PASSWORD = "admin-password-for-tests"
# Under ASan, freed memory sits in a 256 MiB quarantine and counts as RSS;
# a small one keeps the gateway's peak RSS meaningful (no effect otherwise).
GATEWAY_ENV = {"ASAN_OPTIONS": ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                    "quarantine_size_mb=16"]))}


def built():
    return all(os.path.exists(p) for p in (NODE, GATEWAY, BLOCKS, META))


class Drive:
    def __init__(self, d, nodes=3, gateway_args=()):
        self.dir = str(d)
        self.procs = Procs(self.dir)
        self.secret = os.path.join(self.dir, "secret")
        self.keys = os.path.join(self.dir, "keys")
        self.node_count = nodes
        self.gateway_args = list(gateway_args)
        self.nodes = []
        self.gateway = None
        self.url = None

    def __enter__(self):
        try:
            self.start()
        except Exception:
            print(self.procs.dump_logs() if hasattr(self.procs, "dump_logs") else "")
            self.procs.stop_all()
            raise
        return self

    def __exit__(self, *exc):
        codes = {p: p.stop() for p in reversed(self.procs.started)}
        if exc[0] is None:
            assert self.gateway is None or codes[self.gateway] == 0, self.gateway.log()[-4000:]

    def run_node(self, i, addr, data, *extra):
        p = self.procs.start([NODE, "run", "--listen", addr, "--data", data, "--secret", self.secret,
                              *extra], name=f"node{i}")
        wait_until(lambda: "node ready" in p.log() or not p.alive(), f"node {i} ready", timeout=120)
        assert p.alive(), p.log()[-3000:]
        return p

    def start(self):
        addrs = self.addrs = [f"127.0.0.1:{free_port()}" for _ in range(self.node_count)]
        datas = [os.path.join(self.dir, f"node{i + 1}") for i in range(self.node_count)]
        subprocess.run([NODE, "init", "--data", datas[0], "--secret", self.secret], check=True,
                       capture_output=True, timeout=60)
        self.nodes.append(self.run_node(1, addrs[0], datas[0]))
        for i in range(1, self.node_count):
            subprocess.run([NODE, "join", addrs[0], "--listen", addrs[i], "--data", datas[i],
                            "--secret", self.secret], check=True, capture_output=True, timeout=60)
            self.nodes.append(self.run_node(i + 1, addrs[i], datas[i]))
        self.wait_groups()
        subprocess.run([BLOCKS, "keygen", self.keys], check=True, capture_output=True, timeout=60)
        self.start_gateway(addrs)

    def restart_node(self, i, *extra):
        """Stops node i (1-based) and starts it again with more `run` flags."""
        assert self.nodes[i - 1].stop() == 0
        data = os.path.join(self.dir, f"node{i}")
        self.nodes[i - 1] = self.run_node(i, self.addrs[i - 1], data, *extra)
        self.wait_groups()

    def cluster_map(self):
        argv = [META, "--secret", self.secret, "--timeout", "3000"]
        for addr in self.addrs:
            argv += ["--node", addr]
        p = subprocess.run(argv + ["map"], capture_output=True, text=True, timeout=30)
        return json.loads(p.stdout) if p.returncode == 0 else None

    def wait_groups(self):
        """Every node up in the map, every group with min(3, N) voters and a leader."""
        want = min(3, self.node_count)

        def healthy():
            m = self.cluster_map()
            return (m and len([n for n in m["nodes"] if n.get("state") in ("up", "NODE_UP", 1)])
                    >= self.node_count and m["groups"]
                    and all(g["leader"] and len(g["voters"]) == want for g in m["groups"]))

        wait_until(healthy, "every group with its voters and a leader", timeout=120, interval=0.2)

    def start_gateway(self, addrs, extra=()):
        password_file = os.path.join(self.dir, "admin-password")
        with open(password_file, "w") as f:
            f.write(ADMIN_PASSWORD + "\n")
        port = free_port()
        self.gateway = self.procs.start(
            [GATEWAY, "--listen", f"127.0.0.1:{port}", "--nodes", ",".join(addrs), "--secret",
             self.secret, "--keys", self.keys, "--admin-user", "admin", "--admin-password-file",
             password_file, *self.gateway_args, *extra], name="gateway", env=GATEWAY_ENV)
        self.url = f"http://127.0.0.1:{port}"

        def healthy():
            if not self.gateway.alive():
                return True
            return requests.get(self.url + "/health", timeout=5).status_code == 200

        wait_until(healthy, "gateway healthy", timeout=120)
        assert self.gateway.alive(), self.gateway.log()[-3000:]
        wait_until(lambda: requests.get(self.url + "/health", timeout=5).json()["nodes_up"]
                   == self.node_count, "the gateway sees every node", timeout=60)
        wait_until(lambda: "admin user ready" in self.gateway.log(), "admin user", timeout=60)
        self.admin = self.login("admin", ADMIN_PASSWORD)

    def extra_gateway(self, *args):
        """Another gateway on the same cluster (no admin bootstrap); returns (proc, url)."""
        port = free_port()
        proc = self.procs.start([GATEWAY, "--listen", f"127.0.0.1:{port}", "--nodes",
                                 ",".join(self.addrs), "--secret", self.secret, "--keys", self.keys,
                                 *args], name="gateway-extra", env=GATEWAY_ENV)
        url = f"http://127.0.0.1:{port}"

        def healthy():
            if not proc.alive():
                return True
            return requests.get(url + "/health", timeout=5).status_code == 200

        wait_until(healthy, "extra gateway healthy", timeout=120)
        assert proc.alive(), proc.log()[-3000:]
        return proc, url

    def login(self, name, password):
        def attempt():
            r = requests.post(self.url + "/v1/auth/login", json={"user": name, "password": password},
                              timeout=30)
            assert r.status_code != 503, r.text
            return r
        r = wait_until(attempt, f"login {name}", timeout=60)
        assert r.status_code == 200, r.text
        return Client(self, r.json()["token"])

    def new_user(self, name, password="pw-" + "x" * 8):
        r = self.admin.post("/v1/admin/users", json={"name": name, "password": password})
        assert r.status_code == 201, r.text
        return self.login(name, password)


class Client:
    """One signed-in user: requests with the bearer token."""

    def __init__(self, drive, token):
        self.drive = drive
        self.token = token
        self.session = requests.Session()
        self.session.headers["Authorization"] = "Bearer " + token

    def request(self, method, path, **kw):
        kw.setdefault("timeout", 120)
        return self.session.request(method, self.drive.url + path, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def upload(self, path, data, **kw):
        r = self.put("/v1/files/" + path, data=data, **kw)
        assert r.status_code in (200, 201), r.text
        return r.json()

    def download(self, path, **kw):
        r = self.get("/v1/files/" + path, **kw)
        assert r.status_code in (200, 206), r.text
        return r.content


def error_code(r):
    try:
        return json.loads(r.text)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
