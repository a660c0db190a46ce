"""The test engine behind jepsen/run: worker threads drive each workload's
clients and record the history, a nemesis thread applies and heals faults on
a seeded schedule, then every fault is healed, the final reads run, each
workload's checker judges its part of the history, and the results folder
gets:

    run.json          the arguments, seed, start time
    history.jsonl     every client operation (invoke + completion), with
                      "workload" naming whose it is
    nemesis.jsonl     the nemesis timeline (start/stop of each fault)
    verdicts/W.json   each checker's full verdict
    summary.json      valid per workload and overall
    summary.txt       the same as a short table

Exit status of run_and_check(): 0 valid, 1 anomalies found, 3 unknown
(a checker hit its bound; not a pass).
"""
import json
import os
import random
import threading
import time

from .checker import history as hist
from .workloads import NotAvailable


class Nemesis:
    """Faults by name: faults[name] = (start(rng) -> description,
    stop() -> description). heal_all() undoes everything."""

    def __init__(self, faults=None, heal_all=None):
        self.faults = faults or {}
        self._heal_all = heal_all

    def heal_all(self):
        if self._heal_all:
            self._heal_all()


def _exit_code(valid):
    return 0 if valid is True else (1 if valid is False else 3)


class Runner:
    def __init__(self, workloads, client_factory, nemesis, results, seed=0, duration=60.0,
                 workers_per_workload=4, nemesis_interval=(2.0, 6.0), op_delay=0.0, log=print,
                 thread_context=None, final_limit=600.0):
        """workloads: list of Workload; client_factory(workload, worker) ->
        Client; nemesis: Nemesis (its enabled faults are used)."""
        self.workloads = workloads
        self.client_factory = client_factory
        self.nemesis = nemesis
        self.results = results
        self.seed = seed
        self.duration = duration
        self.workers = workers_per_workload
        self.nemesis_interval = nemesis_interval
        self.op_delay = op_delay
        self.log = log
        # e.g. lambda: hosts.netns(cluster.hub): client threads run inside it
        self.thread_context = thread_context
        self.final_limit = final_limit  # seconds for every final read together
        t0 = time.monotonic_ns()
        self.recorder = hist.Recorder(lambda: time.monotonic_ns() - t0)
        self.timeline = []
        self._next_process = 0
        self._plock = threading.Lock()
        self.errors = []

    def _process(self):
        with self._plock:
            self._next_process += 1
            return self._next_process

    def _do(self, wl, client, process, op, state):
        self.recorder.record(process=process, type="invoke", workload=wl.name, **op)
        try:
            type_, value, error = client.invoke(op)
        except NotAvailable:
            raise
        except Exception as e:  # a client bug or an unexpected transport error: indeterminate
            type_, value, error = "info", None, f"{type(e).__name__}: {e}"
        rec = {"process": process, "type": type_, "workload": wl.name, "f": op["f"], "key": op["key"],
               "value": value}
        if error is not None:
            rec["error"] = error
        self.recorder.record(**rec)
        wl.observe(state, op, type_, value)
        return type_

    def _worker(self, wl, worker, deadline):
        if self.thread_context is not None:
            with self.thread_context():
                return self._worker_body(wl, worker, deadline)
        return self._worker_body(wl, worker, deadline)

    def _worker_body(self, wl, worker, deadline):
        rng = random.Random(f"{self.seed}/{wl.name}/{worker}")
        client = self.client_factory(wl, worker)
        process = self._process()
        state = {}
        try:
            while time.monotonic() < deadline:
                op = wl.next_op(worker, state, rng)
                if self._do(wl, client, process, op, state) == "info":
                    process = self._process()  # the old op may still happen: retire the process
                if self.op_delay:
                    time.sleep(rng.uniform(0, self.op_delay))
        except NotAvailable as e:
            self.errors.append(str(e))

    def _nemesis(self, stop):
        rng = random.Random(f"{self.seed}/nemesis")
        names = sorted(self.nemesis.faults)
        while names and not stop.wait(rng.uniform(*self.nemesis_interval)):
            name = rng.choice(names)
            start, heal = self.nemesis.faults[name]
            self._event("start", name, start(rng))
            if stop.wait(rng.uniform(*self.nemesis_interval)):
                self._event("stop", name, heal())
                break
            self._event("stop", name, heal())

    def _event(self, what, name, desc):
        ev = {"time": self.recorder._clock(), "event": what, "fault": name, "value": desc}
        self.timeline.append(ev)
        self.recorder.record(process="nemesis", type="info", f=f"{what}-{name}", key=None, value=desc)
        self.log(f"nemesis: {what} {name} {desc if desc is not None else ''}")

    def run(self):
        os.makedirs(self.results, exist_ok=True)
        deadline = time.monotonic() + self.duration
        stop = threading.Event()
        nem = threading.Thread(target=self._nemesis, args=(stop,), name="nemesis", daemon=True)
        nem.start()
        threads = [threading.Thread(target=self._worker, args=(wl, w, deadline), daemon=True,
                                    name=f"{wl.name}-{w}")
                   for wl in self.workloads for w in range(self.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stop.set()
        nem.join()
        self.nemesis.heal_all()
        self._event("stop", "all", "healed before the final reads")
        if self.errors:
            raise NotAvailable(self.errors[0])
        final = threading.Thread(target=self._final, name="final")
        final.start()
        final.join()
        if self.errors:
            raise NotAvailable(self.errors[0])
        return self.recorder.records

    def _final(self):
        deadline = time.monotonic() + self.final_limit

        def body():
            for wl in self.workloads:
                client = self.client_factory(wl, 0)
                process = self._process()
                for op in wl.final_ops():
                    if time.monotonic() > deadline:
                        # A cluster that cannot answer after every fault was
                        # healed is a finding, not a reason to wait forever.
                        raise NotAvailable(f"the final reads did not finish within "
                                           f"{self.final_limit:.0f} s of the heal")
                    if self._do(wl, client, process, op, {}) == "info":
                        process = self._process()
        try:
            if self.thread_context is not None:
                with self.thread_context():
                    body()
            else:
                body()
        except NotAvailable as e:
            self.errors.append(str(e))

    def write_and_check(self, run_info, extra=None):
        return check_results(self.results, self.recorder.records, self.timeline, run_info,
                             [wl.name for wl in self.workloads], extra)


def check_results(results, records, timeline, run_info, workloads, extra=None):
    """Writes the history and timeline, runs the checkers, writes verdicts and
    the summary; returns (exit code, summary). extra: verdicts reached outside
    the history (name -> verdict, e.g. "processes": nodes that crashed)."""
    from .checker import CHECKERS
    os.makedirs(os.path.join(results, "verdicts"), exist_ok=True)
    hist.dump(records, os.path.join(results, "history.jsonl"))
    with open(os.path.join(results, "nemesis.jsonl"), "w") as f:
        for ev in timeline:
            f.write(json.dumps(ev, sort_keys=True) + "\n")
    with open(os.path.join(results, "run.json"), "w") as f:
        json.dump(run_info, f, indent=2, sort_keys=True)
    verdicts = {}
    for name in workloads:
        part = [r for r in records if r.get("workload") == name]
        t0 = time.monotonic()
        try:
            v = CHECKERS[name](part)
        except hist.HistoryError as e:
            v = {"checker": name, "valid": "unknown", "error": f"malformed history: {e}"}
        v["check_seconds"] = round(time.monotonic() - t0, 3)
        verdicts[name] = v
    verdicts.update(extra or {})
    for name, v in verdicts.items():
        with open(os.path.join(results, "verdicts", f"{name}.json"), "w") as f:
            json.dump(v, f, indent=2, sort_keys=True, default=repr)
    vals = [v["valid"] for v in verdicts.values()]
    overall = False if False in vals else ("unknown" if "unknown" in vals else True)
    summary = {"valid": overall, "workloads": {}, "nemesis_events": len(timeline), "results": results}
    for name, v in verdicts.items():
        ops = sum(1 for r in records if r.get("workload") == name and r.get("type") == "invoke")
        summary["workloads"][name] = {
            "valid": v["valid"], "ops": ops,
            "anomalies": v.get("anomaly_types") or ([v.get("failures") and "not-linearizable"]
                                                    if v["valid"] is False else []),
            "note": v.get("error") or "",
        }
        if name == "register" and v["valid"] is False:
            summary["workloads"][name]["anomalies"] = sorted(
                {f.get("reason", "not linearizable") for f in v.get("failures", {}).values()
                 if f["valid"] is False})
    with open(os.path.join(results, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
    lines = [f"{'workload':<10} {'valid':<8} {'ops':>7}  anomalies"]
    for name, s in summary["workloads"].items():
        lines.append(f"{name:<10} {str(s['valid']).lower():<8} {s['ops']:>7}  "
                     f"{', '.join(s['anomalies']) or '-'}{('  (' + s['note'] + ')') if s['note'] else ''}")
    lines.append(f"{'overall':<10} {str(overall).lower():<8}")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(results, "summary.txt"), "w") as f:
        f.write(text)
    return _exit_code(overall), summary, text
