"""Checker for the journal workload: per namespace, every watcher sees a
gap-free, ordered stream of change events that matches the writes that
committed, each exactly once.

Operations (the key is the namespace):

    commit  invoke value: {"id": W, ...}  a change (create, modify, delete,
                          move...) tagged with an id unique in the history
                          (the workloads put it in the file name or content)
            ok value:     null or {"seq": S}  (the journal position, if the
                          API returns it)
    watch   invoke value: {"watcher": NAME, "cursor": C, "final": bool}
                          one long poll from cursor C (C = the seq of the
                          last event already seen, 0 from the beginning);
                          "final": true for the drain after every fault
                          healed. NAME groups a watcher's polls across
                          process numbers (default: the process).
            fail with "error": "expired": the cursor is older than the
                          retained journal (HTTP 410); the watcher resyncs
                          from a listing and no longer has to see everything.
            ok value:     {"events": [{"seq": S, "id": W}, ...], "cursor": C2}

Anomalies:
  gap             the watcher's stream skips a seq
  duplicate       a seq, or a write id, delivered twice to the same watcher
  reorder         a seq lower than one already delivered
  phantom         an event for an id no commit carried, or whose commit failed
  divergent       two watchers see different ids at the same seq
  missing         a watcher that read from the beginning to a final drain
                  did not see an acknowledged commit
  real-time-order commit A was acknowledged before commit B began, yet
                  A's seq > B's
  seq-mismatch    a commit's acknowledged seq is not where watchers saw it
"""
from .history import HistoryError, pair


def check(history):
    ops = pair(history)
    commits = {}  # id -> op
    watches = []
    for op in ops:
        if op.f == "commit":
            if not isinstance(op.invoke, dict) or "id" not in op.invoke:
                raise HistoryError(f"{op!r}: commit invoke value must carry an id")
            wid = op.invoke["id"]
            if wid in commits:
                raise HistoryError(f"commit id {wid!r} used twice")
            commits[wid] = op
        elif op.f == "watch":
            watches.append(op)
        else:
            raise HistoryError(f"{op!r}: unknown f {op.f!r} for the journal workload")

    anomalies = []

    def bad(kind, **more):
        anomalies.append(dict({"type": kind}, **more))

    at_seq = {}  # (ns, seq) -> id
    seq_of = {}  # (ns, id) -> seq
    streams = {}  # (watcher, ns) -> {"last", "ids", "from_start", "final"}
    for op in watches:
        inv = op.invoke or {}
        watcher = inv.get("watcher", op.process)
        ns = op.key
        st = streams.get((watcher, ns))
        if st is None:
            st = streams[(watcher, ns)] = {"last": None, "ids": set(), "from_start": None, "final": False}
        if op.type == "fail" and op.error == "expired":
            # The cursor fell out of the retained journal (410): the client
            # resyncs by listing, so this watcher cannot vouch for completeness.
            st["resynced"] = True
            continue
        if op.type != "ok":
            continue
        cursor = inv.get("cursor", 0) or 0
        if st["from_start"] is None:
            st["from_start"] = cursor == 0
        if st["last"] is not None and cursor != st["last"]:
            # A client resuming from another cursor than its last: judge
            # continuity from the cursor it asked for.
            pass
        last = cursor
        res = op.result or {}
        for ev in res.get("events", []):
            seq, wid = ev.get("seq"), ev.get("id")
            where = {"watcher": watcher, "ns": ns, "seq": seq, "id": wid, "op": op.describe()}
            if not isinstance(seq, int):
                raise HistoryError(f"{op!r}: event without an integer seq: {ev!r}")
            if seq == last + 1:
                pass
            elif seq > last + 1:
                bad("gap", expected=last + 1, **where)
            elif seq == last:
                bad("duplicate", **where)
            else:
                bad("reorder", after=last, **where)
            last = max(last, seq)
            if wid in st["ids"]:
                bad("duplicate", **where)
            st["ids"].add(wid)
            c = commits.get(wid)
            if c is None or c.key != ns or c.type == "fail":
                bad("phantom", commit=c.describe() if c else None, **where)
            prev = at_seq.setdefault((ns, seq), wid)
            if prev != wid:
                bad("divergent", other_id=prev, **where)
            seq_of.setdefault((ns, wid), seq)
        st["last"] = last
        if inv.get("final"):
            st["final"] = True

    acked = [c for c in commits.values() if c.type == "ok"]
    for (watcher, ns), st in streams.items():
        if not (st["final"] and st["from_start"]) or st.get("resynced"):
            continue
        for c in acked:
            if c.key == ns and c.invoke["id"] not in st["ids"]:
                bad("missing", watcher=watcher, ns=ns, commit=c.describe())

    for c in acked:
        want = (c.result or {}).get("seq") if isinstance(c.result, dict) else None
        seen = seq_of.get((c.key, c.invoke["id"]))
        if want is not None and seen is not None and want != seen:
            bad("seq-mismatch", acked_seq=want, seen_seq=seen, commit=c.describe())

    by_ns = {}
    for c in acked:
        s = seq_of.get((c.key, c.invoke["id"]))
        if s is not None:
            by_ns.setdefault(c.key, []).append((c, s))
    for ns, items in by_ns.items():
        # A before B in real time (A.ret < B.call) must mean seq(A) < seq(B).
        # Walk down from the highest seq keeping the earliest completion seen:
        # if it completed before the current commit began, the order is wrong.
        items.sort(key=lambda cs: cs[1], reverse=True)
        first = None
        for b, sb in items:
            if first is not None and first[0].ret < b.call:
                a, sa = first
                bad("real-time-order", first=a.describe(), second=b.describe(), first_seq=sa, second_seq=sb)
            if first is None or b.ret < first[0].ret:
                first = (b, sb)

    return {"checker": "journal", "valid": not anomalies,
            "commits": {t: sum(1 for c in commits.values() if c.type == t) for t in ("ok", "fail", "info")},
            "watchers": len(streams),
            "complete_watchers": sum(1 for s in streams.values()
                                     if s["final"] and s["from_start"] and not s.get("resynced")),
            "anomaly_types": sorted({a["type"] for a in anomalies}),
            "anomalies": anomalies[:50], "anomaly_count": len(anomalies)}
