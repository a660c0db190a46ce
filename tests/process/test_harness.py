"""The harness itself: processes start on free ports, are waited for by
condition, and are always stopped by PID — also ones that ignore SIGTERM."""
import os
import time

import pytest

from harness import free_port, pid_alive, port_open, wait_until

PY = "/usr/bin/python3"


def test_start_wait_stop(procs, tmp_path):
    port = free_port()
    p = procs.start([PY, "-m", "http.server", "--bind", "127.0.0.1", str(port)], name="http",
                    cwd=str(tmp_path))
    wait_until(lambda: port_open(port), "http.server listening")
    assert p.alive()
    p.stop()
    assert not pid_alive(p.pid)
    assert not port_open(port)


def test_stubborn_process_is_killed(procs):
    p = procs.start([PY, "-c", "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
                     "print('ready', flush=True); time.sleep(600)"], name="stubborn")
    wait_until(lambda: "ready" in p.log(), "stubborn ready")
    t0 = time.monotonic()
    p.stop(grace=1)
    assert not pid_alive(p.pid)
    assert p.popen.returncode == -9
    assert time.monotonic() - t0 < 30


def test_wait_until_times_out_with_reason():
    with pytest.raises(TimeoutError, match="never true"):
        wait_until(lambda: False, "never true", timeout=0.3)


def test_fixture_stops_leftovers(procs):
    # Started and left running: the fixture's teardown stops it. The next
    # assertion checks that the process is really ours and alive now.
    p = procs.start([PY, "-c", "import time; time.sleep(600)"], name="leftover")
    assert pid_alive(p.pid)
    assert os.getpgid(p.pid) != 0
