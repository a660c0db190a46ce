"""tus 1.0 resumable uploads through cairn-gateway on three real nodes: a
PATCH cut short keeps the chunks it stored, HEAD says where to resume, and
another gateway finishes the upload (the session lives in the metadata)."""
import base64
import os
import socket

import pytest
import requests

from drive import Drive, built
from harness import wait_until

pytestmark = pytest.mark.skipif(not built(), reason="cairn-gateway not built")

MiB = 1 << 20
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    with Drive(tmp_path_factory.mktemp("drive")) as d:
        yield d


@pytest.fixture(scope="module")
def erin(drive):
    return drive.new_user("erin")


def b64(text):
    return base64.b64encode(text.encode()).decode()


def create(client, path, length):
    r = client.post("/v1/uploads", headers={**TUS, "Upload-Length": str(length),
                                            "Upload-Metadata": f"path {b64(path)}"})
    assert r.status_code == 201, r.text
    assert r.headers["Location"].startswith("/v1/uploads/")
    return r.headers["Location"]


def offset(client, location, url=None):
    r = requests.head((url or client.drive.url) + location,
                      headers={**TUS, "Authorization": "Bearer " + client.token}, timeout=30)
    assert r.status_code == 200, r.status_code
    return int(r.headers["Upload-Offset"])


def test_options(drive):
    r = requests.options(drive.url + "/v1/uploads", timeout=30)
    assert r.status_code == 204
    assert r.headers["Tus-Version"] == "1.0.0"
    assert "creation" in r.headers["Tus-Extension"]


def test_resume_after_interrupted_patch_on_another_gateway(drive, erin):
    data = os.urandom(12 * MiB + 4321)
    location = create(erin, "resumed.bin", len(data))
    assert offset(erin, location) == 0
    # A PATCH that stops after 9 MiB: the client goes away.
    port = int(drive.url.rsplit(":", 1)[1])
    head = (f"PATCH {location} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {erin.token}\r\n"
            f"Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
            f"Content-Type: application/offset+octet-stream\r\nContent-Length: {len(data)}\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head.encode() + data[:9 * MiB])
    # The chunks that were stored get recorded: the offset settles above 0
    # (at least one whole chunk of at most 4 MiB was in the 9 MiB) and below 9 MiB.
    settled = {}

    def stable():
        now = offset(erin, location)
        same = settled.get("last") == now
        settled["last"] = now
        return same and now > 0

    wait_until(stable, "offset settled", timeout=60, interval=0.5)
    done = settled["last"]
    assert 0 < done <= 9 * MiB
    # Another gateway continues: wrong offset first (409), then the rest.
    gw, url = drive.extra_gateway()
    h = {**TUS, "Authorization": "Bearer " + erin.token,
         "Content-Type": "application/offset+octet-stream"}
    r = requests.patch(url + location, data=b"x", headers={**h, "Upload-Offset": "1"}, timeout=30)
    assert r.status_code == 409
    r = requests.patch(url + location, data=data[done:], headers={**h, "Upload-Offset": str(done)},
                       timeout=120)
    assert r.status_code == 204, r.text
    assert int(r.headers["Upload-Offset"]) == len(data)
    assert int(r.headers["Cairn-Version"]) >= 1
    assert offset(erin, location, url) == len(data)
    assert erin.download("resumed.bin") == data
    assert gw.stop() == 0


def test_patch_in_pieces_and_bad_requests(erin):
    data = os.urandom(3 * MiB)
    location = create(erin, "pieces.bin", len(data))
    h = {**TUS, "Content-Type": "application/offset+octet-stream"}
    at = 0
    for piece in (data[:MiB], data[MiB:2 * MiB + 7], data[2 * MiB + 7:]):
        r = erin.request("PATCH", location, data=piece, headers={**h, "Upload-Offset": str(at)})
        assert r.status_code == 204, r.text
        at = int(r.headers["Upload-Offset"])
        assert at == data.index(piece) + len(piece)
    assert erin.download("pieces.bin") == data
    # Bad requests.
    loc2 = create(erin, "bad.bin", 10)
    r = erin.request("PATCH", loc2, data=b"x", headers={**TUS, "Upload-Offset": "0"})
    assert r.status_code == 415
    r = erin.request("PATCH", loc2, data=b"x" * 11, headers={**h, "Upload-Offset": "0"})
    assert r.status_code == 413
    r = erin.request("PATCH", loc2, data=b"x", headers={"Upload-Offset": "0",
                                                        "Content-Type": h["Content-Type"]})
    assert r.status_code == 412
    r = erin.request("PATCH", "/v1/uploads/zz", data=b"x", headers={**h, "Upload-Offset": "0"})
    assert r.status_code == 404
    r = erin.post("/v1/uploads", headers={**TUS, "Upload-Length": str(11 << 30),
                                          "Upload-Metadata": f"path {b64('huge')}"})
    assert r.status_code == 413
    r = erin.post("/v1/uploads", headers={**TUS, "Upload-Length": "5",
                                          "Upload-Metadata": f"path {b64('a/../b')}"})
    assert r.status_code == 400
    r = erin.post("/v1/uploads", headers={**TUS, "Upload-Length": "5"})
    assert r.status_code == 400
    # Termination.
    assert erin.delete(loc2, headers=TUS).status_code == 204
    r = erin.request("HEAD", loc2, headers=TUS)
    assert r.status_code == 404


def test_empty_upload_completes_at_creation(erin):
    r = erin.post("/v1/uploads", headers={**TUS, "Upload-Length": "0",
                                          "Upload-Metadata": f"path {b64('empty.bin')}"})
    assert r.status_code == 201, r.text
    assert erin.download("empty.bin") == b""


def test_another_user_cannot_see_a_session(drive, erin):
    location = create(erin, "mine.bin", 100)
    frank = drive.new_user("frank")
    r = frank.request("HEAD", location, headers=TUS)
    assert r.status_code == 404
    r = frank.request("PATCH", location, data=b"x",
                      headers={**TUS, "Upload-Offset": "0",
                               "Content-Type": "application/offset+octet-stream"})
    assert r.status_code == 404


def test_a_based_upload_is_a_compare_and_set(erin):
    """Upload-Metadata "base" makes the completion a compare-and-set: a file
    that moved on while the upload ran is 409 at the last byte, and keeps the
    other writer's version."""
    h = {**TUS, "Content-Type": "application/offset+octet-stream"}
    assert erin.put("/v1/files/cas.bin", data=b"one").status_code in (200, 201)  # version 1

    def create_based(path, base, length):
        r = erin.post("/v1/uploads", headers={**TUS, "Upload-Length": str(length),
                                              "Upload-Metadata": f"path {b64(path)},base {b64(str(base))}"})
        assert r.status_code == 201, r.text
        return r.headers["Location"]

    # Begun against version 1; someone writes version 2 meanwhile.
    loc = create_based("cas.bin", 1, 5)
    assert erin.put("/v1/files/cas.bin", data=b"two").status_code == 200
    r = erin.request("PATCH", loc, data=b"three", headers={**h, "Upload-Offset": "0"})
    assert r.status_code == 409, r.text
    assert erin.download("cas.bin") == b"two"
    # Against the current version: it goes through as version 3.
    loc = create_based("cas.bin", 2, 4)
    r = erin.request("PATCH", loc, data=b"four", headers={**h, "Upload-Offset": "0"})
    assert r.status_code == 204, r.text
    assert r.headers.get("Cairn-Version") == "3"
    assert erin.download("cas.bin") == b"four"
    # Base 0: only a new file.
    loc = create_based("cas.bin", 0, 4)
    r = erin.request("PATCH", loc, data=b"five", headers={**h, "Upload-Offset": "0"})
    assert r.status_code == 409
    loc = create_based("fresh.bin", 0, 3)
    r = erin.request("PATCH", loc, data=b"new", headers={**h, "Upload-Offset": "0"})
    assert r.status_code == 204 and erin.download("fresh.bin") == b"new"
    # A base that is not a number.
    r = erin.post("/v1/uploads", headers={**TUS, "Upload-Length": "3",
                                          "Upload-Metadata": f"path {b64('x.bin')},base {b64('v2')}"})
    assert r.status_code == 400
