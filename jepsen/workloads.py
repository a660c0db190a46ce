"""Workloads: what the clients do, and the client interface they do it through.

A Workload generates operations for its workers and knows its checker; a
Client performs one operation against the system and classifies the outcome
the Jepsen way:

    client.invoke(op) -> (type, value, error)
        type "ok"   it took effect; value is the result
        type "fail" it certainly did not take effect (connection refused
                    before the request was sent, 4xx that rejects it, 412
                    "precondition" for a conditional write)
        type "info" unknown: timeout, connection dropped after sending, 5xx

op is {"f": ..., "key": ..., "value": ...} as in checker/history.py. The
clients for the real cluster (GatewayRegisterClient, GatewayUploadsClient,
GatewayJournalClient) talk to cairn-gateway's Drive API; their methods are
not written yet because that API does not exist yet (see docs/testing.md,
"Hooking up the workloads"). The in-memory clients here are for testing the
runner itself; they are never used by `jepsen/run` against a cluster.
"""
import hashlib
import threading

from .checker import journal, linear, uploads


class NotAvailable(RuntimeError):
    """The system under test cannot be driven yet (binary or API missing)."""


# ---- workloads

class RegisterWorkload:
    """Many independent files; reads return version+data; writes are
    unconditional or conditional on the last version this worker saw."""

    name = "register"
    check = staticmethod(linear.check)

    def __init__(self, keys=8):
        self.keys = [f"reg-{i}" for i in range(keys)]
        self._n = 0
        self._lock = threading.Lock()

    def _unique(self, worker):
        with self._lock:
            self._n += 1
            return f"w{worker}-{self._n}"

    def next_op(self, worker, state, rng):
        key = rng.choice(self.keys)
        r = rng.random()
        if r < 0.5:
            return {"f": "read", "key": key, "value": None}
        if r < 0.7:
            return {"f": "write", "key": key, "value": {"data": self._unique(worker)}}
        return {"f": "cas", "key": key, "value": {"base": state.get(key), "data": self._unique(worker)}}

    def observe(self, state, op, type_, value):
        """Remembers the versions this worker saw, as bases for its cas."""
        if type_ != "ok":
            return
        if op["f"] == "read":
            state[op["key"]] = value["version"] if value else None
        elif isinstance(value, dict) and value.get("version") is not None:
            state[op["key"]] = value["version"]

    def final_ops(self):
        return [{"f": "read", "key": k, "value": None} for k in self.keys]


class UploadsWorkload:
    """Uploads of fresh files (each to its own key), with sizes spread over
    the chunker's range, a few reads during the run, and a final read of
    every key."""

    name = "uploads"
    check = staticmethod(uploads.check)

    def __init__(self, sizes=(0, 1, 4096, 300_000, 1_500_000, 5_000_000)):
        self.sizes = sizes
        self.keys = []
        self._lock = threading.Lock()

    @staticmethod
    def content(key, size):
        """Deterministic bytes for a key, so nothing large is kept in memory."""
        out = bytearray()
        block = 0
        while len(out) < size:
            out += hashlib.sha256(f"{key}/{block}".encode()).digest() * 64
            block += 1
        return bytes(out[:size])

    def next_op(self, worker, state, rng):
        with self._lock:
            if self.keys and rng.random() < 0.2:
                return {"f": "read", "key": rng.choice(self.keys), "value": None}
            key = f"up-{worker}-{len(self.keys)}"
            self.keys.append(key)
        size = rng.choice(self.sizes)
        digest = hashlib.sha256(self.content(key, size)).hexdigest()
        return {"f": "upload", "key": key, "value": {"sha256": digest, "size": size}}

    def observe(self, state, op, type_, value):
        pass

    def final_ops(self):
        return [{"f": "final-read", "key": k, "value": None} for k in list(self.keys)] + \
               [{"f": "final-list", "key": None, "value": None}]


class JournalWorkload:
    """Commits to a few namespaces, and watchers long-polling each namespace
    from the beginning; after the faults heal, every watcher drains."""

    name = "journal"
    check = staticmethod(journal.check)

    def __init__(self, namespaces=2, watchers_per_ns=2):
        self.namespaces = [f"jns-{i}" for i in range(namespaces)]
        self.watchers = [(ns, f"watch-{ns}-{j}") for ns in self.namespaces for j in range(watchers_per_ns)]
        self._n = 0
        self._lock = threading.Lock()
        self.cursors = {w: 0 for _, w in self.watchers}

    def next_op(self, worker, state, rng):
        # Even workers watch (while there are watchers left), the others
        # commit. Every watcher, also one no worker drove, drains at the end.
        if worker % 2 == 0 and worker // 2 < len(self.watchers):
            ns, w = self.watchers[worker // 2]
            return {"f": "watch", "key": ns, "value": {"watcher": w, "cursor": self.cursors[w], "final": False}}
        with self._lock:
            self._n += 1
            n = self._n
        return {"f": "commit", "key": rng.choice(self.namespaces), "value": {"id": f"c{worker}-{n}"}}

    def observe(self, state, op, type_, value):
        if op["f"] == "watch" and type_ == "ok":
            self.cursors[op["value"]["watcher"]] = value.get("cursor", self.cursors[op["value"]["watcher"]])

    def final_ops(self):
        return [{"f": "watch", "key": ns, "value": {"watcher": w, "cursor": self.cursors[w], "final": True}}
                for ns, w in self.watchers]


WORKLOADS = {"register": RegisterWorkload, "uploads": UploadsWorkload, "journal": JournalWorkload}


# ---- clients for the real cluster (to be filled in when the Drive API exists)

class GatewayClient:
    """Base: one HTTP session against one gateway (clients spread over the
    gateways; after an info outcome the runner gives the worker a new
    process number and may switch gateway). The runner calls invoke() from a
    thread that runs in the cluster's hub namespace, so plain sockets reach
    the gateways' 10.77.0.x addresses."""

    def __init__(self, base_url, timeout=10.0):
        self.base_url = base_url
        self.timeout = timeout

    def invoke(self, op):
        raise NotAvailable(f"{type(self).__name__}.invoke: the Drive API client is not written yet "
                           "(docs/testing.md, 'Hooking up the workloads')")

    @staticmethod
    def classify(exc=None, status=None, sent=True):
        """Maps an HTTP outcome to ok/fail/info. `sent`: whether the
        request may have reached the server."""
        if exc is not None:
            import socket
            if isinstance(exc, ConnectionRefusedError) or not sent:
                return "fail"
            if isinstance(exc, (socket.timeout, TimeoutError, ConnectionError, OSError)):
                return "info"
            return "info"
        if status is None or status >= 500:
            return "info"
        if status == 412 or 400 <= status < 500:
            return "fail"
        return "ok"


class GatewayRegisterClient(GatewayClient):
    """read:  GET the file's metadata+content -> {"version": ETag, "data": body} / null on 404
    write: PUT the content unconditionally -> {"version": new ETag}
    cas:   commit against base version (If-Match: base, or If-None-Match: *
           when base is null) -> {"version": new ETag}; 412 -> fail "precondition"."""


class GatewayUploadsClient(GatewayClient):
    """upload: simple or resumable upload of UploadsWorkload.content(key, size)
    read / final-read: GET -> {"sha256", "size"} of the body / null on 404;
    an integrity error from the gateway -> fail "corrupt"
    final-list: list the namespace -> [key, ...]"""


class GatewayJournalClient(GatewayClient):
    """commit: create/modify a file named by the op id in the namespace
    watch:  GET changes?cursor=C (long poll) -> {"events": [{"seq", "id"}], "cursor"}
            where id is recovered from the event's file name."""


GATEWAY_CLIENTS = {"register": GatewayRegisterClient, "uploads": GatewayUploadsClient,
                   "journal": GatewayJournalClient}


# ---- in-memory systems, for testing the runner (never against a cluster)

class MemoryStore:
    """A linearizable in-memory register/upload/journal store. With
    stale_reads=True, reads are served from a lagging copy (what a follower
    read without a read-index would do), which the checker must catch."""

    def __init__(self, stale_reads=False):
        self.lock = threading.Lock()
        self.files = {}
        self.lagging = {}
        self.version = 0
        self.journal = {}
        self.stale_reads = stale_reads
        self.reads = 0

    def client(self):
        return MemoryClient(self)


class MemoryClient:
    def __init__(self, store):
        self.s = store

    def invoke(self, op):
        s, f, key, val = self.s, op["f"], op["key"], op["value"]
        with s.lock:
            if f in ("read", "final-read"):
                s.reads += 1
                src = s.lagging if (s.stale_reads and s.reads % 3 == 0) else s.files
                cur = src.get(key)
                if key is not None and key.startswith("up-"):
                    return "ok", (None if cur is None else {"sha256": cur[1], "size": cur[2]}), None
                return "ok", (None if cur is None else {"version": cur[0], "data": cur[1]}), None
            if f == "final-list":
                return "ok", sorted(k for k in s.files if k.startswith("up-")), None
            if f in ("write", "cas", "upload"):
                cur = s.files.get(key)
                if f == "cas" and (cur[0] if cur else None) != val["base"]:
                    return "fail", None, "precondition"
                s.lagging[key] = cur
                s.version += 1
                v = f"v{s.version}"
                if f == "upload":
                    s.files[key] = (v, val["sha256"], val["size"])
                    return "ok", None, None
                s.files[key] = (v, val["data"])
                return "ok", {"version": v}, None
            if f == "commit":
                j = s.journal.setdefault(key, [])
                j.append(val["id"])
                return "ok", {"seq": len(j)}, None
            if f == "watch":
                j = s.journal.get(key, [])
                c = val["cursor"]
                evs = [{"seq": i + 1, "id": w} for i, w in enumerate(j) if i + 1 > c]
                return "ok", {"events": evs, "cursor": len(j)}, None
        raise ValueError(f)
