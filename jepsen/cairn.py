"""The Cairn cluster on a hosts.Cluster: which binaries it needs, how it is
started, and the nemesis bound to its processes and data directories.

start():
    node 1:      cairn-node init --data DIR --secret FILE, then
                 cairn-node run --listen 10.77.0.11:PORT --data DIR --secret FILE
    nodes 2..N:  cairn-node join 10.77.0.11:PORT --listen ADDR:PORT --data DIR --secret FILE
                 (the system group gives the id), then cairn-node run ... like node 1
    gateways:    cairn-gateway on hosts 1..G, HTTP on 10.77.0.1x:HTTP_PORT, reached
                 by clients in the hub namespace
Each process runs inside its node's namespace (Host.start), each data
directory is a Host.tmpfs() so the disk nemesis can fill it, and start()
returns once every gateway signs the admin in.
"""
import hashlib
import os
import secrets
import sys
import time

from . import hosts
from . import nemesis as nem
from .hosts import run
from .runner import Nemesis
from .workloads import NotAvailable

NODE_PORT = 7400
NODE_EXIT_STORAGE = 4  # cairn-node's exit code when its disk failed under it
HTTP_PORT = 8080
# Each node's data directory is a tmpfs of this size (it takes RAM only for
# what is written). A node hosting every group keeps ~25 MiB of Raft log per
# group (libraft preallocates 8 MiB segments) besides its shards: 256 MiB
# filled up in some 3-minute runs without the disk nemesis, by accident. A
# full disk is the "disk" nemesis' job.
DATA_BYTES = 1 << 30


def missing_binaries(bin_dir):
    return [os.path.join(bin_dir, b) for b in ("cairn-node", "cairn-gateway", "cairn-blocks", "cairn-meta")
            if not os.access(os.path.join(bin_dir, b), os.X_OK)]


class CairnCluster:
    def __init__(self, cluster, bin_dir, gateways=2, node_args=()):
        self.cluster = cluster
        self.bin_dir = bin_dir
        self.gateways = gateways
        self.node_args = list(node_args)  # extra flags of every `cairn-node run`
        self.nodes = {}  # host name -> hosts.Process (cairn-node)
        self.gateway_procs = {}  # host name -> hosts.Process (cairn-gateway)
        self.data_dirs = {}  # host name -> path (a tmpfs)

    def _bin(self, name):
        return os.path.join(self.bin_dir, name)

    def _wait(self, what, check, timeout=120.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except Exception as e:  # noqa: BLE001 - reported at the deadline
                last = e
            time.sleep(0.2)
        raise NotAvailable(f"{what} did not come up within {timeout:.0f} s ({last})")

    def _node_argv(self, h):
        return [self._bin("cairn-node"), "run", "--listen", f"{h.addr}:{NODE_PORT}",
                "--data", self.data_dirs[h.name], "--secret", self.secret, "--domain", h.name,
                "--log-level", "debug", *self.node_args]

    def start(self):
        """Raises NotAvailable (with the failing command's output) when the
        cluster cannot be brought up."""
        try:
            self._start()
        except hosts.HostError as e:
            raise NotAvailable(f"starting the cluster: {e}") from e

    def _start(self):
        members = self.cluster.nodes
        work = self.cluster.workdir
        self.secret = os.path.join(work, "secret")
        self.keys = os.path.join(work, "keys")
        for h in members:
            self.data_dirs[h.name] = h.tmpfs("data", DATA_BYTES)
        first = members[0]
        seed = f"{first.addr}:{NODE_PORT}"
        run([self._bin("cairn-node"), "init", "--data", self.data_dirs[first.name], "--secret", self.secret])
        self.nodes[first.name] = first.start(self._node_argv(first), name="cairn-node")
        self._wait("node n1", lambda: first.connect(first.addr, NODE_PORT).close() is None)
        for h in members[1:]:
            h.exec([self._bin("cairn-node"), "join", seed, "--listen", f"{h.addr}:{NODE_PORT}",
                    "--data", self.data_dirs[h.name], "--secret", self.secret])
            self.nodes[h.name] = h.start(self._node_argv(h), name="cairn-node")
        run([self._bin("cairn-blocks"), "keygen", self.keys])
        self.admin_password = secrets.token_urlsafe(18)
        with open(os.path.join(work, "admin-password"), "w") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(self.admin_password + "\n")
        nodes = ",".join(f"{h.addr}:{NODE_PORT}" for h in members)
        for i, h in enumerate(members[:self.gateways]):
            # The first gateway creates the admin user (once, in the system group).
            admin = ["--admin-user", "admin", "--admin-password-file",
                     os.path.join(work, "admin-password")] if i == 0 else []
            self.gateway_procs[h.name] = h.start(
                [self._bin("cairn-gateway"), "--listen", f"{h.addr}:{HTTP_PORT}", "--nodes", nodes,
                 "--secret", self.secret, "--keys", self.keys, "--log-level", "debug", *admin],
                name="cairn-gateway")
        for url in self.gateway_urls():
            self._wait(f"gateway {url}", lambda url=url: self._admin(url) is not None)

    def process_verdict(self):
        """The "processes" check: every node and gateway that died without
        the nemesis killing it is an anomaly (a crash), with its exit status
        and the end of its log (a fatal signal writes a backtrace there)."""
        anomalies = []
        for kind, procs in (("cairn-node", self.nodes), ("cairn-gateway", self.gateway_procs)):
            for host, p in sorted(procs.items()):
                status = p.crashed()
                deaths = list(p.deaths) + ([status] if status is not None else [])
                for status in deaths:  # earlier ones were then restarted by a kill's heal
                    if status in p.expected_exits:
                        continue
                    anomalies.append({"type": "crashed", "process": kind, "host": host,
                                      "exit_status": status,
                                      "log_tail": p.log().splitlines()[-40:]})
        # How full each data directory (a size-limited tmpfs) ended up: a
        # node that ran out of space behaves differently, and should be known.
        disks = {}
        for host, path in sorted(self.data_dirs.items()):
            try:
                st = os.statvfs(path)
                disks[host] = {"size_mib": st.f_blocks * st.f_frsize >> 20,
                               "used_mib": (st.f_blocks - st.f_bfree) * st.f_frsize >> 20}
            except OSError:
                pass
        return {"checker": "processes", "valid": not anomalies, "anomalies": anomalies,
                "anomaly_types": sorted({a["type"] for a in anomalies}), "data_dirs": disks}

    def recorded_chunks(self):
        """The chunks some gateway recorded in an index (the first 16 hex
        digits of their ids, from the gateways' debug logs)."""
        import re
        out = set()
        for p in self.gateway_procs.values():
            out.update(re.findall(r'msg="chunk recorded" chunk=([0-9a-f]{16}) .*err=CAIRN_OK', p.log()))
        return out

    def repair_verdict(self, rotted_shards, timeout=300.0, interval=2.0, recorded=None):
        """The "repair" check, after the final reads: every shard file the
        corrupt nemesis rotted is whole again within `timeout` seconds (scrub
        quarantines it, and the repair driver rebuilds it from the others:
        the same bytes, on its node or another). A shard still rotten or
        missing then is an anomaly: the chunk lost one of its m spares. Only
        shards of chunks some index holds count (`recorded`: the gateways'
        logs by default): a chunk whose upload failed before its record (a
        shard refused on a full disk) is garbage nothing repairs."""
        if recorded is None:
            recorded = self.recorded_chunks()
        unrecorded = [s for s in rotted_shards
                      if os.path.basename(s["shard"])[:16] not in recorded]
        rotted_shards = [s for s in rotted_shards if s not in unrecorded]
        def whole(shard):
            for path in self.data_dirs.values():
                try:
                    with open(os.path.join(path, shard["shard"]), "rb") as f:
                        if hashlib.sha256(f.read()).hexdigest() == shard["sha256"]:
                            return True
                except OSError:
                    pass
            return False

        t0 = time.monotonic()
        waiting = list(rotted_shards)
        while waiting and time.monotonic() - t0 < timeout:
            waiting = [s for s in waiting if not whole(s)]
            if waiting:
                time.sleep(interval)
        anomalies = [{"type": "not-repaired", **s} for s in waiting]
        return {"checker": "repair", "valid": not anomalies, "anomalies": anomalies,
                "anomaly_types": sorted({a["type"] for a in anomalies}),
                "rotted": len(rotted_shards), "repaired": len(rotted_shards) - len(waiting),
                "unrecorded": unrecorded, "seconds": round(time.monotonic() - t0, 1)}

    def preserve_data(self, dest):
        """Stops every node and gateway (SIGTERM) and copies each node's data
        directory to dest/<host> for forensics (shards, Raft logs, RocksDB)."""
        import shutil
        for procs in (self.gateway_procs, self.nodes):
            for p in procs.values():
                p.stop()
        for host, path in sorted(self.data_dirs.items()):
            try:
                shutil.copytree(path, os.path.join(dest, host), symlinks=True,
                                ignore=shutil.ignore_patterns(".jepsen-filler"))
            except (OSError, shutil.Error) as e:
                print(f"jepsen/run: could not keep {host}'s data: {e}", file=sys.stderr)

    def group_leader(self, rng):
        """The host name of the leader of a random group (cairn-meta map, run
        from the hub namespace), or None."""
        import json
        argv = [self._bin("cairn-meta"), "--secret", self.secret, "--timeout", "3000"]
        for h in self.cluster.nodes:
            argv += ["--node", f"{h.addr}:{NODE_PORT}"]
        try:
            with hosts.netns(self.cluster.hub):
                p = run(argv + ["map"], check=False, timeout=10)
            groups = [g for g in json.loads(p.stdout)["groups"] if g.get("leader")]
        except (ValueError, KeyError, OSError, hosts.HostError):
            return None
        if not groups:
            return None
        # Node ids follow the join order: n1 made the cluster (id 1), n2 joined as 2, ...
        return f"n{rng.choice(groups)['leader']}"

    def _admin(self, url):
        """A Drive signed in as the admin (from the hub namespace)."""
        from .drive import Drive
        with hosts.netns(self.cluster.hub):
            d = Drive(url, timeout=5.0)
            d.login("admin", self.admin_password)
        return d

    def create_users(self, names):
        """Creates each user (through the first gateway) with a random
        password; returns {name: {"user", "password"}}."""
        out = {}
        d = self._admin(self.gateway_urls()[0])
        with hosts.netns(self.cluster.hub):
            for name in names:
                password = secrets.token_urlsafe(12)
                a = d.create_user(name, password)
                if a.status not in (200, 201, 409):
                    raise NotAvailable(f"creating user {name}: HTTP {a.status} {a.body[:200]!r}")
                out[name] = {"user": name, "password": password}
        return out

    def gateway_urls(self):
        return [f"http://{self.cluster.node(n).addr}:{HTTP_PORT}" for n in sorted(self.gateway_procs)]


def build_nemesis(cluster, cairn, names, log=print):
    """The faults named in `names` (kill, pause, partition, loss, latency,
    disk, corrupt), each a (start(rng), stop()) pair on the real cluster."""
    hosts = cluster.nodes
    node_names = [h.name for h in hosts]
    faults = {}
    current = {}

    if "kill" in names:
        def kill_start(rng):
            victims = rng.sample(node_names, rng.choice([1, max(1, (len(hosts) - 1) // 2)]))
            for v in victims:
                cairn.nodes[v].kill()
            current["kill"] = victims
            return {"killed": victims}

        def kill_stop():
            victims = current.pop("kill", [])
            for v in victims:
                cairn.nodes[v].start()
            return {"restarted": victims}
        faults["kill"] = (kill_start, kill_stop)

    if "pause" in names:
        def pause_start(rng):
            victims = rng.sample(node_names, 1)
            for v in victims:
                cairn.nodes[v].pause()
            current["pause"] = victims
            return {"paused": victims}

        def pause_stop():
            victims = current.pop("pause", [])
            for v in victims:
                cairn.nodes[v].resume()
            return {"resumed": victims}
        faults["pause"] = (pause_start, pause_stop)

    if "partition" in names:
        def part_start(rng):
            kind = rng.choice(["halves", "isolate", "bridge", "majorities-ring"])
            if kind == "isolate":
                # The leader of a random group, from the cluster map (a random
                # node when no map can be read, e.g. during another fault).
                leader = cairn.group_leader(rng)
                victim = leader if leader in node_names else rng.choice(node_names)
                grudge = nem.isolate(node_names, victim)
            else:
                grudge = nem.PARTITIONS[kind](node_names, rng)
            nem.partition(cluster, grudge)
            return {"kind": kind, "grudge": {k: sorted(v) for k, v in grudge.items()}}

        def part_stop():
            nem.heal_partition(cluster)
            return None
        faults["partition"] = (part_start, part_stop)

    if "loss" in names:
        def loss_start(rng):
            victims = rng.sample(node_names, rng.randint(1, len(node_names)))
            pct = rng.choice([5, 20, 50])
            for v in victims:
                nem.loss(cluster.node(v), pct)
            return {"nodes": victims, "percent": pct}

        def loss_stop():
            nem.heal_loss(cluster)
            return None
        faults["loss"] = (loss_start, loss_stop)

    if "latency" in names:
        def lat_start(rng):
            ms = rng.choice([20, 100, 300])
            for h in hosts:
                nem.add_latency(h, NODE_PORT, ms, jitter_ms=ms // 4)
            return {"delay_ms": ms, "port": NODE_PORT}

        def lat_stop():
            for h in hosts:
                nem.remove_latency(h)
            return None
        faults["latency"] = (lat_start, lat_stop)

    if "disk" in names:
        def disk_start(rng):
            v = rng.choice(node_names)
            nem.fill(cairn.data_dirs[v])
            current["disk"] = v
            # A node whose Raft log or state machine cannot be written stops
            # itself with exit code 4 (docs/node.md, "Storage failures"): not
            # a crash on a node whose disk we filled.
            cairn.nodes[v].expected_exits.add(NODE_EXIT_STORAGE)
            return {"full": v}

        def disk_stop():
            v = current.pop("disk", None)
            if not v:
                return {"freed": None}
            nem.unfill(cairn.data_dirs[v])
            p = cairn.nodes[v]
            if not p.alive() and p.popen is not None and p.popen.returncode == NODE_EXIT_STORAGE:
                p.start()  # as a supervisor would, once the disk works again
                return {"freed": v, "restarted": v}
            return {"freed": v}
        faults["disk"] = (disk_start, disk_stop)

    rotted_shards = []  # what the corrupt nemesis rotted: for the repair check
    if "corrupt" in names:
        rotted = set()  # chunk ids with a shard rotted on some node

        def corrupt_start(rng):
            # A shard file, never one of a chunk already hit on another node:
            # rot on more than m nodes of one chunk is a loss Cairn does not
            # promise to survive. Raft logs and RocksDB files are not shards
            # (their corruption is a disk failure, the disk nemesis's kind).
            v = rng.choice(node_names)
            shards = os.path.join(cairn.data_dirs[v], "shards", "shards")
            path = nem.pick_file(shards, rng, exclude=lambda name: ".tmp." in name
                                 or name.split(".", 1)[0] in rotted)
            if path is None:
                return {"node": v, "file": None}
            rotted.add(os.path.basename(path).split(".", 1)[0])
            try:
                with open(path, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            except OSError:  # gone since it was picked (a rebalance, a delete)
                return {"node": v, "file": None}
            rotted_shards.append({"node": v, "shard": os.path.relpath(path, cairn.data_dirs[v]),
                                  "sha256": digest})
            if rng.random() < 0.5:
                return {"node": v, "file": path, "corrupted_at": nem.corrupt(path, rng)}
            return {"node": v, "file": path, "truncated_to": nem.truncate(path, rng)}
        faults["corrupt"] = (corrupt_start, lambda: None)  # healed by scrub/repair, not by us

    def heal_all():
        for name, (_, stop) in faults.items():
            try:
                stop()
            except Exception as e:  # keep healing the rest
                log(f"nemesis: healing {name} failed: {e}")
        nem.heal_all(cluster)
        # A node that stopped itself on a full disk just after its disk was
        # freed is started again, as a supervisor would.
        for v, p in cairn.nodes.items():
            if not p.alive() and p.popen is not None and p.popen.returncode in p.expected_exits:
                log(f"nemesis: starting {v} again (it stopped itself, exit {p.popen.returncode})")
                p.start()

    nemesis = Nemesis(faults, heal_all)
    nemesis.rotted_shards = rotted_shards
    return nemesis
