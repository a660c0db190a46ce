"""The Cairn cluster on a hosts.Cluster: which binaries it needs, how it is
started (not written yet: the daemon and gateway are being built), and the
nemesis bound to its processes and data directories.

What start() must do once cairn-node and cairn-gateway exist (node/main.c's
usage text, as of this writing):
    node 1:      cairn-node init --data DIR --secret FILE, then
                 cairn-node run --listen 10.77.0.11:PORT --data DIR --secret FILE
    nodes 2..N:  cairn-node join 10.77.0.11:PORT --node-id N --data DIR --secret FILE,
                 then cairn-node run ... like node 1
    gateways:    cairn-gateway on hosts 1 and 2 (flags to be defined), HTTP on
                 10.77.0.1x:HTTP_PORT, reached by clients in the hub namespace
each process started with Host.start() (inside the node's namespace), each data
directory a Host.tmpfs() so the disk nemesis can fill it, and start() waiting
until every gateway answers a health request.
"""
import os

from . import nemesis as nem
from .runner import Nemesis
from .workloads import NotAvailable

NODE_PORT = 7400
HTTP_PORT = 8080
DATA_BYTES = 256 << 20


def missing_binaries(bin_dir):
    return [os.path.join(bin_dir, b) for b in ("cairn-node", "cairn-gateway")
            if not os.access(os.path.join(bin_dir, b), os.X_OK)]


class CairnCluster:
    def __init__(self, cluster, bin_dir, gateways=2):
        self.cluster = cluster
        self.bin_dir = bin_dir
        self.gateways = gateways
        self.nodes = {}  # host name -> hosts.Process (cairn-node)
        self.gateway_procs = {}  # host name -> hosts.Process (cairn-gateway)
        self.data_dirs = {}  # host name -> path (a tmpfs)

    def start(self):
        raise NotAvailable("starting a Cairn cluster is not written yet (jepsen/cairn.py: "
                           "CairnCluster.start); cairn-node's init/join/run and cairn-gateway's "
                           "flags must be final first")

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
                # TODO: isolate the leader of a group once the node reports it (e.g. /metrics).
                grudge = nem.isolate(node_names, rng.choice(node_names))
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
            return {"full": v}

        def disk_stop():
            v = current.pop("disk", None)
            if v:
                nem.unfill(cairn.data_dirs[v])
            return {"freed": v}
        faults["disk"] = (disk_start, disk_stop)

    if "corrupt" in names:
        def corrupt_start(rng):
            v = rng.choice(node_names)
            path = nem.pick_file(cairn.data_dirs[v], rng)
            if path is None:
                return {"node": v, "file": None}
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

    return Nemesis(faults, heal_all)
