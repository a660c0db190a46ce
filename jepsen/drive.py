"""A small client of the Drive REST API (docs/api.md) on http.client, for
the Jepsen clients: one keep-alive connection, explicit timeouts, and the
knowledge of whether a request may have reached the server (for ok/fail/info).
"""
import http.client
import json
import urllib.parse


class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body) if self.body else None

    def error_code(self):
        try:
            return self.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return None


class SendError(Exception):
    """The request failed; `sent` says whether it may have reached the server."""

    def __init__(self, cause, sent):
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause
        self.sent = sent


def quote_path(path):
    return "/".join(urllib.parse.quote(seg, safe="") for seg in path.split("/"))


class Drive:
    def __init__(self, base_url, token=None, timeout=10.0):
        u = urllib.parse.urlsplit(base_url)
        self.host, self.port = u.hostname, u.port or 80
        self.token = token
        self.timeout = timeout
        self.conn = None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, headers=None, timeout=None):
        """One request; raises SendError. A connection error before the
        request was written means it was not sent."""
        h = dict(headers or {})
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        if body is not None:
            h["Content-Length"] = str(len(body))
        sent = False
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout or self.timeout)
                self.conn.connect()
            else:
                self.conn.sock.settimeout(timeout or self.timeout)
            self.conn.putrequest(method, path, skip_accept_encoding=True)
            for k, v in h.items():
                self.conn.putheader(k, v)
            sent = True  # from here on, some bytes may have reached the server
            self.conn.endheaders(body)
            r = self.conn.getresponse()
            data = r.read()
            answer = Answer(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
            if r.getheader("Connection", "").lower() == "close":
                self.close()
            return answer
        except (OSError, http.client.HTTPException) as e:
            self.close()
            raise SendError(e, sent) from e

    # ---- calls

    def login(self, user, password):
        a = self.request("POST", "/v1/auth/login", {"user": user, "password": password})
        if a.status != 200:
            raise RuntimeError(f"login {user}: {a.status} {a.body[:200]!r}")
        self.token = a.json()["token"]
        return self.token

    def put(self, path, data, if_match=None, if_none_match=None, timeout=None):
        h = {"Content-Type": "application/octet-stream"}
        if if_match is not None:
            h["If-Match"] = if_match
        if if_none_match is not None:
            h["If-None-Match"] = if_none_match
        return self.request("PUT", "/v1/files/" + quote_path(path), data, h, timeout)

    def get(self, path, timeout=None):
        return self.request("GET", "/v1/files/" + quote_path(path), timeout=timeout)

    def list(self, path=""):
        names, after = [], None
        while True:
            q = "?limit=1000" + ("&after=" + urllib.parse.quote(after, safe="") if after else "")
            a = self.request("GET", "/v1/list/" + quote_path(path) + q)
            if a.status != 200:
                return a, None
            j = a.json()
            names += [e["name"] for e in j["entries"]]
            after = j.get("next")
            if not after:
                return a, names

    def changes(self, cursor, timeout_s):
        return self.request("GET", f"/v1/changes?cursor={cursor}&timeout={timeout_s}",
                            timeout=timeout_s + self.timeout)

    def create_user(self, name, password, admin=False):
        return self.request("POST", "/v1/admin/users", {"name": name, "password": password, "admin": admin})
