"""jepsen/run and its engine (jepsen/runner.py): it refuses to fake a run
without the cluster binaries, and its engine, driven against an in-memory
store (a test double, never used by jepsen/run), records histories, nemesis
timelines, verdicts and summaries, passing a correct store and failing one
that serves stale reads."""
import json
import os
import subprocess
import sys

SOURCE = os.environ.get("CAIRN_SOURCE", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
sys.path.insert(0, SOURCE)

from jepsen.runner import Nemesis, Runner  # noqa: E402
from jepsen.workloads import MemoryStore, WORKLOADS, UploadsWorkload  # noqa: E402

RUN = os.path.join(SOURCE, "jepsen", "run")


def test_run_without_binaries_says_so(tmp_path):
    bin_dir = tmp_path / "build" / "bin"
    bin_dir.mkdir(parents=True)
    p = subprocess.run([RUN, "--time", "1", "--bin", str(bin_dir), "--results", str(tmp_path / "r")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert "not available" in p.stderr and "build/bin/cairn-node" in p.stderr
    assert not (tmp_path / "r").exists()


def test_run_rejects_unknown_names():
    p = subprocess.run([RUN, "--nemesis", "kill,meteor"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "meteor" in p.stderr
    p = subprocess.run([RUN, "--workload", "bank"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "bank" in p.stderr


def engine_run(tmp_path, stale):
    store = MemoryStore(stale_reads=stale)
    events = []
    nemesis = Nemesis({"noop": (lambda rng: events.append("start") or {"x": 1},
                                lambda: events.append("stop"))},
                      heal_all=lambda: events.append("heal_all"))
    results = str(tmp_path / ("stale" if stale else "good"))
    workloads = [WORKLOADS["register"](), UploadsWorkload(sizes=(0, 1, 4096, 70_000)), WORKLOADS["journal"]()]
    r = Runner(workloads, lambda wl, w: store.client(),
               nemesis, results, seed=5, duration=1.5, workers_per_workload=4, op_delay=0.004,
               nemesis_interval=(0.1, 0.3), log=lambda m: None)
    r.run()
    code, summary, text = r.write_and_check({"seed": 5})
    return code, summary, text, results, events


def test_engine_passes_a_correct_store(tmp_path):
    code, summary, text, results, events = engine_run(tmp_path, stale=False)
    assert code == 0, text
    assert summary["valid"] is True
    for f in ("history.jsonl", "nemesis.jsonl", "summary.json", "summary.txt", "run.json",
              "verdicts/register.json", "verdicts/uploads.json", "verdicts/journal.json"):
        assert os.path.exists(os.path.join(results, f)), f
    assert "start" in events and events[-1] == "heal_all"
    assert all(summary["workloads"][w]["ops"] > 10 for w in ("register", "uploads", "journal"))
    assert "overall    true" in text
    with open(os.path.join(results, "verdicts", "journal.json")) as f:
        j = json.load(f)
    assert j["commits"]["ok"] > 10 and j["complete_watchers"] == 4
    # The recorded history re-checks the same way from the command line.
    p = subprocess.run([RUN, "--check", results], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr


def test_a_crashed_process_fails_the_run(tmp_path):
    # Verdicts from outside the history (jepsen/run's "processes" check)
    # count like a workload's: a crash makes the run invalid.
    from jepsen.runner import check_results
    crashed = {"checker": "processes", "valid": False, "anomaly_types": ["crashed"],
               "anomalies": [{"type": "crashed", "process": "cairn-node", "host": "n3", "exit_status": -11}]}
    code, summary, text = check_results(str(tmp_path), [], [], {}, [], {"processes": crashed})
    assert code == 1 and summary["valid"] is False
    assert summary["workloads"]["processes"]["anomalies"] == ["crashed"]
    assert "processes  false" in text
    with open(os.path.join(str(tmp_path), "verdicts", "processes.json")) as f:
        assert json.load(f)["anomalies"][0]["host"] == "n3"
    healthy = {"checker": "processes", "valid": True, "anomaly_types": [], "anomalies": []}
    code, summary, _ = check_results(str(tmp_path), [], [], {}, [], {"processes": healthy})
    assert code == 0 and summary["valid"] is True


def test_engine_catches_stale_reads(tmp_path):
    code, summary, text, results, _ = engine_run(tmp_path, stale=True)
    assert code == 1, text
    assert summary["workloads"]["register"]["valid"] is False
    with open(os.path.join(results, "summary.json")) as f:
        assert json.load(f)["valid"] is False
    p = subprocess.run([RUN, "--check", results], capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    assert "register   false" in p.stdout
