"""Histories: what clients invoked and what came back.

A history is a list of operations (dicts), in the order they were recorded,
one line of JSON each in history.jsonl. Every client operation is recorded
twice: once when invoked and once when it completes.

    {"index": 0, "process": 3, "type": "invoke", "f": "cas", "key": "k1",
     "value": {"base": "v2", "data": "p3-17"}, "time": 123456789}
    {"index": 1, "process": 3, "type": "ok",     "f": "cas", "key": "k1",
     "value": {"version": "v3"}, "time": 124000000}

type is one of
    invoke  the client sent the request;
    ok      it took effect and this is its result;
    fail    it certainly did not take effect (for a conditional write refused
            because the base version moved on, "error": "precondition");
    info    indeterminate: a timeout, a dropped connection, a 5xx after the
            request was sent. It may or may not have taken effect, now or
            at any later time.

A process (one logical client) has at most one operation outstanding: the
completion of process p pairs with p's last invoke. A process whose operation
ended with info is retired: the client continues under a new process number
(as in Jepsen), because the old operation may still take effect later.

The nemesis records its own events in the same shape with "process":
"nemesis"; the checkers ignore them.
"""
import json

TYPES = ("invoke", "ok", "fail", "info")


class HistoryError(ValueError):
    """The history is malformed (not an anomaly of the system under test)."""


class Op:
    """One client operation: its invocation and its completion paired."""

    __slots__ = ("id", "process", "f", "key", "invoke", "type", "result", "error",
                 "call", "ret", "raw_invoke", "raw_complete")

    def __init__(self, id, inv):
        self.id = id
        self.process = inv.get("process")
        self.f = inv.get("f")
        self.key = inv.get("key")
        self.invoke = inv.get("value")
        self.type = "info"  # until a completion says otherwise
        self.result = None
        self.error = None
        self.call = inv.get("index")
        self.ret = None  # None: never returned (info)
        self.raw_invoke = inv
        self.raw_complete = None

    def __repr__(self):
        return (f"Op(#{self.id} p={self.process} {self.f} key={self.key!r} "
                f"in={self.invoke!r} -> {self.type} {self.result!r}"
                + (f" err={self.error!r}" if self.error else "") + ")")

    def describe(self):
        return {"process": self.process, "f": self.f, "key": self.key, "invoke": self.invoke,
                "type": self.type, "result": self.result, "error": self.error,
                "invoke_index": self.call, "complete_index": self.ret}


def load(path):
    """Reads a history.jsonl file into a list of dicts."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def dump(history, path):
    with open(path, "w") as f:
        for op in history:
            f.write(json.dumps(op, sort_keys=True) + "\n")


def index(history):
    """Gives every record an 'index' (its position) unless it has one."""
    out = []
    for i, rec in enumerate(history):
        if "index" not in rec:
            rec = dict(rec, index=i)
        out.append(rec)
    return out


def pair(history):
    """Pairs invocations with completions. Returns the list of Op in
    invocation order. Nemesis records are skipped. Raises HistoryError on a
    completion without an invocation or a second invocation while one is
    outstanding for the same process."""
    history = index(history)
    ops = []
    outstanding = {}
    for rec in history:
        if rec.get("process") == "nemesis":
            continue
        t = rec.get("type")
        if t not in TYPES:
            raise HistoryError(f"record {rec.get('index')}: unknown type {t!r}")
        p = rec.get("process")
        if t == "invoke":
            if p in outstanding:
                raise HistoryError(f"record {rec['index']}: process {p!r} invoked while "
                                   f"op at record {outstanding[p].call} is outstanding")
            op = Op(len(ops), rec)
            ops.append(op)
            outstanding[p] = op
        else:
            op = outstanding.pop(p, None)
            if op is None:
                raise HistoryError(f"record {rec['index']}: {t} for process {p!r} without invoke")
            if rec.get("f") is not None and rec.get("f") != op.f:
                raise HistoryError(f"record {rec['index']}: completion f={rec.get('f')!r} "
                                   f"does not match invoke f={op.f!r}")
            op.type = t
            op.result = rec.get("value")
            op.error = rec.get("error")
            op.raw_complete = rec
            if t != "info":
                op.ret = rec["index"]
    # Operations still outstanding at the end are indeterminate.
    return ops


class Recorder:
    """Thread-safe history recorder used by the runner's workers."""

    def __init__(self, clock):
        import threading
        self._lock = threading.Lock()
        self._clock = clock
        self.records = []

    def record(self, **rec):
        with self._lock:
            rec["index"] = len(self.records)
            rec["time"] = self._clock()
            self.records.append(rec)
            return rec
