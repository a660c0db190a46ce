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
GatewayJournalClient) talk to cairn-gateway's Drive API (jepsen/drive.py).
The in-memory clients here are for testing the
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
    unconditional or conditional on the last version this worker saw.

    The files change every `ops_per_generation` operations (200) (a new set of
    `keys` files), so that each file's history stays short enough for the
    linearizability checker to decide (a few hundred operations, a few of
    them indeterminate), as Jepsen's independent keys do."""

    name = "register"
    check = staticmethod(linear.check)

    def __init__(self, keys=4, ops_per_generation=200):
        self.width = keys
        self.ops_per_generation = ops_per_generation
        self.keys = [f"reg-0-{i}" for i in range(keys)]  # every key used so far
        self._n = 0
        self._ops = 0
        self._lock = threading.Lock()

    def _current_keys(self):
        with self._lock:
            generation = self._ops // self.ops_per_generation
            self._ops += 1
            keys = [f"reg-{generation}-{i}" for i in range(self.width)]
            if keys[0] not in self.keys:
                self.keys += keys
            return keys

    def _unique(self, worker):
        with self._lock:
            self._n += 1
            return f"w{worker}-{self._n}"

    def next_op(self, worker, state, rng):
        key = rng.choice(self._current_keys())
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
        with self._lock:
            return [{"f": "read", "key": k, "value": None} for k in list(self.keys)]


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


# ---- clients for the real cluster: cairn-gateway's Drive API (docs/api.md)

class GatewayClient:
    """Base: one keep-alive HTTP connection to one gateway, signed in as the
    workload's user (`creds`: {"user", "password"}, or {"users": {ns: {...}}}
    for the journal). The runner calls invoke() from a thread that runs in
    the cluster's hub namespace, so plain sockets reach the gateways'
    10.77.0.x addresses."""

    def __init__(self, base_url, creds, timeout=10.0):
        from .drive import Drive
        self.base_url = base_url
        self.creds = creds
        self.timeout = timeout
        self._drive_class = Drive
        self.drives = {}

    def drive(self, who=None):
        """The signed-in Drive for a user (who: a key of creds["users"], or None)."""
        d = self.drives.get(who)
        if d is None:
            c = self.creds if who is None else self.creds["users"][who]
            d = self._drive_class(self.base_url, timeout=self.timeout)
            d.login(c["user"], c["password"])
            self.drives[who] = d
        return d

    def invoke(self, op):
        from .drive import SendError
        try:
            return self.call(op)
        except SendError as e:
            return self.classify(exc=e.cause, sent=e.sent), None, str(e)
        except RuntimeError as e:  # sign-in failed (e.g. no leader yet): nothing was done
            return "fail", None, str(e)

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

    @staticmethod
    def etag(answer):
        return answer.headers.get("etag") or (answer.json() or {}).get("etag")


class GatewayRegisterClient(GatewayClient):
    """read:  GET the file -> {"version": ETag, "data": body} / null on 404
    write: PUT the content unconditionally -> {"version": new ETag}
    cas:   PUT with If-Match: base (If-None-Match: * when base is null)
           -> {"version": new ETag}; 409/412 -> fail "precondition"."""

    def call(self, op):
        d, f, key, val = self.drive(), op["f"], op["key"], op["value"]
        if f == "read":
            a = d.get(key)
            if a.status == 404:
                return "ok", None, None
            if a.status != 200:
                return self.classify(status=a.status), None, f"HTTP {a.status} {a.error_code()}"
            return "ok", {"version": self.etag(a), "data": a.body.decode()}, None
        if f == "write":
            a = d.put(key, val["data"].encode())
        else:
            if val["base"] is None:
                a = d.put(key, val["data"].encode(), if_none_match="*")
            else:
                a = d.put(key, val["data"].encode(), if_match=val["base"])
            if a.status in (409, 412):
                return "fail", None, "precondition"
        if a.status not in (200, 201):
            return self.classify(status=a.status), None, f"HTTP {a.status} {a.error_code()}"
        return "ok", {"version": self.etag(a)}, None


class GatewayUploadsClient(GatewayClient):
    """upload: simple upload of UploadsWorkload.content(key, size)
    read / final-read: GET -> {"sha256", "size"} of the body / null on 404;
    an integrity error from the gateway -> fail "corrupt"
    final-list: list the drive's top folder -> [key, ...] starting with "up-"."""

    def call(self, op):
        d, f, key, val = self.drive(), op["f"], op["key"], op["value"]
        if f == "upload":
            data = UploadsWorkload.content(key, val["size"])
            a = d.put(key, data, timeout=60.0)
            if a.status not in (200, 201):
                return self.classify(status=a.status), None, f"HTTP {a.status} {a.error_code()}"
            return "ok", None, None
        if f in ("read", "final-read"):
            a = d.get(key, timeout=60.0)
            if a.status == 404:
                return "ok", None, None
            if a.error_code() == "CAIRN_ECORRUPT":
                return "fail", None, "corrupt"
            if a.status != 200:
                return self.classify(status=a.status), None, f"HTTP {a.status} {a.error_code()}"
            return "ok", {"sha256": hashlib.sha256(a.body).hexdigest(), "size": len(a.body)}, None
        if f == "final-list":
            a, names = d.list("")
            if names is None:
                return self.classify(status=a.status), None, f"HTTP {a.status} {a.error_code()}"
            return "ok", sorted(n for n in names if n.startswith("up-")), None
        raise ValueError(f)


class GatewayJournalClient(GatewayClient):
    """Each journal namespace is the drive of a user of its own.
    commit: mkdir a folder named by the op id (exactly one journal event)
    watch:  GET /v1/changes?cursor=C (long poll) -> {"events": [{"seq", "id"}], "cursor"}
            where id is the event's name; 410 -> fail "expired"."""

    POLL_SECONDS = 5

    def call(self, op):
        f, ns, val = op["f"], op["key"], op["value"]
        d = self.drive(ns)
        if f == "commit":
            a = d.request("POST", "/v1/folders/" + val["id"])
            if a.status not in (200, 201):
                return self.classify(status=a.status), None, f"HTTP {a.status} {a.error_code()}"
            return "ok", None, None
        if f == "watch":
            # One poll; the final drain polls until a poll comes back empty,
            # since one answer may carry only a page of the events.
            cursor, events = val["cursor"], []
            while True:
                a = d.changes(cursor, 1 if val.get("final") else self.POLL_SECONDS)
                if a.status == 410:
                    return "fail", None, "expired"
                if a.status != 200:
                    if events:  # what was delivered so far stands; the rest is unknown
                        return "ok", {"events": events, "cursor": cursor}, None
                    return self.classify(status=a.status), None, f"HTTP {a.status} {a.error_code()}"
                j = a.json()
                events += [{"seq": int(e["seq"]), "id": e.get("name")} for e in j["events"]]
                cursor = int(j["cursor"])
                if not val.get("final") or not j["events"]:
                    return "ok", {"events": events, "cursor": cursor}, None
        raise ValueError(f)


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
