"""Conditional uploads are compare-and-set, also when they race: of many PUTs
with If-None-Match: * to one new name, exactly one creates the file and every
other gets 412, and the file holds the winner's bytes (found by jepsen/run's
register workload: a create-only PUT that lost the race for the name
committed over the winner)."""
import threading

import pytest

from drive import Drive, built

pytestmark = pytest.mark.skipif(not built(), reason="cairn-node, cairn-gateway or cairn-blocks not built")


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    with Drive(tmp_path_factory.mktemp("cond")) as d:
        yield d


def test_create_only_puts_race_for_a_name(drive):
    ann = drive.new_user("ann")
    for round_ in range(5):
        name = f"/v1/files/race-{round_}"
        answers = {}

        def put(i):
            r = ann.put(name, data=f"writer {i}".encode(), headers={"If-None-Match": "*"})
            answers[i] = r.status_code

        threads = [threading.Thread(target=put, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [i for i, status in answers.items() if status == 201]
        assert len(winners) == 1, answers
        assert sorted(s for s in answers.values() if s != 201) == [412] * 5, answers
        r = ann.get(name)
        assert r.status_code == 200 and r.content == f"writer {winners[0]}".encode()
        assert r.headers["Cairn-Version"] == "1"
    # On a name that exists: 412 at once, nothing changes.
    r = ann.put("/v1/files/race-0", data=b"late", headers={"If-None-Match": "*"})
    assert r.status_code == 412
    assert ann.get("/v1/files/race-0").headers["Cairn-Version"] == "1"
