"""The gateway's HTTP/1.1 core (gateway/, gw_http.h) against real clients.

Each test starts cairn-http-testd (gateway/http_demo.c, a test server with
echo, upload and download handlers) on a free port, with limits and timeouts
lowered so that they are reached quickly, and drives it with curl, Python's
http.client and requests, or raw sockets where a well-behaved client cannot
misbehave on purpose. Every wait is on a condition; processes are stopped by
PID by the procs fixture.
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import time

import pytest
import requests

from harness import binary, free_port, port_open, wait_until

PATTERN_MOD = 251
# A block whose length is a multiple of 251, so that repeating it continues the pattern.
PATTERN_BLOCK = bytes(range(PATTERN_MOD)) * 4096
GIB = 1 << 30
RSS_LIMIT_KIB = 64 * 1024


_started = []


@pytest.fixture(autouse=True)
def servers_exit_cleanly():
    """Every test server stops cleanly on SIGTERM: exit code 0, so no crash,
    no failed assertion and (in a sanitizer build) no leak."""
    _started.clear()
    yield
    for proc in _started:
        rc = proc.stop()
        assert rc == 0, f"{proc.name} exited with {rc}:\n{proc.log()[-3000:]}"


def start_server(procs, *flags):
    port = free_port()
    argv = [binary("cairn-http-testd"), "--port", str(port)] + [str(f) for f in flags]
    proc = procs.start(argv, name="http-testd")
    _started.append(proc)
    wait_until(lambda: "listening port=" in proc.log() or not proc.alive(), "test server listening")
    assert proc.alive(), proc.log()
    return proc, port


def url(port, path):
    return f"http://127.0.0.1:{port}{path}"


def stats(port):
    return requests.get(url(port, "/stats"), timeout=10).json()


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def raw(port, data, timeout=10):
    """Sends data on a fresh socket and reads until the server closes (or timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        return read_all(s)


def read_all(s):
    chunks = []
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def status_of(response_bytes):
    line = response_bytes.split(b"\r\n", 1)[0]
    assert line.startswith(b"HTTP/1.1 "), response_bytes[:200]
    return int(line.split()[1])


def error_body(response_bytes):
    body = json.loads(response_bytes.split(b"\r\n\r\n", 1)[1])
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "status"}
    return body["error"]


def pattern_stream(size):
    sent = 0
    while sent < size:
        block = PATTERN_BLOCK[: min(len(PATTERN_BLOCK), size - sent)]
        sent += len(block)
        yield block


# ---- Basics: routing, errors, keep-alive, pipelining ----


def test_echo_keep_alive_and_errors(procs):
    proc, port = start_server(procs)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for i in range(5):
        conn.request("GET", f"/echo?i={i}", headers={"X-Test": "yes"})
        r = conn.getresponse()
        body = json.loads(r.read())
        assert r.status == 200
        assert body["query"] == f"i={i}" and body["headers"]["X-Test"] == "yes"
        assert body["peer"].startswith("127.0.0.1:")
        if i == 0:
            sock = conn.sock
        assert conn.sock is sock  # the same connection, kept alive
    conn.request("GET", "/no/such/thing")
    r = conn.getresponse()
    err = json.loads(r.read())["error"]
    assert r.status == 404 and err == {"code": "not_found", "message": err["message"], "status": 404}
    conn.request("DELETE", "/download")
    r = conn.getresponse()
    assert r.status == 405 and json.loads(r.read())["error"]["code"] == "method_not_allowed"
    conn.request("GET", "/download")  # handler error: CAIRN_EINVAL -> 400
    r = conn.getresponse()
    assert r.status == 400 and json.loads(r.read())["error"]["code"] == "invalid_argument"
    assert conn.sock is sock
    conn.close()
    # Six requests above, on one accepted connection (plus the one for /stats).
    s = stats(port)
    assert s["accept_count"] == 2 and s["request_count"] == 9


def test_curl_reuses_connection_and_head(procs):
    proc, port = start_server(procs)
    out = subprocess.run(["curl", "-sS", "-v", url(port, "/echo"), url(port, "/echo?b")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "Re-using existing connection" in out.stderr
    head = subprocess.run(["curl", "-sS", "-I", url(port, "/download?size=12345")],
                          capture_output=True, text=True, timeout=30)
    assert "200 OK" in head.stdout and "Content-Length: 12345" in head.stdout


def test_pipelined_requests_answered_in_order(procs):
    proc, port = start_server(procs)
    reqs = b"".join(f"GET /echo?n={i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(3))
    last = b"GET /echo?n=last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    out = raw(port, reqs + last)
    assert out.count(b"HTTP/1.1 200 OK") == 4
    positions = [out.index(f'"query":"n={n}"'.encode()) for n in ["0", "1", "2", "last"]]
    assert positions == sorted(positions)


def test_http10_and_connection_close(procs):
    proc, port = start_server(procs)
    out = raw(port, b"GET /echo HTTP/1.0\r\n\r\n")  # HTTP/1.0: closes after the answer
    assert status_of(out) == 200
    out = raw(port, b"GET /download?size=1000&chunked=1 HTTP/1.0\r\n\r\n")
    assert status_of(out) == 200 and b"chunked" not in out  # no chunks for 1.0
    assert out.endswith(bytes(range(PATTERN_MOD)) * 3 + bytes(range(1000 - 3 * PATTERN_MOD)))


# ---- Bodies: chunked, 100-continue, streaming, backpressure ----


def test_chunked_upload_and_echo(procs):
    proc, port = start_server(procs)
    payload = os.urandom(300_000)
    r = requests.post(url(port, "/echo"), data=iter([payload[:1000], payload[1000:]]), timeout=30)
    assert r.status_code == 200 and r.content == payload
    # curl reading stdin sends chunked
    out = subprocess.run(["curl", "-sS", "-T", "-", url(port, "/upload")], input=bytes(PATTERN_BLOCK[:50000]),
                         capture_output=True, timeout=30)
    assert json.loads(out.stdout) == {"bytes": 50000, "pattern_ok": True}
    # http.client with explicit chunked encoding, in many small chunks
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("PUT", "/upload", body=pattern_stream(3_000_000), encode_chunked=True)
    r = conn.getresponse()
    assert json.loads(r.read()) == {"bytes": 3_000_000, "pattern_ok": True}


def test_expect_continue_accepted(procs):
    proc, port = start_server(procs)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        interim = s.recv(1024)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(PATTERN_BLOCK[:1000])
        head = s.recv(4096)
        assert status_of(head) == 200 and b'"bytes":1000' in head
    out = subprocess.run(["curl", "-sS", "-H", "Expect: 100-continue", "--data-binary", "@-",
                          "-X", "PUT", url(port, "/upload")],
                         input=bytes(PATTERN_BLOCK[:20000]), capture_output=True, timeout=30)
    assert json.loads(out.stdout) == {"bytes": 20000, "pattern_ok": True}


def test_expect_continue_rejected_body_never_read(procs, tmp_path):
    proc, port = start_server(procs)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"PUT /upload?max=1000 HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        out = read_all(s)  # no body byte sent; the server answers and closes
    assert status_of(out) == 413 and b"100 Continue" not in out
    assert error_body(out)["code"] == "payload_too_large"
    assert b"Connection: close" in out
    # The same through curl, which would send the body after a 100.
    body = tmp_path / "body"
    body.write_bytes(bytes(100000))
    out = subprocess.run(["curl", "-sS", "-w", "%{http_code}", "-H", "Expect: 100-continue", "-T", str(body),
                          url(port, "/upload?max=10")], capture_output=True, timeout=30)
    assert out.stdout.endswith(b"413")
    # The server-wide limit: a declared size over --body-max is refused the same way.
    proc2, port2 = start_server(procs, "--body-max", "1MiB")
    out = raw(port2, b"PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n")
    assert status_of(out) == 413


def test_chunked_body_over_limit_is_cut(procs):
    proc, port = start_server(procs, "--body-max", "100000")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("PUT", "/upload", body=pattern_stream(400_000), encode_chunked=True)
        r = conn.getresponse()
        assert r.status == 413
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may close while the client is still sending
    assert requests.get(url(port, "/echo"), timeout=10).status_code == 200


def test_streamed_1gib_download_and_upload_bounded_memory(procs):
    proc, port = start_server(procs)
    # Download: 1 GiB with a length, checked byte for byte.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", f"/download?size={GIB}")
    r = conn.getresponse()
    assert r.status == 200 and int(r.getheader("Content-Length")) == GIB
    big = PATTERN_BLOCK * 2
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    offset = 0
    while True:
        n = r.readinto(buf)
        if n == 0:
            break
        start = offset % PATTERN_MOD
        assert view[:n] == big[start:start + n], f"bad bytes near offset {offset}"
        offset += n
    assert offset == GIB
    # Upload: 1 GiB with a length, streamed from a generator.
    conn.request("PUT", "/upload", body=pattern_stream(GIB), headers={"Content-Length": str(GIB)})
    r = conn.getresponse()
    assert json.loads(r.read()) == {"bytes": GIB, "pattern_ok": True}
    conn.close()
    hwm = vm_hwm_kib(proc.pid)
    assert hwm < RSS_LIMIT_KIB, f"server peak RSS {hwm} KiB"
    print(f"server peak RSS after 1 GiB each way: {hwm} KiB")


def test_chunked_download_with_waiting_producer(procs):
    proc, port = start_server(procs)
    size = 5_000_000
    r = requests.get(url(port, f"/download?size={size}&chunked=1&wait=1"), timeout=60)
    assert r.headers.get("Transfer-Encoding") == "chunked"
    assert len(r.content) == size
    assert r.content == (PATTERN_BLOCK * 5)[:size]


def test_slow_consumer_pauses_reading(procs):
    # The handler pauses after every piece and resumes 1 ms later: the server
    # stops reading meanwhile, the client is pushed back by TCP, and the body
    # still arrives whole.
    proc, port = start_server(procs)
    size = 20_000_000
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("PUT", "/upload?slow=1", body=pattern_stream(size), headers={"Content-Length": str(size)})
    assert json.loads(conn.getresponse().read()) == {"bytes": size, "pattern_ok": True}


# ---- Limits and bad input ----


def test_huge_header_and_too_many_headers(procs):
    proc, port = start_server(procs, "--head-max", "8KiB", "--url-max", "2KiB", "--header-count-max", "20")
    out = raw(port, b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    assert status_of(out) == 431 and error_body(out)["code"] == "headers_too_large"
    many = b"".join(b"X-%d: v\r\n" % i for i in range(30))
    out = raw(port, b"GET /echo HTTP/1.1\r\n" + many + b"\r\n")
    assert status_of(out) == 431
    out = raw(port, b"GET /echo?" + b"q" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(out) == 414
    r = requests.get(url(port, "/echo"), headers={"X-Big": "b" * 100_000}, timeout=10)
    assert r.status_code == 431
    assert requests.get(url(port, "/echo"), timeout=10).status_code == 200


@pytest.mark.parametrize("request_line", [
    b"GARBAGE\r\n\r\n",
    b"GET /echo HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    b"GET /ec\x01ho HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # TLS on the plain port
    b"GET /echo HTTP/1.1\r\nBad Header\r\n\r\n",
    b"PUT /upload HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"PUT /upload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
])
def test_malformed_requests_get_400(procs, request_line):
    proc, port = start_server(procs)
    out = raw(port, request_line)
    assert status_of(out) == 400, out
    assert error_body(out)["code"] == "bad_request"
    assert requests.get(url(port, "/echo"), timeout=10).status_code == 200


def test_http2_and_unknown_expect(procs):
    proc, port = start_server(procs)
    out = raw(port, b"GET /echo HTTP/2.0\r\nHost: x\r\n\r\n")
    assert status_of(out) == 505
    out = raw(port, b"GET /echo HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n")
    assert status_of(out) == 417


def test_body_longer_than_content_length(procs):
    proc, port = start_server(procs)
    out = raw(port, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloEXTRA BYTES\r\n\r\n")
    # The 5 declared bytes are the request; the rest is a malformed next request.
    assert status_of(out) == 200
    first, rest = out.split(b"hello", 1)
    assert status_of(rest) == 400
    assert requests.get(url(port, "/echo"), timeout=10).status_code == 200


def test_body_shorter_than_content_length_times_out(procs):
    proc, port = start_server(procs, "--body-timeout-ms", "1000")
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(b"PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly-some")
        # Others are served while this one waits.
        assert requests.get(url(port, "/echo"), timeout=10).status_code == 200
        t0 = time.monotonic()
        out = read_all(s)
        assert time.monotonic() - t0 < 10
    assert status_of(out) == 408 and error_body(out)["code"] == "request_timeout"
    assert requests.get(url(port, "/echo"), timeout=10).status_code == 200


def test_client_leaving_mid_upload(procs):
    proc, port = start_server(procs)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + PATTERN_BLOCK[:5000])
    wait_until(lambda: "upload aborted" in proc.log(), "the handler saw the abort")
    wait_until(lambda: stats(port)["conn_count"] == 1, "the connection is gone")


def test_client_leaving_a_long_poll_is_noticed(procs):
    proc, port = start_server(procs)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: stats(port)["request_count"] >= 2, "the hanging request arrived")
    # The handler never answers; the client's close ends its request at once.
    wait_until(lambda: '"hang ended" err=CAIRN_ECANCELED' in proc.log(), "the handler saw the client leave")
    wait_until(lambda: stats(port)["conn_count"] == 1, "the connection is gone")


def test_slowloris_is_cut_off(procs):
    proc, port = start_server(procs, "--head-timeout-ms", "1500")
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        t0 = time.monotonic()
        data = b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
        got = b""
        for byte in data:
            try:
                s.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            # One byte every 100 ms: each read is "progress", but the head as a
            # whole misses its deadline. Stop as soon as the server answers.
            s.settimeout(0.1)
            try:
                got = s.recv(4096)
                break  # an answer, or the close
            except socket.timeout:
                pass
            except ConnectionResetError:
                break
        s.settimeout(10)
        got += read_all(s)
        elapsed = time.monotonic() - t0
    assert elapsed < 8, elapsed
    assert got == b"" or status_of(got) == 408
    assert stats(port)["timeout_count"] >= 1
    assert requests.get(url(port, "/echo"), timeout=10).status_code == 200


def test_idle_keep_alive_connection_closed(procs):
    proc, port = start_server(procs, "--idle-ms", "500")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        out = read_all(s)  # answered, then closed when idle
    assert status_of(out) == 200


def test_silent_new_connection_closed_at_head_timeout(procs):
    proc, port = start_server(procs, "--head-timeout-ms", "500", "--idle-ms", "60000")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        t0 = time.monotonic()
        assert read_all(s) == b""  # never sent a byte: closed, quietly
        assert time.monotonic() - t0 < 8


def test_too_many_connections(procs):
    proc, port = start_server(procs, "--conn-max", "3")
    held = []
    for _ in range(3):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/echo")
        assert conn.getresponse().read()
        held.append(conn)
    # A fourth gets 503 (or, if its request raced the close, a reset).
    try:
        out = raw(port, b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        assert out == b"" or (status_of(out) == 503 and error_body(out)["code"] == "too_many_connections")
    except ConnectionResetError:
        pass
    held.pop().close()

    def served():
        try:
            return requests.get(url(port, "/echo"), timeout=5).status_code == 200
        except requests.ConnectionError:
            return False
    wait_until(served, "a slot freed by a closed connection")
    for conn in held:
        conn.close()

    def reject_count():  # once the closes are seen, /stats is served again
        r = requests.get(url(port, "/stats"), timeout=5)
        return r.status_code == 200 and r.json()["reject_count"]
    assert wait_until(reject_count, "stats with the rejections") >= 1


def test_sigterm_with_open_connections(procs):
    proc, port = start_server(procs)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        wait_until(lambda: stats(port)["request_count"] >= 1, "the upload started")
        assert proc.stop() == 0  # the handler's request ends with CAIRN_ECANCELED, no leak


def test_sigterm_drains_requests_in_flight(procs):
    # A rolling restart: SIGTERM stops accepting, closes idle connections at
    # once, and lets a download in flight finish before the server exits.
    proc, port = start_server(procs, "--drain-ms", "30000")
    idle = socket.create_connection(("127.0.0.1", port), timeout=10)
    idle.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(idle.recv(65536)) == 200
    size = 300 * 1000 * 1000
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", f"/download?size={size}")
    r = conn.getresponse()
    got = len(r.read(1 << 20))
    proc.popen.send_signal(signal.SIGTERM)
    wait_until(lambda: not port_open(port), "the listener closed")
    assert read_all(idle) == b""  # the idle keep-alive connection was closed
    idle.close()
    while True:
        chunk = r.read(1 << 20)
        if not chunk:
            break
        got += len(chunk)
    assert got == size
    assert proc.popen.wait(timeout=30) == 0
