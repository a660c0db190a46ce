"""Linearizability checker for the register workload: one versioned register
per key, with reads, unconditional writes and conditional writes (compare-
and-set against a base version). The search is Wing & Gong's, with Lowe's
memoization of (set of linearized operations, model state), as in Porcupine
and Knossos' "linear" checker; the history is split per key first (each key
is an independent register, so the whole is linearizable iff every key is).

Operations (see history.py for the record format):

    read   invoke value: null
           ok value:     null (the key does not exist) or
                         {"version": V, "data": D}
    write  invoke value: {"data": D}             (unconditional)
           ok value:     {"version": V} or null  (the new version, if known)
    cas    invoke value: {"base": B, "data": D}  (commit D if the current
                         version is B; B null means "create: only if absent")
           ok value:     {"version": V} or null
           fail with "error": "precondition": refused because the current
                         version was not B. This is an observation too: it
                         must linearize at a point where the version != B.

Every write and cas must carry data unique within its key (the workloads
write "p<process>-<n>"). That is what lets the checker learn the version a
write produced from any read that saw its data, and tell a read of a value
never written from a stale one.

Indeterminate (info) writes and cas may take effect at any point after their
invocation, or never; indeterminate reads are dropped (they constrain
nothing). Definite failures (fail) other than a precondition refusal are
dropped: they did not happen.

The search is bounded: by the number of distinct (linearized set, state)
configurations it memoizes and by wall time. Past either bound the key's
verdict is "unknown", never a guess.
"""
import time

from .history import HistoryError, pair


class _Unknown:
    """The version of a write whose version nobody reported. Equal to no
    version a client could name."""

    __slots__ = ("op",)

    def __init__(self, op):
        self.op = op

    def __eq__(self, other):
        return isinstance(other, _Unknown) and other.op == self.op

    def __hash__(self):
        return hash(("unknown-version", self.op))

    def __repr__(self):
        return f"<version of op #{self.op}>"


def _version(state):
    return None if state is None else state[0]


def _hashable(v):
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    return v


class _Entry:
    __slots__ = ("op", "call", "match", "prev", "next")

    def __init__(self, op, call):
        self.op = op
        self.call = call
        self.match = None
        self.prev = None
        self.next = None


class _KOp:
    """An operation of one key, reduced to what the model needs."""

    __slots__ = ("bit", "op", "kind", "arg", "new", "pending")

    def __init__(self, bit, op, kind, arg=None, new=None, pending=False):
        self.bit = bit
        self.op = op          # the history.Op
        self.kind = kind      # read | write | cas | refused
        self.arg = arg        # read: the observed state; cas/refused: the base version
        self.new = new        # write/cas: the state it produces
        self.pending = pending  # info: may never take effect


def _step(state, k):
    """Returns (legal, next_state)."""
    kind = k.kind
    if kind == "read":
        return state == k.arg, state
    if kind == "write":
        return True, k.new
    if kind == "cas":
        if _version(state) == k.arg:
            return True, k.new
        return False, state
    if kind == "refused":
        return _version(state) != k.arg, state
    raise AssertionError(kind)


def _observed(result):
    if result is None:
        return None
    if not isinstance(result, dict) or "version" not in result:
        raise HistoryError(f"read result {result!r} is neither null nor {{version, data}}")
    return (_hashable(result["version"]), _hashable(result.get("data")))


def _prepare(ops, drop_unseen=False):
    """Turns one key's history.Op list into _KOp list plus early anomalies.
    drop_unseen: drop every indeterminate write no read saw, refusals or not
    (the "they never happened" choice; see check_key)."""
    writes = {}  # data -> op (ok or info write/cas)
    learned = {}  # data -> version seen by reads
    for op in ops:
        if op.f in ("write", "cas"):
            if not isinstance(op.invoke, dict) or "data" not in op.invoke:
                raise HistoryError(f"{op!r}: write/cas invoke value must be {{data[, base]}}")
            if op.type == "fail":
                continue
            data = _hashable(op.invoke["data"])
            if data in writes:
                raise HistoryError(f"data {data!r} written twice on key {op.key!r} "
                                   f"(ops #{writes[data].id} and #{op.id}); workloads must write unique data")
            writes[data] = op
            if op.type == "ok" and isinstance(op.result, dict) and op.result.get("version") is not None:
                learned.setdefault(data, _hashable(op.result["version"]))
        elif op.f == "read" and op.type == "ok":
            obs = _observed(op.result)
            if obs is not None:
                learned.setdefault(obs[1], obs[0])
        elif op.f not in ("read", "write", "cas"):
            raise HistoryError(f"{op!r}: unknown f {op.f!r} for the register model")

    # An indeterminate write whose data no read ever saw can be dropped
    # (assumed never to have happened) when no precondition refusal could
    # need it to explain a moved version: if it did happen, only an
    # unconditional write can follow it before any other observation, and
    # that write leaves the same state either way. Under crash faults this
    # removes most pending operations, the main cause of search blow-up.
    seen = {obs[1] for op in ops if op.f == "read" and op.type == "ok"
            for obs in [_observed(op.result)] if obs is not None}
    refusals = any(op.f == "cas" and op.type == "fail" and op.error == "precondition" for op in ops)
    anomalies = []
    kops = []
    for op in ops:
        if (op.type == "info" and op.f in ("write", "cas") and (drop_unseen or not refusals)
                and _hashable(op.invoke["data"]) not in seen):
            continue
        if op.type == "fail" and not (op.f == "cas" and op.error == "precondition"):
            continue
        if op.f == "read":
            if op.type != "ok":
                continue
            obs = _observed(op.result)
            if obs is not None and obs[1] not in writes:
                anomalies.append({"type": "read-of-unwritten-value", "op": op.describe()})
            kops.append(_KOp(len(kops), op, "read", arg=obs))
            continue
        base = _hashable(op.invoke.get("base")) if op.f == "cas" else None
        if op.type == "fail":  # a precondition refusal
            kops.append(_KOp(len(kops), op, "refused", arg=base))
            continue
        data = _hashable(op.invoke["data"])
        version = learned.get(data, _Unknown(op.id))
        kind = "cas" if op.f == "cas" else "write"
        kops.append(_KOp(len(kops), op, kind, arg=base, new=(version, data), pending=(op.type == "info")))
    return kops, anomalies


def _build_list(kops):
    """The doubly linked list of call and return entries, in history order.
    Pending operations have a call and no return."""
    events = []
    for k in kops:
        call = _Entry(k, True)
        events.append((k.op.call, call))
        if not k.pending:
            ret = _Entry(k, False)
            call.match = ret
            ret.match = call
            events.append((k.op.ret, ret))
    events.sort(key=lambda e: e[0])
    head = _Entry(None, False)
    prev = head
    for _, e in events:
        prev.next = e
        e.prev = prev
        prev = e
    return head


def _lift(e):
    e.prev.next = e.next
    if e.next is not None:
        e.next.prev = e.prev
    m = e.match
    if m is not None:
        m.prev.next = m.next
        if m.next is not None:
            m.next.prev = m.prev


def _unlift(e):
    m = e.match
    if m is not None:
        m.prev.next = m
        if m.next is not None:
            m.next.prev = m
    e.prev.next = e
    if e.next is not None:
        e.next.prev = e


def check_key(ops, initial=None, max_states=1_000_000, deadline=None, memo=True):
    """Checks one key's operations. Returns a dict with "valid" (True, False
    or "unknown"), "states" (configurations explored) and, when not valid, a
    "reason" and a counterexample.

    A first, cheap search tries the history with every indeterminate write
    that no read saw removed. Each of those may have happened or not, so a
    linearization without them is a linearization of the history: if one
    exists the key is valid. If none does, nothing is concluded (one of them
    may be what explains a precondition refusal) and the full search, over
    every choice, decides (or reaches its bound: "unknown")."""
    pruned = _search(ops, initial, max_states, deadline, memo, drop_unseen=True)
    if pruned["valid"] is True:
        return pruned
    return _search(ops, initial, max_states, deadline, memo, drop_unseen=False)


def _search(ops, initial, max_states, deadline, memo, drop_unseen):
    kops, anomalies = _prepare(ops, drop_unseen)
    if anomalies:
        return {"valid": False, "ops": len(kops), "states": 0, "reason": anomalies[0]["type"],
                "anomalies": anomalies}
    head = _build_list(kops)
    state = initial
    linearized = 0
    stack = []
    cache = set()
    steps = 0
    best = (-1, None, None, None)  # (depth, linearized ops, op not placed, state)
    entry = head.next
    while True:
        if entry is None:
            return {"valid": True, "ops": len(kops), "states": len(cache) if memo else steps}
        steps += 1
        if (steps & 1023) == 0:
            if deadline is not None and time.monotonic() > deadline:
                return {"valid": "unknown", "ops": len(kops), "states": len(cache),
                        "reason": "time bound reached"}
        if entry.call:
            k = entry.op
            legal, nxt = _step(state, k)
            if legal:
                lin = linearized | (1 << k.bit)
                fresh = True
                if memo:
                    key = (lin, nxt)
                    if key in cache:
                        fresh = False
                    else:
                        cache.add(key)
                        if len(cache) > max_states:
                            return {"valid": "unknown", "ops": len(kops), "states": len(cache),
                                    "reason": f"state bound reached ({max_states} configurations)"}
                elif steps > max_states:
                    return {"valid": "unknown", "ops": len(kops), "states": steps,
                            "reason": f"state bound reached ({max_states} steps)"}
                if fresh:
                    stack.append((entry, state))
                    state = nxt
                    linearized = lin
                    _lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            # A return: its operation had to be linearized by now and was not.
            if len(stack) > best[0]:
                best = (len(stack), [e.op.op for e, _ in stack], entry.op.op, state)
            if not stack:
                break
            call, state = stack.pop()
            linearized &= ~(1 << call.op.bit)
            _unlift(call)
            entry = call.next
    depth, placed, stuck, at_state = best
    return {"valid": False, "ops": len(kops), "states": len(cache) if memo else steps,
            "reason": "not linearizable",
            "counterexample": {
                "longest_linearized_prefix": [o.describe() for o in (placed or [])][-10:],
                "prefix_length": depth,
                "state_after_prefix": _show_state(at_state),
                "could_not_linearize": stuck.describe() if stuck is not None else None,
            }}


def _show_state(state):
    if state is None:
        return None
    v, d = state
    return {"version": repr(v) if isinstance(v, _Unknown) else v, "data": d}


def check(history, time_limit=60.0, max_states=1_000_000, memo=True, initial=None):
    """Checks a whole register history, key by key. Returns
    {"valid": True|False|"unknown", "keys": {key: verdict}, "failures": [...]}."""
    ops = pair(history)
    by_key = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    deadline = time.monotonic() + time_limit if time_limit is not None else None
    keys = {}
    for key in sorted(by_key, key=repr):
        keys[key] = check_key(by_key[key], initial=initial, max_states=max_states,
                              deadline=deadline, memo=memo)
    verdicts = [v["valid"] for v in keys.values()]
    if False in verdicts:
        valid = False
    elif "unknown" in verdicts:
        valid = "unknown"
    else:
        valid = True
    return {"checker": "linearizable-register", "valid": valid, "keys_checked": len(keys),
            "ops": sum(v["ops"] for v in keys.values()),
            "failures": {str(k): v for k, v in keys.items() if v["valid"] is not True},
            "keys": {str(k): {"valid": v["valid"], "ops": v["ops"], "states": v["states"]}
                     for k, v in keys.items()}}
