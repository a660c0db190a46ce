"""Nemesis primitives on a hosts.Cluster: network partitions, packet loss,
added latency, kill -9 and restart, SIGSTOP/SIGCONT, a data directory that
fills up, a corrupted or truncated file. Each fault has its heal; heal_all()
undoes every network fault and resumes paused processes.

Partitions are "grudges" as in Jepsen: {node name: set of node names whose
packets it drops}. They are enforced with nftables rules in each node's own
namespace (table inet cairn_jepsen, chain partition), dropping inbound
packets from the grudged addresses; a symmetric grudge therefore cuts both
directions. The grudge builders are pure functions (testable anywhere).

Latency: this kernel has no tc netem (hosts checks, see has_netem()), so
delay is added by jepsen/delayproxy.py: a proxy started in the node's
namespace and an nft "redirect" in its prerouting chain that sends new
inbound TCP connections for a port through the proxy. Connections already
established keep their path (conntrack); clients reconnect often enough.
"""
import os
import random
import subprocess
import time

from .hosts import PY, run

HERE = os.path.dirname(os.path.abspath(__file__))


# ---- grudges (pure)

def complete_grudge(components):
    """Nodes in different components cannot talk."""
    grudge = {}
    for comp in components:
        others = set().union(*[set(c) for c in components if c is not comp]) if len(components) > 1 else set()
        for n in comp:
            grudge[n] = set(others)
    return grudge


def halves(nodes, rng):
    """Random halves: the smaller half is floor(n/2)."""
    nodes = list(nodes)
    rng.shuffle(nodes)
    k = len(nodes) // 2
    return complete_grudge([nodes[:k], nodes[k:]])


def isolate(nodes, node):
    """One node (e.g. a group's leader) cut off from all the others."""
    return complete_grudge([[node], [n for n in nodes if n != node]])


def bridge(nodes, rng):
    """Two halves that cannot talk, and one node that talks to both."""
    nodes = list(nodes)
    rng.shuffle(nodes)
    k = len(nodes) // 2
    left, mid, right = nodes[:k], nodes[k], nodes[k + 1:]
    grudge = {mid: set()}
    for n in left:
        grudge[n] = set(right)
    for n in right:
        grudge[n] = set(left)
    return grudge


def majorities_ring(nodes, rng):
    """Every node sees a majority (itself and its nearest ring neighbours),
    but no two nodes see the same majority; symmetric."""
    nodes = list(nodes)
    rng.shuffle(nodes)
    n = len(nodes)
    k = max(1, (n // 2 + 1) // 2)  # neighbours on each side: itself + 2k >= a majority
    grudge = {}
    for i, a in enumerate(nodes):
        sees = {nodes[(i + d) % n] for d in range(-k, k + 1)}
        grudge[a] = set(nodes) - sees
    return grudge


PARTITIONS = {"halves": halves, "bridge": bridge, "majorities-ring": majorities_ring}


# ---- network faults

def _addr_set(cluster, names):
    addrs = sorted(cluster.node(n).addr for n in names)
    return "{ " + ", ".join(addrs) + " }"


def partition(cluster, grudge):
    """Applies a grudge (replacing any previous partition)."""
    for h in cluster.nodes:
        drop = grudge.get(h.name, set()) - {h.name}
        script = f"flush chain inet cairn_jepsen partition\n"
        if drop:
            script += f"add rule inet cairn_jepsen partition ip saddr {_addr_set(cluster, drop)} drop\n"
        h.nft(script)


def heal_partition(cluster):
    for h in cluster.nodes:
        h.nft("flush chain inet cairn_jepsen partition\n")


def loss(host, percent):
    """Drops `percent`% of the packets in and out of host (not loopback)."""
    percent = int(percent)
    script = "flush chain inet cairn_jepsen loss\n"
    if percent >= 100:
        script += 'add rule inet cairn_jepsen loss iifname != "lo" oifname != "lo" drop\n'
    elif percent > 0:
        script += (f'add rule inet cairn_jepsen loss iifname != "lo" oifname != "lo" '
                   f"numgen random mod 100 < {percent} drop\n")
    host.nft(script)


def heal_loss(cluster):
    for h in cluster.nodes:
        h.nft("flush chain inet cairn_jepsen loss\n")


def has_netem():
    """Whether tc netem works here (it does not on this project's kernel)."""
    p = subprocess.run(["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"],
                       capture_output=True, text=True)
    if p.returncode == 0:
        subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], capture_output=True)
        return True
    return False


def add_latency(host, port, delay_ms, jitter_ms=0, proxy_port=None, wait=None, reset_existing=True):
    """TCP connections to host:port are delayed by delay_ms (+- jitter)
    each way: new ones go through the proxy, established ones are reset
    (unless reset_existing is False) so that they reconnect through it. `wait` is a callable(condition, what) used to wait for the
    proxy (e.g. harness.wait_until)."""
    remove_latency(host, port)
    proxy_port = proxy_port or (port + 20000 if port < 45000 else port - 20000)
    p = host.start([PY, os.path.join(HERE, "delayproxy.py"), "--listen", f"0.0.0.0:{proxy_port}",
                    "--to", f"{host.addr}:{port}", "--delay-ms", str(delay_ms),
                    "--jitter-ms", str(jitter_ms)], name=f"delayproxy-{port}")
    host.proxies[port] = p
    what = f"delay proxy on {host.name}:{proxy_port}"
    if wait is not None:
        wait(lambda: "ready" in p.log(), what)
    else:
        deadline = time.monotonic() + 30
        while "ready" not in p.log():
            if time.monotonic() > deadline or not p.alive():
                raise RuntimeError(f"{what} did not start: {p.log()[-500:]}")
            time.sleep(0.05)
    host.nft(f'add rule inet cairn_jepsen latency iifname != "lo" tcp dport {port} '
             f"redirect to :{proxy_port}\n")
    if reset_existing:
        # Connections made before the redirect bypass the proxy (NAT is decided
        # on a connection's first packet): reset them so that their clients
        # reconnect, through the proxy. Redirected ones arrive on proxy_port.
        host.nft(f'add rule inet cairn_jepsen latency_reset iifname != "lo" tcp dport {port} '
                 f"ct state established reject with tcp reset\n")
    return p


def remove_latency(host, port=None):
    """Removes the redirect (and stops the proxy, which drops the
    connections that went through it)."""
    host.nft("flush chain inet cairn_jepsen latency\nflush chain inet cairn_jepsen latency_reset\n")
    ports = [port] if port is not None else list(host.proxies)
    for pt in ports:
        p = host.proxies.pop(pt, None)
        if p is not None:
            p.stop(grace=2)
    # Other ports' redirects are re-added.
    for pt, p in host.proxies.items():
        proxy_port = p.argv[p.argv.index("--listen") + 1].rsplit(":", 1)[1]
        host.nft(f'add rule inet cairn_jepsen latency iifname != "lo" tcp dport {pt} '
                 f"redirect to :{proxy_port}\n")


def heal_all(cluster):
    heal_partition(cluster)
    heal_loss(cluster)
    for h in cluster.nodes:
        remove_latency(h)
        for p in h.processes:
            if p.alive():
                p.resume()


# ---- disk faults

def fill(path, chunk=1 << 20):
    """Fills the file system holding `path` (a tmpfs from Host.tmpfs) with
    a filler file until it is full. Returns the filler's path."""
    filler = os.path.join(path, ".jepsen-filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        while chunk >= 1:
            try:
                os.write(fd, b"\0" * chunk)
            except OSError:
                chunk //= 2
    finally:
        os.close(fd)
    return filler


def unfill(path):
    try:
        os.unlink(os.path.join(path, ".jepsen-filler"))
    except FileNotFoundError:
        pass


def pick_file(root, rng, suffix="", exclude=None):
    """A random file under root (name ending in suffix, not excluded by
    exclude(name)), or None."""
    files = []
    for d, _, names in os.walk(root):
        files += [os.path.join(d, n) for n in names if n.endswith(suffix) and n != ".jepsen-filler"
                  and not (exclude and exclude(n))]
    return rng.choice(sorted(files)) if files else None


def corrupt(path, rng, nbytes=8):
    """Flips `nbytes` random bytes of the file in place. Returns the offsets."""
    size = os.path.getsize(path)
    if size == 0:
        return []
    offsets = sorted(rng.randrange(size) for _ in range(nbytes))
    with open(path, "r+b") as f:
        for off in offsets:
            f.seek(off)
            b = f.read(1)
            f.seek(off)
            f.write(bytes([b[0] ^ (1 + rng.randrange(255))]))
    return offsets


def truncate(path, rng):
    """Cuts the file at a random point. Returns the new size."""
    size = os.path.getsize(path)
    new = rng.randrange(size) if size else 0
    os.truncate(path, new)
    return new


def rng_for(seed):
    return random.Random(seed)


__all__ = ["halves", "isolate", "bridge", "majorities_ring", "complete_grudge", "partition",
           "heal_partition", "loss", "heal_loss", "add_latency", "remove_latency", "has_netem",
           "heal_all", "fill", "unfill", "corrupt", "truncate", "pick_file", "run"]
