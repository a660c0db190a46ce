"""The trash through cairn-gateway on three real nodes (tests/process/drive.py):
GET /v1/trash lists what was deleted (the tops only, with id, trashed_ms and
the path each had while its parent lives), pages with "next", restores one,
purges one, empties the rest (a folder and an item trashed from inside it
too), another user sees none of it, and bad ids, cursors and limits are 4xx
with the JSON error body."""
import pytest
import requests

from drive import Drive, built, error_code

pytestmark = pytest.mark.skipif(not built(), reason="cairn-gateway not built")


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    with Drive(tmp_path_factory.mktemp("drive")) as d:
        yield d


@pytest.fixture(scope="module")
def alice(drive):
    return drive.new_user("alice")


@pytest.fixture(scope="module")
def bob(drive):
    return drive.new_user("bob")


def trash(client, **params):
    r = client.get("/v1/trash", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def trash_all(client, limit=None):
    """Every entry, following "next" page by page."""
    entries, after = [], None
    while True:
        params = {}
        if limit is not None:
            params["limit"] = limit
        if after is not None:
            params["after"] = after
        page = trash(client, **params)
        entries += page["entries"]
        if page["next"] is None:
            return entries
        assert page["entries"], page
        after = page["next"]


def by_name(entries):
    return {e["name"]: e for e in entries}


def test_list_restore_purge_and_empty(alice, bob):
    assert trash(alice) == {"entries": [], "next": None}
    assert alice.post("/v1/folders/Docs").status_code == 201
    assert alice.post("/v1/folders/Docs/Old").status_code == 201
    alice.upload("Docs/a.txt", b"alpha\n")
    alice.upload("Docs/b.txt", b"bravo!\n")
    alice.upload("Docs/Old/c.txt", b"charlie\n")
    alice.upload("top.txt", b"top\n")
    ids = {p: alice.get("/v1/meta/" + p).json()["id"]
           for p in ("Docs/a.txt", "Docs/b.txt", "Docs/Old", "Docs/Old/c.txt", "top.txt")}
    # c.txt first, then its folder: both are tops of their own trashed subtree.
    for p in ("Docs/a.txt", "Docs/b.txt", "Docs/Old/c.txt", "Docs/Old", "top.txt"):
        assert alice.delete("/v1/files/" + p).status_code == 204, p

    entries = trash_all(alice)
    assert len(entries) == 5, entries
    items = by_name(entries)
    assert set(items) == {"a.txt", "b.txt", "c.txt", "Old", "top.txt"}
    assert items["a.txt"]["path"] == "Docs/a.txt"
    assert items["a.txt"]["id"] == ids["Docs/a.txt"]
    assert items["a.txt"]["size"] == 6 and items["a.txt"]["kind"] == "file"
    assert items["b.txt"]["size"] == 7
    assert items["Old"]["path"] == "Docs/Old" and items["Old"]["kind"] == "folder"
    assert items["top.txt"]["path"] == "top.txt"
    # Its parent is in the trash too: no path to go back to.
    assert items["c.txt"]["path"] == ""
    for e in entries:
        assert e["trashed"] is True and e["trashed_ms"] > 0, e
        assert e["trashed_ms"] >= e["modified_ms"] - 60_000, e
    # A stable order: pages of one and of two give the same list.
    assert [e["id"] for e in trash_all(alice, limit=1)] == [e["id"] for e in entries]
    assert [e["id"] for e in trash_all(alice, limit=2)] == [e["id"] for e in entries]

    # Another user sees nothing of it and can touch none of it.
    assert trash(bob) == {"entries": [], "next": None}
    r = bob.post(f"/v1/trash/{ids['Docs/a.txt']}/restore")
    assert r.status_code == 404 and error_code(r) == "not_found", r.text
    assert bob.delete(f"/v1/trash/{ids['Docs/a.txt']}").status_code == 404
    r = bob.delete("/v1/trash")
    assert r.status_code == 200 and r.json() == {"purged": 0}, r.text
    assert len(trash_all(alice)) == 5

    # Restore one: back where it was, out of the list.
    r = alice.post(f"/v1/trash/{ids['Docs/a.txt']}/restore")
    assert r.status_code == 200, r.text
    assert r.json()["id"] == ids["Docs/a.txt"] and r.json()["trashed"] is False
    assert alice.download("Docs/a.txt") == b"alpha\n"
    # Purge one by id.
    assert alice.delete(f"/v1/trash/{ids['top.txt']}").status_code == 204
    assert set(by_name(trash_all(alice))) == {"b.txt", "c.txt", "Old"}

    # Empty the rest: the folder Old goes with c.txt inside it, whichever comes first.
    r = alice.delete("/v1/trash")
    assert r.status_code == 200, r.text
    assert 2 <= r.json()["purged"] <= 3, r.text
    assert trash(alice) == {"entries": [], "next": None}
    for p in ("Docs/b.txt", "Docs/Old", "Docs/Old/c.txt", "top.txt"):
        assert alice.post(f"/v1/trash/{ids[p]}/restore").status_code == 404, p
    assert alice.get("/v1/meta/Docs/b.txt").status_code == 404
    assert [e["name"] for e in alice.get("/v1/list/Docs").json()["entries"]] == ["a.txt"]
    # Emptying an empty trash is fine.
    r = alice.delete("/v1/trash")
    assert r.status_code == 200 and r.json() == {"purged": 0}, r.text


def test_a_restored_name_taken_and_a_gone_parent(alice):
    assert alice.post("/v1/folders/P").status_code == 201
    alice.upload("P/x.txt", b"one\n")
    first = alice.get("/v1/meta/P/x.txt").json()["id"]
    assert alice.delete("/v1/files/P/x.txt").status_code == 204
    alice.upload("P/x.txt", b"two\n")
    r = alice.post(f"/v1/trash/{first}/restore")
    assert r.status_code == 409, r.text
    assert by_name(trash_all(alice))["x.txt"]["path"] == "P/x.txt"
    assert alice.delete("/v1/files/P").status_code == 204
    items = by_name(trash_all(alice))
    assert items["x.txt"]["path"] == "" and items["P"]["path"] == "P"
    r = alice.delete("/v1/trash")
    assert r.status_code == 200, r.text
    assert trash(alice)["entries"] == []


def test_bad_ids_cursors_and_limits(alice):
    for bad in ("abc", "0", "-1", "1.5", "18446744073709551616", "1" * 30):
        r = alice.post(f"/v1/trash/{bad}/restore")
        assert r.status_code == 400 and error_code(r) == "invalid_argument", (bad, r.text)
        assert alice.delete(f"/v1/trash/{bad}").status_code == 400, bad
    # Ids that are not in the trash: never were, or live.
    assert alice.post("/v1/trash/12345/restore").status_code == 404
    assert alice.delete("/v1/trash/12345").status_code == 404
    alice.upload("live.txt", b"live\n")
    live = alice.get("/v1/meta/live.txt").json()["id"]
    assert alice.post(f"/v1/trash/{live}/restore").status_code in (400, 404)
    assert alice.delete(f"/v1/trash/{live}").status_code in (400, 404)
    assert alice.download("live.txt") == b"live\n"
    for after in ("x", "12", "1-", "-1", "1-2-3", "0-5", "a-b", "9" * 60):
        r = alice.get("/v1/trash", params={"after": after})
        assert r.status_code == 400 and error_code(r) == "invalid_argument", (after, r.text)
    for limit in ("0", "1001", "-3", "many"):
        r = alice.get("/v1/trash", params={"limit": limit})
        assert r.status_code == 400, (limit, r.text)
    # A cursor past everything: an empty page.
    assert trash(alice, after=f"{2**64 - 1}-{2**64 - 1}") == {"entries": [], "next": None}
    # Routes that do not exist.
    assert alice.post("/v1/trash").status_code == 404
    assert alice.get(f"/v1/trash/{live}").status_code == 404
    assert alice.post(f"/v1/trash/{live}/nope").status_code == 404
    # Without a token.
    assert requests.get(alice.drive.url + "/v1/trash", timeout=30).status_code == 401
    assert requests.delete(alice.drive.url + "/v1/trash", timeout=30).status_code == 401
