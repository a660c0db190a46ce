import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Procs  # noqa: E402


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


@pytest.fixture
def procs(tmp_path, request):
    """Starts processes for one test and always stops them by PID, printing
    their logs' tails if the test failed."""
    p = Procs(str(tmp_path))
    yield p
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    p.stop_all()
    if failed:
        print(p.dump_logs())
