"""Files through cairn-gateway on three real nodes: uploads and downloads
byte-identical (0 B, 1 B, 5 MiB, 300 MiB), Range across chunk edges, ETags,
versions, folders, moves, the trash, and concurrent commits from one base
(exactly one 409)."""
import hashlib
import os
import threading

import pytest

from drive import Drive, built, error_code

pytestmark = pytest.mark.skipif(not built(), reason="cairn-gateway not built")

MiB = 1 << 20


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    with Drive(tmp_path_factory.mktemp("drive")) as d:
        yield d


@pytest.fixture(scope="module")
def alice(drive):
    return drive.new_user("alice")


@pytest.mark.parametrize("size", [0, 1, 5 * MiB])
def test_upload_download_identical(alice, size):
    data = os.urandom(size)
    entry = alice.upload(f"f{size}.bin", data)
    assert entry["size"] == size and entry["kind"] == "file" and entry["version"] >= 1
    r = alice.get(f"/v1/files/f{size}.bin")
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["ETag"] == entry["etag"]
    stat = alice.get(f"/v1/meta/f{size}.bin").json()
    assert stat["size"] == size and stat["etag"] == entry["etag"]
    head = alice.request("HEAD", f"/v1/files/f{size}.bin")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["Content-Length"]) == size and head.headers["ETag"] == entry["etag"]


def test_300_mib_streams_with_bounded_memory(alice, drive):
    """300 MiB up and down, generated and hashed on the fly (the test holds
    no copy); the gateway's RSS stays far below the file's size."""
    size, block = 300 * MiB, 4 * MiB
    seed = os.urandom(block)
    sent = hashlib.sha256()

    class Body:
        """A file-like body of known length, made on the fly."""

        def __init__(self):
            self.pos = 0
            self.piece = b""

        def __len__(self):
            return size - self.pos

        def read(self, n=-1):
            if not self.piece:
                if self.pos >= size:
                    return b""
                self.piece = bytes([(self.pos // block) & 0xFF]) + seed[1:]
            n = len(self.piece) if n is None or n < 0 else min(n, len(self.piece))
            out, self.piece = self.piece[:n], self.piece[n:]
            self.pos += n
            sent.update(out)
            return out

    r = alice.put("/v1/files/big.bin", data=Body())
    assert r.status_code == 201, r.text
    got = hashlib.sha256()
    with alice.get("/v1/files/big.bin", stream=True) as r:
        assert r.status_code == 200
        n = 0
        for piece in r.iter_content(1 << 20):
            got.update(piece)
            n += len(piece)
    assert n == size and got.digest() == sent.digest()
    with open(f"/proc/{drive.gateway.pid}/status") as f:
        rss = [int(line.split()[1]) for line in f if line.startswith("VmHWM")][0] * 1024
    print(f"gateway peak RSS after 300 MiB each way: {rss / MiB:.0f} MiB")
    assert rss < 200 * MiB, f"gateway peak RSS {rss / MiB:.0f} MiB"


def test_range_at_chunk_edges(alice):
    """Chunks are 256 KiB..4 MiB, content-defined: ranges across every
    multiple of 256 KiB (where boundaries can fall, and every 4 MiB maximum)
    and random ranges on random data all come back exact."""
    zeros = bytes(9 * MiB)
    alice.upload("zeros.bin", zeros)
    data = os.urandom(9 * MiB + 123)
    alice.upload("rand.bin", data)
    for edge in range(256 << 10, 9 * MiB, 256 << 10):
        for name, content in (("zeros.bin", zeros), ("rand.bin", data)):
            r = alice.get(f"/v1/files/{name}", headers={"Range": f"bytes={edge - 1}-{edge}"})
            assert r.status_code == 206, r.text
            assert r.content == content[edge - 1:edge + 1]
            assert r.headers["Content-Range"] == f"bytes {edge - 1}-{edge}/{len(content)}"
    rng = __import__("random").Random(7)
    for _ in range(20):
        a = rng.randrange(len(data))
        b = rng.randrange(a, min(len(data), a + 6 * MiB))
        r = alice.get("/v1/files/rand.bin", headers={"Range": f"bytes={a}-{b}"})
        assert r.status_code == 206 and r.content == data[a:b + 1]
    r = alice.get("/v1/files/rand.bin", headers={"Range": "bytes=-10"})
    assert r.content == data[-10:]
    r = alice.get("/v1/files/rand.bin", headers={"Range": f"bytes={len(data)}-"})
    assert r.status_code == 416 and r.headers["Content-Range"] == f"bytes */{len(data)}"


def test_etag_conditionals_and_versions(alice):
    v1 = alice.upload("doc.txt", b"one")
    r = alice.get("/v1/files/doc.txt", headers={"If-None-Match": v1["etag"]})
    assert r.status_code == 304
    v2 = alice.upload("doc.txt", b"two", headers={"If-Match": v1["etag"]})
    assert v2["version"] > v1["version"] and v2["etag"] != v1["etag"]
    r = alice.put("/v1/files/doc.txt", data=b"three", headers={"If-Match": v1["etag"]})
    assert r.status_code == 412, r.text
    r = alice.get("/v1/files/doc.txt", headers={"If-Match": v1["etag"]})
    assert r.status_code == 412
    assert alice.download(f"doc.txt?version={v1['version']}") == b"one"
    assert alice.download("doc.txt") == b"two"
    versions = alice.get("/v1/versions/doc.txt").json()["versions"]
    assert [v["version"] for v in versions] == [v1["version"], v2["version"]]
    r = alice.post("/v1/versions/doc.txt", json={"restore": v1["version"]})
    assert r.status_code == 200, r.text
    assert alice.download("doc.txt") == b"one"
    r = alice.put(f"/v1/files/doc.txt?base={v1['version']}", data=b"stale")
    assert r.status_code == 409 and error_code(r) == "conflict"
    r = alice.put("/v1/files/doc.txt", data=b"only new", headers={"If-None-Match": "*"})
    assert r.status_code == 412
    r = alice.put("/v1/files/doc-new.txt", data=b"only new", headers={"If-None-Match": "*"})
    assert r.status_code == 201


def test_concurrent_commits_from_one_base(alice):
    base = alice.upload("race.txt", b"base")["version"]
    results = []

    def writer(i):
        r = alice.put(f"/v1/files/race.txt?base={base}", data=os.urandom(300 << 10))
        results.append(r.status_code)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 409], results


def test_folders_move_trash(alice):
    assert alice.post("/v1/folders/Photos").status_code == 201
    assert alice.post("/v1/folders/Photos").status_code == 409
    assert alice.post("/v1/folders/Nope/Deeper").status_code == 404
    alice.upload("Photos/a%20b.jpg", b"jpeg")
    entries = alice.get("/v1/list/Photos").json()["entries"]
    assert [e["name"] for e in entries] == ["a b.jpg"]
    r = alice.post("/v1/move", json={"from": "Photos/a b.jpg", "to": "c.jpg"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "c.jpg"
    assert alice.download("c.jpg") == b"jpeg"
    stat = alice.get("/v1/meta/c.jpg").json()
    assert alice.delete("/v1/files/c.jpg").status_code == 204
    assert alice.get("/v1/meta/c.jpg").status_code == 404
    r = alice.post(f"/v1/trash/{stat['id']}/restore")
    assert r.status_code == 200, r.text
    assert alice.download("c.jpg") == b"jpeg"
    assert alice.delete("/v1/files/c.jpg").status_code == 204
    assert alice.delete(f"/v1/trash/{stat['id']}").status_code == 204
    assert alice.post(f"/v1/trash/{stat['id']}/restore").status_code in (400, 404)


def test_list_pages(alice):
    alice.post("/v1/folders/many")
    for i in range(7):
        alice.upload(f"many/{i:02d}", b"x")
    names, after = [], ""
    while True:
        page = alice.get(f"/v1/list/many?limit=3&after={after}").json()
        names += [e["name"] for e in page["entries"]]
        if page["next"] is None:
            break
        after = page["next"]
    assert names == [f"{i:02d}" for i in range(7)]


def test_many_uploads_while_clients_leave(alice, drive):
    """Eight uploads at once while four other clients leave mid-body and four
    leave mid-download: the eight files are whole, the others not committed,
    and the gateway (ASan build) keeps serving."""
    import socket

    port = int(drive.url.rsplit(":", 1)[1])
    datas = {f"conc/{i}.bin": os.urandom((3 << 20) + i * 1000) for i in range(8)}
    alice.post("/v1/folders/conc")
    alice.upload("conc/big-for-leavers.bin", os.urandom(8 * MiB))
    errors = []

    def upload(path, data):
        try:
            alice.upload(path, data)
        except Exception as e:  # reported below
            errors.append(e)

    def leave_upload(i):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall((f"PUT /v1/files/conc/left{i}.bin HTTP/1.1\r\nHost: x\r\n"
                       f"Authorization: Bearer {alice.token}\r\nContent-Length: {20 * MiB}\r\n\r\n"
                       ).encode() + os.urandom(5 * MiB))

    def leave_download():
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall((f"GET /v1/files/conc/big-for-leavers.bin HTTP/1.1\r\nHost: x\r\n"
                       f"Authorization: Bearer {alice.token}\r\n\r\n").encode())
            s.recv(100000)

    threads = [threading.Thread(target=upload, args=item) for item in datas.items()]
    threads += [threading.Thread(target=leave_upload, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=leave_download) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for path, data in datas.items():
        assert alice.download(path) == data
    for i in range(4):
        assert alice.get(f"/v1/meta/conc/left{i}.bin").status_code == 404
    assert drive.gateway.alive()


def test_a_node_short_of_its_reserve_refuses_shards(alice, drive):
    """A node whose disk has less free space than its reserve (kept for the
    metadata: a full disk stops a node) refuses shard puts: the upload gets
    507, the stored version stays, and with the reserve met again uploads go
    on."""
    data = os.urandom(3 * MiB)
    alice.upload("reserve-kept.bin", data)
    drive.restart_node(3, "--reserve", "1000TiB")
    r = alice.put("/v1/files/reserve-kept.bin", data=os.urandom(3 * MiB))
    assert r.status_code == 507 and error_code(r) == "insufficient_storage", (r.status_code, r.text)
    assert alice.download("reserve-kept.bin") == data
    drive.restart_node(3, "--reserve", "0")
    newer = os.urandom(3 * MiB)
    alice.upload("reserve-kept.bin", newer)
    assert alice.download("reserve-kept.bin") == newer


def test_download_with_a_node_down(alice, drive):
    """Last in this file: kills a node. With 2+1 on three nodes, any two
    shards rebuild a chunk, so the file still comes back whole."""
    data = os.urandom(6 * MiB)
    alice.upload("degraded.bin", data)
    drive.nodes[2].kill()
    # Until the cluster marks node 3 down (30 s), new chunks still need it:
    # the upload is refused as unavailable (503, worth a retry), not as the
    # gateway's own failure (500), and the stored version is untouched.
    r = alice.put("/v1/files/degraded.bin", data=os.urandom(2 * MiB))
    assert r.status_code == 503 and error_code(r) == "unavailable", (r.status_code, r.text)
    assert alice.download("degraded.bin") == data
    r = alice.get("/v1/files/degraded.bin", headers={"Range": f"bytes={MiB}-{3 * MiB}"})
    assert r.status_code == 206 and r.content == data[MiB:3 * MiB + 1]
