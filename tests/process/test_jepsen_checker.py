"""The Jepsen checkers (jepsen/checker/) against histories whose verdict is
known: linearizable and not, the "unknown" bound, memoization on histories
too large to search without it, and the uploads and journal checkers."""
import json
import os
import random
import sys
import time

import pytest

SOURCE = os.environ.get("CAIRN_SOURCE", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
sys.path.insert(0, SOURCE)

from jepsen.checker import HistoryError, journal, linear, uploads  # noqa: E402


class H:
    """A small history builder: h.invoke(p, f, key, value); h.ok(p, value)..."""

    def __init__(self):
        self.records = []

    def _add(self, **r):
        r["index"] = len(self.records)
        self.records.append(r)
        return self

    def invoke(self, p, f, key="k", value=None):
        self._last_f = getattr(self, "_last_f", {})
        self._last_f[p] = f
        return self._add(process=p, type="invoke", f=f, key=key, value=value)

    def ok(self, p, value=None):
        return self._add(process=p, type="ok", f=self._last_f[p], value=value)

    def fail(self, p, error=None, value=None):
        return self._add(process=p, type="fail", f=self._last_f[p], value=value, error=error)

    def info(self, p, error="timeout"):
        return self._add(process=p, type="info", f=self._last_f[p], error=error)

    # Shorthands for complete, non-overlapping operations.
    def read(self, p, version, data, key="k"):
        value = None if version is None else {"version": version, "data": data}
        return self.invoke(p, "read", key).ok(p, value)

    def write(self, p, data, version=None, key="k"):
        return self.invoke(p, "write", key, {"data": data}).ok(p, {"version": version} if version else None)

    def cas(self, p, base, data, version=None, key="k"):
        return self.invoke(p, "cas", key, {"base": base, "data": data}).ok(
            p, {"version": version} if version else None)


def verdict(h, **kw):
    return linear.check(h.records, **kw)["valid"]


# ---- linearizable histories

def test_empty_and_sequential_histories_are_linearizable():
    assert verdict(H()) is True
    h = H().read(0, None, None).write(0, "a", "v1").read(1, "v1", "a").cas(1, "v1", "b", "v2").read(0, "v2", "b")
    assert verdict(h) is True


def test_concurrent_writes_either_order():
    # p0 and p1 write concurrently; a read after both sees either one.
    for seen in ("a", "b"):
        h = H().invoke(0, "write", value={"data": "a"}).invoke(1, "write", value={"data": "b"})
        h.ok(0, {"version": "va"}).ok(1, {"version": "vb"})
        h.read(2, "v" + seen, seen)
        assert verdict(h) is True, seen


def test_read_concurrent_with_write_may_see_old_or_new():
    for version, data in ((None, None), ("v1", "a")):
        h = H().invoke(0, "write", value={"data": "a"}).invoke(1, "read")
        h.ok(1, None if version is None else {"version": version, "data": data}).ok(0, {"version": "v1"})
        assert verdict(h) is True


def test_create_only_if_absent():
    h = H().cas(0, None, "a", "v1").invoke(1, "cas", value={"base": None, "data": "b"}).fail(1, "precondition")
    assert verdict(h) is True


def test_precondition_refusal_is_an_observation():
    # A refused CAS while the version was still its base is not linearizable:
    # nobody moved the file past v1, yet the commit was refused.
    h = H().write(0, "a", "v1").invoke(1, "cas", value={"base": "v1", "data": "b"}).fail(1, "precondition")
    h.read(0, "v1", "a")
    assert verdict(h) is False


def test_definite_failure_did_not_happen():
    h = H().write(0, "a", "v1").invoke(1, "write", value={"data": "b"}).fail(1, "unavailable").read(0, "v1", "a")
    assert verdict(h) is True


def test_indeterminate_write_may_have_happened_or_not():
    # p1's write timed out. Later reads may see it ...
    base = H().write(0, "a", "v1").invoke(1, "write", value={"data": "b"}).info(1)
    h = H()
    h.records = list(base.records)
    h._last_f = dict(base._last_f)
    h.read(0, "v2", "b")
    assert verdict(h) is True
    # ... or not ...
    h2 = H()
    h2.records = list(base.records)
    h2._last_f = dict(base._last_f)
    h2.read(0, "v1", "a")
    assert verdict(h2) is True
    # ... or take effect late, but not flip back and forth.
    h3 = H()
    h3.records = list(base.records)
    h3._last_f = dict(base._last_f)
    h3.read(0, "v1", "a").read(0, "v2", "b").read(0, "v1", "a")
    assert verdict(h3) is False


def test_indeterminate_cas_applies_only_against_its_base():
    h = H().write(0, "a", "v1").write(0, "c", "v3")
    h.invoke(1, "cas", value={"base": "v1", "data": "b"}).info(1)
    h.read(0, "v2", "b")  # base v1 was gone before the cas began
    assert verdict(h) is False


def test_process_with_outstanding_info_is_retired():
    # Operations still open at the end are indeterminate.
    h = H().write(0, "a", "v1").invoke(1, "write", value={"data": "b"}).read(0, "v2", "b")
    assert verdict(h) is True


# ---- non-linearizable histories

def test_stale_read():
    h = H().write(0, "a", "v1").write(0, "b", "v2").read(1, "v1", "a")
    r = linear.check(h.records)
    assert r["valid"] is False
    ce = r["failures"]["k"]["counterexample"]
    assert ce["could_not_linearize"]["f"] == "read"


def test_lost_update():
    h = H().write(0, "a", "v1").cas(0, "v1", "b", "v2").read(1, "v1", "a")
    assert verdict(h) is False


def test_double_cas_success_from_same_base():
    h = H().write(0, "a", "v1")
    h.invoke(1, "cas", value={"base": "v1", "data": "b"}).invoke(2, "cas", value={"base": "v1", "data": "c"})
    h.ok(1, {"version": "v2"}).ok(2, {"version": "v3"})
    assert verdict(h) is False


def test_read_of_value_never_written():
    h = H().write(0, "a", "v1").read(1, "v9", "zzz")
    r = linear.check(h.records)
    assert r["valid"] is False
    assert r["failures"]["k"]["reason"] == "read-of-unwritten-value"


def test_read_with_wrong_version_for_value():
    h = H().write(0, "a", "v1").read(1, "v1", "a").read(1, "v7", "a")
    assert verdict(h) is False


def test_read_absent_after_create():
    h = H().cas(0, None, "a", "v1").read(1, None, None)
    assert verdict(h) is False


def test_keys_are_independent():
    h = H().write(0, "a", "v1", key="x").write(0, "b", "w1", key="y").read(1, "v1", "a", key="x")
    h.read(1, None, None, key="z")
    r = linear.check(h.records)
    assert r["valid"] is True and r["keys_checked"] == 3
    h.read(1, "w1", "b", key="x")  # y's value read through x
    r = linear.check(h.records)
    assert r["valid"] is False and list(r["failures"]) == ["x"]


def test_malformed_histories_are_rejected():
    with pytest.raises(HistoryError):
        linear.check([{"process": 0, "type": "ok", "f": "read", "key": "k"}])
    with pytest.raises(HistoryError):
        linear.check(H().write(0, "a").write(1, "a").records)  # data must be unique


# ---- bounds and memoization

def concurrent_writes(n, then_read):
    """n processes write concurrently (all overlap), then a read."""
    h = H()
    for p in range(n):
        h.invoke(p, "write", value={"data": f"d{p}"})
    for p in range(n):
        h.ok(p, None)
    if then_read is not None:
        h.read(n, "v", then_read)
    return h


def test_state_bound_reports_unknown_not_a_guess():
    h = concurrent_writes(12, "nobody-wrote-this-but-the-read-is-ignored")
    # Make the read legal-looking so only search can decide: read of d0 with an unreported version.
    h = concurrent_writes(12, None)
    for p in range(12):
        h.read(12, f"v{p}", f"d{p}")  # every write observed after all finished: impossible
    r = linear.check(h.records, max_states=200)
    assert r["valid"] == "unknown"
    assert "bound" in r["failures"]["k"]["reason"]
    r = linear.check(h.records, time_limit=0.0, max_states=10**9)
    assert r["valid"] == "unknown"


def test_memoization_makes_wide_concurrency_tractable():
    # 12 overlapping writes, then reads in an impossible order: the search
    # must prove that no order of the 12 works. Without memoization that is
    # ~12! orders; with it, at most 12 * 2^12 configurations.
    n = 12
    h = concurrent_writes(n, None)
    h.read(n, "v0", "d0").read(n, "v1", "d1").read(n, "v0", "d0")
    t0 = time.monotonic()
    r = linear.check(h.records, max_states=2_000_000)
    took = time.monotonic() - t0
    assert r["valid"] is False
    assert r["failures"]["k"]["states"] <= n * 2 ** n
    assert took < 30
    r = linear.check(h.records, memo=False, max_states=200_000)
    assert r["valid"] == "unknown"


def test_many_unobserved_indeterminate_writes_are_cheap():
    # Crashes leave many writes pending forever; those nobody read cannot
    # matter and must not blow up the search.
    h = H().write(0, "a", "v1")
    for p in range(1, 41):
        h.invoke(p, "write", value={"data": f"lost{p}"}).info(p)
    for i in range(200):
        h.write(0, f"b{i}", f"w{i}").read(0, f"w{i}", f"b{i}")
    r = linear.check(h.records, max_states=100_000)
    assert r["valid"] is True, r
    # One of them read: still decided (it is kept, the others dropped).
    h.read(0, "vx", "lost7")
    assert verdict(h) is True
    h.read(0, f"w199", "b199")  # going back after lost7 was seen: stale
    assert verdict(h) is False


def test_unobserved_indeterminate_write_can_explain_a_refusal():
    # Nobody read "x", but the version moved past v1 for the refused cas:
    # the timed-out write explains it, so this is linearizable.
    h = H().write(0, "a", "v1").invoke(1, "write", value={"data": "x"}).info(1)
    h.invoke(2, "cas", value={"base": "v1", "data": "b"}).fail(2, "precondition")
    assert verdict(h) is True
    # Without the timed-out write, the same refusal is an anomaly.
    h = H().write(0, "a", "v1").invoke(2, "cas", value={"base": "v1", "data": "b"}).fail(2, "precondition")
    assert verdict(h) is False


def test_unseen_indeterminate_writes_decide_a_bounded_search():
    # One key of a real run (seed 110, kill+partition+pause+latency, 3 min):
    # 102 operations, 25 of them writes left indeterminate by timeouts, and
    # precondition refusals. Every "happened or not" choice is open, and the
    # full search hits its bound; taking the writes no read saw as never
    # applied finds a linearization, which is enough for "valid".
    path = os.path.join(os.path.dirname(__file__), "data", "register-indeterminate.jsonl")
    with open(path) as f:
        records = [json.loads(line) for line in f]
    full = linear._search(linear.pair(records), None, 20_000, None, True, drop_unseen=False)
    assert full["valid"] == "unknown" and "state bound" in full["reason"]
    r = linear.check(records, max_states=20_000)
    assert r["valid"] is True, r["failures"]
    # It never turns a violation into a pass: a read of the first version
    # after the last write (stale) is still caught.
    first = next(x for x in records if x["type"] == "ok" and x["f"] in ("write", "cas")
                 and isinstance(x.get("value"), dict) and x["value"].get("version"))
    first_data = next(x for x in records if x["type"] == "invoke" and x["process"] == first["process"]
                      and x["index"] < first["index"] and x["f"] in ("write", "cas"))
    t = max(x["time"] for x in records) + 1
    stale = [{"f": "read", "index": 10**6, "key": first["key"], "process": 999, "time": t,
              "type": "invoke", "value": None, "workload": "register"},
             {"f": "read", "index": 10**6 + 1, "key": first["key"], "process": 999, "time": t + 1,
              "type": "ok", "value": {"version": first["value"]["version"],
                                      "data": first_data["value"]["data"]},
              "workload": "register"}]
    assert linear.check(records + stale, max_states=20_000)["valid"] in (False, "unknown")


def random_history(rng, n_ops, n_proc, keys, lie=False):
    """A linearizable history of a simulated register store (each op takes
    effect at a random point between invoke and completion), optionally
    with one read corrupted into a stale one."""
    state = {k: None for k in keys}
    version_counter = [0]
    written = {k: [] for k in keys}
    h = H()
    pending = {}  # p -> (op, effect applied?, result)
    seq = 0
    ops_done = 0
    stale_done = False
    while ops_done < n_ops or pending:
        p = rng.randrange(n_proc)
        if p not in pending:
            if ops_done >= n_ops:
                continue
            key = rng.choice(keys)
            f = rng.choice(["read", "read", "write", "cas"])
            if f == "read":
                val = None
            elif f == "write":
                seq += 1
                val = {"data": f"d{seq}"}
            else:
                seq += 1
                cur = state[key]
                val = {"base": cur[0] if cur and rng.random() < 0.7 else (None if rng.random() < 0.5 else "v0"),
                       "data": f"d{seq}"}
            h.invoke(p, f, key, val)
            pending[p] = [f, key, val, False, None]
            ops_done += 1
            continue
        f, key, val, applied, result = pending[p]
        if not applied:
            if f == "read":
                cur = state[key]
                result = ("ok", None if cur is None else {"version": cur[0], "data": cur[1]})
                if lie and not stale_done and len(written[key]) >= 2 and rng.random() < 0.3:
                    old = written[key][-2]
                    result = ("ok", {"version": old[0], "data": old[1]})
                    stale_done = True
            elif f == "write" or (state[key][0] if state[key] else None) == val["base"]:
                version_counter[0] += 1
                state[key] = (f"v{version_counter[0]}", val["data"])
                written[key].append(state[key])
                result = ("ok", {"version": state[key][0]})
            else:
                result = ("fail", "precondition")
            pending[p][3:] = [True, result]
            continue
        del pending[p]
        if result[0] == "ok":
            h.ok(p, result[1])
        else:
            h.fail(p, result[1])
    return h, stale_done


def test_large_random_histories_check_quickly():
    rng = random.Random(7)
    h, _ = random_history(rng, 4000, 8, ["a", "b", "c"])
    t0 = time.monotonic()
    r = linear.check(h.records)
    assert r["valid"] is True, r["failures"]
    assert r["ops"] > 3000
    assert time.monotonic() - t0 < 30


def test_large_random_history_with_high_concurrency():
    rng = random.Random(11)
    h, _ = random_history(rng, 3000, 16, ["a"])
    r = linear.check(h.records)
    assert r["valid"] is True, r["failures"]
    assert r["ops"] > 2500


def test_injected_stale_read_on_quiet_register_is_caught():
    rng = random.Random(3)
    h, _ = random_history(rng, 2000, 6, ["a"])
    # After everything, write twice more and read the older value: stale.
    h.write(0, "final-1", "vf1", key="a").write(0, "final-2", "vf2", key="a").read(1, "vf1", "final-1", key="a")
    assert verdict(h) is False


# ---- uploads

def up_history(final):
    h = H()
    h.invoke(0, "upload", "f1", {"sha256": "aa", "size": 3}).ok(0)
    h.invoke(1, "upload", "f2", {"sha256": "bb", "size": 4}).fail(1, "unavailable")
    h.invoke(2, "upload", "f3", {"sha256": "cc", "size": 5}).info(2)
    for key, res in final.items():
        h.invoke(9, "final-read", key)
        if isinstance(res, tuple):
            h.fail(9, res[1])
        else:
            h.ok(9, res)
    return h


def test_uploads_all_good():
    h = up_history({"f1": {"sha256": "aa", "size": 3}, "f2": None, "f3": {"sha256": "cc", "size": 5}})
    r = uploads.check(h.records)
    assert r["valid"] is True, r
    h = up_history({"f1": {"sha256": "aa", "size": 3}, "f2": {"sha256": "bb", "size": 4}, "f3": None})
    assert uploads.check(h.records)["valid"] is True


@pytest.mark.parametrize("final,kind", [
    ({"f1": None}, "lost"),
    ({"f1": {"sha256": "xx", "size": 3}}, "corrupt"),
    ({"f1": ("fail", "corrupt")}, "corrupt"),
    ({"f1": ("fail", "unavailable")}, "unreadable"),
    ({"f1": {"sha256": "aa", "size": 3}, "f3": {"sha256": "cc", "size": 2}}, "corrupt"),  # truncated
    ({"f1": {"sha256": "aa", "size": 3}, "f9": {"sha256": "zz", "size": 1}}, "phantom"),
    ({}, "not-read-at-end"),
])
def test_uploads_anomalies(final, kind):
    r = uploads.check(up_history(final).records)
    assert r["valid"] is False
    assert kind in r["anomaly_types"], r


def test_uploads_read_during_run():
    h = up_history({"f1": {"sha256": "aa", "size": 3}})
    h.invoke(5, "read", "f1").ok(5, None)  # after f1's upload was acknowledged
    r = uploads.check(h.records)
    assert r["anomaly_types"] == ["lost-after-ack"]
    h = up_history({"f1": {"sha256": "aa", "size": 3}})
    h.invoke(5, "final-list", None).ok(5, ["f3"])
    assert set(uploads.check(h.records)["anomaly_types"]) == {"lost-from-listing"}


# ---- journal

def journal_history(events_by_watcher, final=True):
    h = H()
    h.invoke(0, "commit", "ns1", {"id": "w1"}).ok(0, {"seq": 1})
    h.invoke(0, "commit", "ns1", {"id": "w2"}).ok(0, {"seq": 2})
    h.invoke(1, "commit", "ns1", {"id": "w3"}).fail(1, "unavailable")
    h.invoke(1, "commit", "ns1", {"id": "w4"}).info(1)
    h.invoke(2, "commit", "ns1", {"id": "w5"}).ok(2)
    p = 10
    for watcher, polls in events_by_watcher.items():
        cursor = 0
        for i, evs in enumerate(polls):
            h.invoke(p, "watch", "ns1", {"watcher": watcher, "cursor": cursor,
                                          "final": final and i == len(polls) - 1})
            h.ok(p, {"events": [{"seq": s, "id": w} for s, w in evs],
                     "cursor": evs[-1][0] if evs else cursor})
            if evs:
                cursor = evs[-1][0]
        p += 1
    return h


def test_journal_good():
    h = journal_history({"a": [[(1, "w1"), (2, "w2")], [(3, "w4"), (4, "w5")]],
                         "b": [[(1, "w1")], [(2, "w2"), (3, "w4"), (4, "w5")], []]})
    r = journal.check(h.records)
    assert r["valid"] is True, r
    assert r["complete_watchers"] == 2


@pytest.mark.parametrize("streams,kind", [
    ({"a": [[(1, "w1"), (3, "w5")]]}, "gap"),
    ({"a": [[(1, "w1"), (2, "w2")], [(2, "w2"), (3, "w5")]]}, "duplicate"),
    ({"a": [[(1, "w1"), (2, "w2"), (3, "w3")]]}, "phantom"),  # w3's commit failed
    ({"a": [[(1, "w1"), (2, "w2"), (3, "w9")]]}, "phantom"),
    ({"a": [[(1, "w1"), (2, "w2")]]}, "missing"),  # w5 acknowledged, never delivered
    ({"a": [[(1, "w1"), (2, "w2"), (3, "w5")]], "b": [[(1, "w1"), (2, "w2"), (3, "w4"), (4, "w5")]]}, "divergent"),
    ({"a": [[(1, "w2"), (2, "w1"), (3, "w5")]]}, "real-time-order"),
])
def test_journal_anomalies(streams, kind):
    r = journal.check(journal_history(streams).records)
    assert r["valid"] is False
    assert kind in r["anomaly_types"], r


# ---- cross-check against brute force on small random histories

def brute_force(records):
    """Linearizable? by trying every subset of indeterminate ops and every
    order consistent with real time. Same op semantics as linear.py."""
    from jepsen.checker.history import pair
    ops = pair(records)
    observed = {op.result["data"] for op in ops if op.f == "read" and op.type == "ok" and op.result}
    INF = float("inf")
    items = []
    for op in ops:
        if op.type == "fail" and not (op.f == "cas" and op.error == "precondition"):
            continue
        if op.f == "read" and op.type != "ok":
            continue
        if op.f == "read":
            obs = None if op.result is None else (op.result["version"], op.result["data"])
            items.append(("read", obs, None, op.call, op.ret, False))
            continue
        d = op.invoke["data"]
        known = op.type == "ok" or d in observed
        new = (("V" + d) if known else ("unknown", op.id), d)
        base = op.invoke.get("base") if op.f == "cas" else None
        kind = "refused" if op.type == "fail" else op.f
        items.append((kind, base, new, op.call, INF if op.type == "info" else op.ret, op.type == "info"))

    def legal(state, it):
        kind, arg, new = it[0], it[1], it[2]
        ver = None if state is None else state[0]
        if kind == "read":
            return state == arg, state
        if kind == "write":
            return True, new
        if kind == "cas":
            return (ver == arg), new
        return ver != arg, state

    def search(remaining, state):
        if not remaining:
            return True
        for i, x in enumerate(remaining):
            if any(y[4] < x[3] for y in remaining if y is not x):
                continue
            ok, nxt = legal(state, x)
            if ok and search(remaining[:i] + remaining[i + 1:], nxt):
                return True
        return False

    optional = [it for it in items if it[5]]
    required = [it for it in items if not it[5]]
    for mask in range(1 << len(optional)):
        chosen = required + [it for j, it in enumerate(optional) if mask >> j & 1]
        if search(chosen, None):
            return True
    return False


def random_small_history(rng):
    h = H()
    procs = list(range(3))
    open_ops = {}
    datas = []
    n = rng.randint(3, 9)
    started = 0
    next_p = 3
    while started < n or open_ops:
        p = rng.choice(procs)
        if p in open_ops:
            f, val = open_ops.pop(p)
            r = rng.random()
            if f == "read":
                choices = [None] + datas
                pick = rng.choice(choices)
                if r < 0.1:
                    h.info(p)
                else:
                    h.ok(p, None if pick is None else {"version": "V" + pick, "data": pick})
            else:
                if r < 0.25:
                    h.info(p)
                elif r < 0.4:
                    h.fail(p, "precondition" if f == "cas" else "unavailable")
                else:
                    h.ok(p, {"version": "V" + val["data"]})
            if h.records[-1]["type"] == "info":
                procs[procs.index(p)] = next_p
                next_p += 1
            continue
        if started >= n:
            continue
        started += 1
        f = rng.choice(["read", "write", "cas"])
        if f == "read":
            val = None
        else:
            d = f"d{started}"
            datas.append(d)
            val = {"data": d}
            if f == "cas":
                val["base"] = rng.choice([None] + ["V" + x for x in datas[:-1]])
        open_ops[p] = (f, val)
        h.invoke(p, f, "k", val)
    return h


def test_checker_agrees_with_brute_force():
    rng = random.Random(2024)
    seen = {True: 0, False: 0}
    for _ in range(2000):
        h = random_small_history(rng)
        want = brute_force(h.records)
        got = linear.check(h.records)["valid"]
        assert got == want, (want, got, h.records)
        seen[want] += 1
    assert seen[True] > 200 and seen[False] > 200, seen


def test_journal_expired_cursor_resyncs():
    h = journal_history({"a": [[(1, "w1")]]}, final=False)
    h.invoke(20, "watch", "ns1", {"watcher": "a", "cursor": 1}).fail(20, "expired")
    h.invoke(20, "watch", "ns1", {"watcher": "a", "cursor": 3, "final": True}).ok(
        20, {"events": [{"seq": 4, "id": "w5"}], "cursor": 4})
    r = journal.check(h.records)
    assert r["valid"] is True, r
    assert r["complete_watchers"] == 0
