"""Sign-in, isolation and sharing, the change stream, and bad input, through
cairn-gateway on three real nodes. Every bad request gets a clean 4xx with
the JSON error body, and the gateway keeps serving."""
import json
import os
import socket
import threading
import time

import pytest
import requests

from drive import Drive, built, error_code
from harness import wait_until

pytestmark = pytest.mark.skipif(not built(), reason="cairn-gateway not built")


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    with Drive(tmp_path_factory.mktemp("drive")) as d:
        yield d


@pytest.fixture(scope="module")
def bob(drive):
    return drive.new_user("bob")


@pytest.fixture(scope="module")
def carol(drive):
    return drive.new_user("carol")


def test_login_me_logout(drive):
    r = requests.post(drive.url + "/v1/auth/login", json={"user": "admin", "password": "wrong"})
    assert r.status_code == 401 and error_code(r) is not None
    r = requests.post(drive.url + "/v1/auth/login", json={"user": "nobody", "password": "x"})
    assert r.status_code == 401
    c = drive.login("admin", "admin-password-for-tests")
    me = c.get("/v1/me").json()
    assert me["name"] == "admin" and me["admin"] is True
    # A token for another device, then the admin status.
    r = c.post("/v1/auth/tokens", json={"device": "phone", "ttl_s": 3600})
    assert r.status_code == 201, r.text
    phone = requests.get(drive.url + "/v1/me", timeout=30,
                         headers={"Authorization": "Bearer " + r.json()["token"]})
    assert phone.status_code == 200 and phone.json()["name"] == "admin"
    assert c.post("/v1/auth/tokens", json={"ttl_s": -1}).status_code == 400
    status = c.get("/v1/admin/status").json()
    assert status["data_groups"] >= 1 and len(status["nodes"]) >= 1
    assert c.post("/v1/auth/logout").status_code == 204
    assert c.get("/v1/me").status_code == 401


def test_missing_and_wrong_token(drive):
    assert requests.get(drive.url + "/v1/me").status_code == 401
    for token in ("x", "0" * 64, "Z" * 64, "0" * 65):
        r = requests.get(drive.url + "/v1/me", headers={"Authorization": "Bearer " + token})
        assert r.status_code == 401, token
    r = requests.get(drive.url + "/v1/me", headers={"Authorization": "Basic YTpi"})
    assert r.status_code == 401


def test_admin_only(bob):
    r = bob.post("/v1/admin/users", json={"name": "eve", "password": "x"})
    assert r.status_code == 403
    assert bob.get("/v1/admin/status").status_code == 403
    assert bob.post("/v1/admin/users/bob/disable").status_code == 403


def test_disabled_user(drive):
    dave = drive.new_user("dave")
    assert drive.admin.post("/v1/admin/users/dave/disable").status_code == 204
    # Within the token cache's lifetime (2 s) the token stops working.
    wait_until(lambda: dave.get("/v1/me").status_code == 401, "dave's token refused", timeout=10)
    r = requests.post(drive.url + "/v1/auth/login", json={"user": "dave", "password": "pw-xxxxxxxx"})
    assert r.status_code == 401


def shared_root(owner, path):
    """The root string of an item of owner's drive (as GET /v1/shared gives it)."""
    drive_ns = owner.get("/v1/me").json()["drive"]
    return f"{drive_ns}.{owner.get('/v1/meta/' + path).json()['id']}"


def test_users_isolated_until_shared(bob, carol):
    """bob shares his whole drive (the root) with carol: before, carol sees
    nothing of it, even naming bob's items; as a viewer she reads and cannot
    write; as an editor she writes; after the revoke, nothing again."""
    bob.post("/v1/folders/Shared")
    bob.upload("Shared/plan.txt", b"bob's plan")
    bob.upload("private.txt", b"secret")
    root = shared_root(bob, "")
    assert root.endswith(".1")
    assert carol.get("/v1/meta/Shared/plan.txt").status_code == 404
    assert carol.get(f"/v1/files/Shared/plan.txt?root={root}").status_code == 404
    assert carol.get(f"/v1/meta/private.txt?root={root}").status_code == 404
    assert carol.get(f"/v1/list/?root={root}").status_code == 404
    assert carol.put(f"/v1/files/x.txt?root={root}", data=b"x").status_code == 404
    r = bob.post("/v1/shares/", json={"user": "carol", "role": "viewer"})
    assert r.status_code == 204, r.text
    r = carol.get(f"/v1/files/Shared/plan.txt?root={root}")
    assert r.status_code == 200 and r.content == b"bob's plan"
    names = [e["name"] for e in carol.get(f"/v1/list/?root={root}").json()["entries"]]
    assert "Shared" in names and "private.txt" in names
    # A viewer cannot write.
    r = carol.put(f"/v1/files/new.txt?root={root}", data=b"x")
    assert r.status_code == 403, r.text
    r = carol.delete(f"/v1/files/Shared/plan.txt?root={root}")
    assert r.status_code == 403, r.text
    assert carol.post(f"/v1/folders/D?root={root}").status_code == 403
    # An editor can.
    r = bob.post("/v1/shares/", json={"user": "carol", "role": "editor"})
    assert r.status_code == 204, r.text
    r = carol.put(f"/v1/files/new.txt?root={root}", data=b"from carol")
    assert r.status_code == 201, r.text
    assert bob.download("new.txt") == b"from carol"
    # carol's own drive is still hers alone.
    assert bob.get("/v1/meta/new.txt").status_code == 200
    assert carol.get("/v1/meta/new.txt").status_code == 404
    assert bob.delete("/v1/shares/?user=carol").status_code == 204
    wait_until(lambda: carol.get(f"/v1/files/Shared/plan.txt?root={root}").status_code == 404,
               "access revoked", timeout=30)


def test_folder_share(bob, carol):
    bob.post("/v1/folders/Folder")
    bob.upload("Folder/in.txt", b"in")
    bob.upload("out.txt", b"out")
    root = shared_root(bob, "Folder")
    assert bob.post("/v1/shares/Folder", json={"user": "carol", "role": "viewer"}).status_code == 204
    assert carol.download(f"in.txt?root={root}") == b"in"
    assert carol.put(f"/v1/files/x.txt?root={root}", data=b"x").status_code == 403
    drive_root = f"{root.split('.')[0]}.1"
    assert carol.get(f"/v1/meta/out.txt?root={drive_root}").status_code == 404


def test_share_lists(bob, carol):
    bob.post("/v1/folders/Listed")
    assert bob.post("/v1/shares/Listed", json={"user": "carol", "role": "viewer"}).status_code == 204
    grants = bob.get("/v1/shares/Listed").json()["grants"]
    assert [(g["user"], g["role"]) for g in grants] == [("carol", "viewer")]
    def listed():
        return [x for x in carol.get("/v1/shared").json()["shares"] if x["name"] == "Listed"]

    shares = wait_until(listed, "share delivered to carol's inbox", timeout=30)
    assert shares[0]["root"] == shared_root(bob, "Listed") and shares[0]["role"] == "viewer"
    assert carol.get(f"/v1/list/?root={shares[0]['root']}").status_code == 200
    assert bob.delete("/v1/shares/Listed?user=carol").status_code == 204
    wait_until(lambda: not listed(), "unshare delivered", timeout=30)


def test_long_poll_wakes_within_a_second(bob):
    cursor = bob.get("/v1/changes/latest").json()["cursor"]
    result = {}

    def poll():
        r = bob.get(f"/v1/changes?cursor={cursor}&timeout=30")
        result["status"], result["body"], result["t"] = r.status_code, r.json(), time.monotonic()

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.5)  # let the poll start waiting (the assertion is on the wake-up)
    t_write = time.monotonic()
    bob.upload("poked.txt", b"poke")
    t.join(timeout=30)
    assert result["status"] == 200
    assert result["t"] - t_write < 1.0 + 0.5, result
    events = result["body"]["events"]
    assert any(e["name"] == "poked.txt" for e in events), events
    assert result["body"]["cursor"] > cursor
    # A poll at the latest cursor with timeout 1 comes back empty.
    latest = bob.get("/v1/changes/latest").json()["cursor"]
    r = bob.get(f"/v1/changes?cursor={latest}&timeout=1")
    assert r.status_code == 200 and r.json()["events"] == []


def test_polls_share_one_watch(drive, bob, carol):
    """bob and carol (a viewer of bob's whole drive) poll bob's drive at once
    on a fresh gateway: one node watch serves both, and both wake on bob's
    write. (A grantee of a folder only cannot read the namespace's journal.)"""
    bob.post("/v1/folders/Watched")
    assert bob.post("/v1/shares/", json={"user": "carol", "role": "viewer"}).status_code == 204
    root = shared_root(bob, "")
    gw, url = drive.extra_gateway()
    cursor = requests.get(url + "/v1/changes/latest", timeout=30,
                          headers={"Authorization": "Bearer " + bob.token}).json()["cursor"]
    results = {}

    def poll(name, client, query):
        r = requests.get(url + f"/v1/changes?cursor={cursor}&timeout=30{query}", timeout=60,
                         headers={"Authorization": "Bearer " + client.token})
        results[name] = (r.status_code, r.json(), time.monotonic())

    threads = [threading.Thread(target=poll, args=("bob", bob, "")),
               threading.Thread(target=poll, args=("carol", carol, f"&root={root}"))]
    for t in threads:
        t.start()
    wait_until(lambda: "cairn_gateway_watches 1\n" in requests.get(url + "/metrics").text
               and "cairn_gateway_change_polls_total 2\n" in requests.get(url + "/metrics").text,
               "both polls wait on one watch", timeout=30)
    t_write = time.monotonic()
    bob.upload("Watched/w.txt", b"w")
    for t in threads:
        t.join(timeout=30)
    for name in ("bob", "carol"):
        status, body, t_end = results[name]
        assert status == 200 and any(e["name"] == "w.txt" for e in body["events"]), body
        assert t_end - t_write < 1.5, (name, t_end - t_write)
    assert gw.stop() == 0
    assert bob.delete("/v1/shares/?user=carol").status_code == 204


def test_bad_input_gets_clean_4xx(drive, bob):
    url = drive.url
    h = {"Authorization": "Bearer " + bob.token}
    cases = [
        ("POST", "/v1/auth/login", {"data": b"{not json"}, 400),
        ("POST", "/v1/auth/login", {"data": b"[1,2]"}, 400),
        ("POST", "/v1/auth/login", {"json": {"user": 5}}, 400),
        ("POST", "/v1/move", {"data": b"{\"from\":", "headers": h}, 400),
        ("GET", "/v1/meta/a/%2e%2e/b", {"headers": h}, 400),
        ("GET", "/v1/meta/a%00b", {"headers": h}, 400),
        ("PUT", "/v1/files/" + "n" * 256, {"data": b"x", "headers": h}, 400),
        ("POST", "/v1/folders/" + "n" * 256, {"headers": h}, 400),
        ("GET", "/v1/list/nope", {"headers": h}, 404),
        ("GET", "/v1/files/missing.txt", {"headers": h}, 404),
        ("GET", "/v1/changes?cursor=abc", {"headers": h}, 400),
        ("GET", "/v1/meta/x?root=zz", {"headers": h}, 400),
        ("GET", "/v1/nothing", {"headers": h}, 404),
    ]
    for method, path, kw, status in cases:
        r = requests.request(method, url + path, timeout=30, **kw)
        assert r.status_code == status, (method, path, r.status_code, r.text)
        assert json.loads(r.text)["error"]["status"] == status
    # Dot segments as sent (requests would normalise them away).
    for path in ("/v1/meta/a/../b", "/v1/meta/..", "/v1/files/./x"):
        out = raw(int(url.rsplit(":", 1)[1]),
                  f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {bob.token}\r\n"
                  "Connection: close\r\n\r\n".encode())
        assert out.startswith(b"HTTP/1.1 400"), (path, out[:200])
    # A huge header: 431, and the gateway still answers.
    r = requests.get(url + "/v1/me", headers={**h, "X-Big": "a" * 100000}, timeout=30)
    assert r.status_code == 431
    assert bob.get("/v1/me").status_code == 200


def raw(port, data, read=True):
    """Sends data on a new connection; reads until the server closes it. A
    half-close would read as the client leaving, so none is sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(data)
        if not read:
            return b""
        out = b""
        while True:
            piece = s.recv(65536)
            if not piece:
                return out
            out += piece


def test_body_shorter_or_longer_commits_nothing(drive, bob):
    port = int(drive.url.rsplit(":", 1)[1])
    head = (f"PUT /v1/files/short.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {bob.token}\r\n"
            f"Content-Length: 1000000\r\n\r\n").encode()
    raw(port, head + os.urandom(1000), read=False)  # then the client leaves: short
    assert bob.get("/v1/meta/short.bin").status_code == 404
    # Longer: the declared bytes are the file; the rest is a malformed next
    # request, answered 400; the connection closes; nothing else is committed.
    head = (f"PUT /v1/files/long.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {bob.token}\r\n"
            f"Content-Length: 10\r\n\r\n").encode()
    out = raw(port, head + b"0123456789" + b"garbage that is not a request\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 201"), out[:200]
    assert b"HTTP/1.1 400" in out
    assert bob.download("long.bin") == b"0123456789"
    assert bob.get("/v1/me").status_code == 200


def test_declared_size_over_a_lowered_limit(drive, bob):
    gw, url = drive.extra_gateway("--max-file-size", "1MiB")
    port = int(url.rsplit(":", 1)[1])
    h = {"Authorization": "Bearer " + bob.token}
    out = raw(port, (f"PUT /v1/files/huge.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                     f"{bob.token}\r\nContent-Length: {2 << 20}\r\nExpect: 100-continue\r\n\r\n"
                     ).encode())
    assert out.startswith(b"HTTP/1.1 413"), out[:200]
    assert b"100 Continue" not in out
    r = requests.put(url + "/v1/files/ok.bin", data=os.urandom(1 << 20), headers=h, timeout=60)
    assert r.status_code == 201, r.text
    # Chunked, over the limit: 413 at the byte, nothing committed.
    r = requests.put(url + "/v1/files/chunked.bin", data=iter([os.urandom(1 << 19)] * 3), headers=h,
                     timeout=60)
    assert r.status_code == 413
    assert requests.get(url + "/v1/meta/chunked.bin", headers=h).status_code == 404
    assert requests.get(url + "/v1/meta/huge.bin", headers=h).status_code == 404
    assert gw.stop() == 0


def test_metrics_and_health(drive, bob):
    bob.get("/v1/me")
    text = requests.get(drive.url + "/metrics", timeout=30).text
    assert "cairn_gateway_logins_total" in text
    assert "cairn_gateway_http_requests_total" in text
    health = requests.get(drive.url + "/health", timeout=30).json()
    assert health["status"] == "ok" and health["nodes_up"] >= 1 and health["data_groups"] >= 1


def test_sigterm_with_a_poll_waiting_exits_cleanly(drive, bob):
    gw, url = drive.extra_gateway()
    h = {"Authorization": "Bearer " + bob.token}
    cursor = requests.get(url + "/v1/changes/latest", headers=h, timeout=30).json()["cursor"]
    result = {}

    def poll():
        try:
            r = requests.get(url + f"/v1/changes?cursor={cursor}&timeout=60", headers=h, timeout=90)
            result["status"] = r.status_code
        except requests.RequestException as e:
            result["error"] = e

    t = threading.Thread(target=poll)
    t.start()
    wait_until(lambda: "cairn_gateway_watches 1" in requests.get(url + "/metrics").text,
               "the poll waits on a watch", timeout=30)
    t0 = time.monotonic()
    assert gw.stop() == 0, gw.log()[-3000:]
    assert time.monotonic() - t0 < 10
    t.join(timeout=30)
    assert result, "the poll ended"


def test_upload_limit_answers_busy(drive, bob, tmp_path):
    conf = tmp_path / "gw.conf"
    conf.write_text("[gateway]\nmax_uploads = 1\ntoken_cache = 1s\n")
    gw, url = drive.extra_gateway("--config", str(conf))
    port = int(url.rsplit(":", 1)[1])
    h = {"Authorization": "Bearer " + bob.token}
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall((f"PUT /v1/files/slow.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                   f"{bob.token}\r\nContent-Length: 1000000\r\n\r\n").encode() + b"x" * 1000)
        wait_until(lambda: "cairn_gateway_uploads_active 1" in requests.get(url + "/metrics").text,
                   "the slow upload holds the only slot", timeout=30)
        r = requests.put(url + "/v1/files/second.bin", data=b"y", headers=h, timeout=30)
        assert r.status_code == 503 and r.headers.get("Retry-After") == "1", r.text
    wait_until(lambda: "cairn_gateway_uploads_active 0" in requests.get(url + "/metrics").text,
               "the slot is free again", timeout=30)
    r = requests.put(url + "/v1/files/second.bin", data=b"y", headers=h, timeout=30)
    assert r.status_code == 201, r.text
    assert requests.get(url + "/v1/meta/slow.bin", headers=h).status_code == 404
    assert gw.stop() == 0
