"""Checker for the uploads workload: no acknowledged upload is lost, nothing
is corrupt.

Operations (see history.py for the record format):

    upload      invoke value: {"sha256": H, "size": N}  (of the bytes sent;
                              every upload goes to a key of its own)
                ok / fail / info
    read        a read during the run (optional)
                ok value: null (absent) or {"sha256": H, "size": N}
                fail with "error": "corrupt" when the gateway reported an
                integrity error
    final-read  the same, after every fault was healed; each uploaded key is
                read once at the end
    final-list  ok value: [key, ...] every key the cluster lists at the end

Rules:
  * an acknowledged (ok) upload must be final-read ok with the same sha256
    and size ("lost" if absent, "unreadable" if the read failed, "corrupt"
    if the bytes differ);
  * a failed or indeterminate upload must be absent, or present complete and
    intact ("corrupt" otherwise);
  * a read during the run never returns bytes that no upload to that key
    sent ("corrupt"), nor "absent" after an acknowledged upload to the key
    completed before the read began ("lost-after-ack");
  * a final listing names no key that was never uploaded ("phantom"), and
    names every acknowledged upload ("lost-from-listing");
  * any read reporting an integrity error is an anomaly ("corrupt").
"""
from .history import HistoryError, pair


def check(history):
    ops = pair(history)
    uploads = {}
    reads, finals, lists = [], {}, []
    for op in ops:
        if op.f == "upload":
            if op.key in uploads:
                raise HistoryError(f"key {op.key!r} uploaded twice (ops #{uploads[op.key].id}, #{op.id}); "
                                   "the uploads workload gives every upload its own key")
            if not isinstance(op.invoke, dict) or "sha256" not in op.invoke:
                raise HistoryError(f"{op!r}: upload invoke value must be {{sha256, size}}")
            uploads[op.key] = op
        elif op.f == "read":
            reads.append(op)
        elif op.f == "final-read":
            finals[op.key] = op
        elif op.f == "final-list":
            lists.append(op)
        else:
            raise HistoryError(f"{op!r}: unknown f {op.f!r} for the uploads workload")

    anomalies = []

    def bad(kind, op, **more):
        anomalies.append(dict({"type": kind, "op": op.describe()}, **more))

    def same(want, got):
        return (isinstance(got, dict) and got.get("sha256") == want.get("sha256")
                and ("size" not in want or got.get("size") == want.get("size")))

    counts = {"ok": 0, "fail": 0, "info": 0}
    for key, up in uploads.items():
        counts[up.type] += 1
        fr = finals.get(key)
        if up.type == "ok":
            if fr is None:
                bad("not-read-at-end", up)
            elif fr.type != "ok":
                bad("corrupt" if fr.error == "corrupt" else "unreadable", up, final_read=fr.describe())
            elif fr.result is None:
                bad("lost", up, final_read=fr.describe())
            elif not same(up.invoke, fr.result):
                bad("corrupt", up, final_read=fr.describe())
        else:
            if fr is None:
                continue  # nothing to say about a failed upload nobody read
            if fr.type == "fail" and fr.error == "corrupt":
                bad("corrupt", up, final_read=fr.describe())
            elif fr.type == "ok" and fr.result is not None and not same(up.invoke, fr.result):
                bad("corrupt", up, final_read=fr.describe())

    for key, fr in finals.items():
        if key not in uploads:
            if fr.type == "ok" and fr.result is not None:
                bad("phantom", fr)

    for rd in reads:
        up = uploads.get(rd.key)
        if rd.type == "fail" and rd.error == "corrupt":
            bad("corrupt", rd)
            continue
        if rd.type != "ok":
            continue
        if rd.result is None:
            # Absent: fine unless an acknowledged upload to it finished before this read began.
            if up is not None and up.type == "ok" and up.ret < rd.call:
                bad("lost-after-ack", rd, upload=up.describe())
        elif up is None:
            bad("phantom", rd)
        elif not same(up.invoke, rd.result):
            bad("corrupt", rd, upload=up.describe())

    for ls in lists:
        if ls.type != "ok":
            continue
        listed = set(ls.result or [])
        for key in listed:
            if key not in uploads:
                bad("phantom", ls, key=key)
        for key, up in uploads.items():
            if up.type == "ok" and up.ret < ls.call and key not in listed:
                bad("lost-from-listing", ls, key=key)

    return {"checker": "uploads", "valid": not anomalies, "uploads": counts,
            "final_reads": len(finals), "reads": len(reads),
            "anomaly_types": sorted({a["type"] for a in anomalies}),
            "anomalies": anomalies[:50], "anomaly_count": len(anomalies)}
