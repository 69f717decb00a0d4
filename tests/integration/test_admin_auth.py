"""The admin API's bearer token (admin.token_file): 401 without it or with a wrong one, 200 with
it; a token file others can read is warned about; without token_file no token is asked for."""

import os
import re

from harness import http, start_proxy

TOKEN = "s3cr3t-Token_0123456789abcdef"

CONFIG = """\
listen:
  - addr: 127.0.0.1:@PORT@
admin:
  addr: 127.0.0.1:@ADMIN@
{token}log:
  error: stderr
  level: info
backends:
  model-a:
    servers: [{a}]
default_backend: model-a
"""


def token_file(tmp_path, mode, content=TOKEN + "\n"):
    path = tmp_path / "admin.token"
    path.write_text(content)
    os.chmod(path, mode)
    return path


def start(procs, models, yaml_config, path=None):
    a, _ = models
    token = "  token_file: %s\n" % path if path else ""
    cfg = yaml_config(CONFIG.format(token=token, a=a.addr))
    return start_proxy(procs, cfg, auth=TOKEN if path else None)


def admin(px, method, path, auth=None):
    headers = [("Authorization", auth)] if auth is not None else None
    return http(px.admin_port, method, path, headers=headers)


ENDPOINTS = [("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"),
             ("GET", "/experiments"), ("POST", "/reload"), ("POST", "/outcomes")]

WRONG = [None, "", "Bearer", "Bearer ", "Bearer wrong-token", "Bearer " + TOKEN[:-1],
         "Bearer " + TOKEN + "x", "Bearer " + TOKEN.upper(), "Basic " + TOKEN, TOKEN]


def test_token_required(procs, models, yaml_config, tmp_path):
    px = start(procs, models, yaml_config, token_file(tmp_path, 0o600))
    failures = []
    for method, path in ENDPOINTS:
        for auth in WRONG:
            r = admin(px, method, path, auth)
            if r.status != 401:
                failures.append("%s %s with %r: %d" % (method, path, auth, r.status))
            elif TOKEN.encode() in r.body:
                failures.append("the 401 body shows the token")
    assert not failures, "\n".join(failures)
    r = admin(px, "GET", "/healthz")
    assert r.header("WWW-Authenticate", "").startswith("Bearer"), r

    good = "Bearer " + TOKEN
    r = admin(px, "GET", "/healthz", good)
    assert r.status == 200 and r.body == b"ok\n", r
    r = admin(px, "GET", "/metrics", good)
    assert r.status == 200 and b"abgate_config_reloads_total" in r.body, r
    r = admin(px, "POST", "/reload", good)
    assert r.status == 200 and r.json() == {"result": "ok", "generation": 2}, r
    # the scheme is case-insensitive
    assert admin(px, "GET", "/healthz", "bearer " + TOKEN).status == 200
    # the token guards the admin API only: the proxy port does not ask for it
    assert http(px.port, "GET", "/anything").status == 200
    # mode 0600: no warning about the token file
    assert "token_file" not in px.log(), px.log()


def test_world_readable_token_file_is_warned_about(procs, models, yaml_config, tmp_path):
    path = token_file(tmp_path, 0o644)
    px = start(procs, models, yaml_config, path)
    lines = [line for line in px.log().splitlines() if str(path) in line]
    assert lines, px.log()
    assert any(re.search(r"\[warn\]", line) for line in lines), lines
    # the token still works, and is still required
    assert admin(px, "GET", "/healthz", "Bearer " + TOKEN).status == 200
    assert admin(px, "GET", "/healthz").status == 401


def test_without_token_file_no_auth_needed(procs, models, yaml_config):
    px = start(procs, models, yaml_config)
    assert admin(px, "GET", "/healthz").status == 200
    assert admin(px, "GET", "/metrics").status == 200
    r = admin(px, "POST", "/reload")
    assert r.status == 200 and r.json()["result"] == "ok", r
    # a token sent anyway is ignored
    assert admin(px, "GET", "/healthz", "Bearer whatever").status == 200


def test_reload_reads_a_new_token(procs, models, yaml_config, tmp_path):
    path = token_file(tmp_path, 0o600)
    px = start(procs, models, yaml_config, path)
    new = "rotated-" + TOKEN
    path.write_text(new + "\n")
    r = admin(px, "POST", "/reload", "Bearer " + TOKEN)
    assert r.status == 200, r
    assert admin(px, "GET", "/healthz", "Bearer " + TOKEN).status == 401
    assert admin(px, "GET", "/healthz", "Bearer " + new).status == 200
