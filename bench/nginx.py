"""nginx as the benches' instant upstream: bench/overhead.py's chat completion, in C.

    argv = nginx.upstream(binary, work, port)   # writes work/nginx.conf; start argv as a child

On two cores shared with the gateway and the load generator the upstream's own CPU caps what
a bench of several workers can show (bench/workers.py), and issue 21's reference upstream was
nginx. Alone under wrk nginx takes 13-17 µs of CPU per request against 18-25 µs for the Python
upstream (``overhead.py --serve-upstream``); inside bench/workers.py, woken for one or two
requests at a time, both cost mostly the kernel's loopback and wake-ups (docs/performance.md).

It answers ``POST /v1/chat/completions`` with the Python upstream's non-streaming body and
content-type, whatever the request asks (no streams), and 404 elsewhere. One process
(``master_process off``), in the foreground, its pid file, temp folders and error log (stderr)
in the bench's temp folder; no access log.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from overhead import _COMPLETION, DIRECT_PATH, HOST

# nginx expands ``$name`` in a ``return`` text and ends a quoted string at ``'``: the body has none.
_BODY = _COMPLETION.decode()
assert not set(_BODY) & set("$'\\"), "the completion needs quoting for nginx.conf"

CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {work}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    server_tokens off;
    client_body_temp_path {work}/nginx-body;
    proxy_temp_path {work}/nginx-proxy;
    fastcgi_temp_path {work}/nginx-fastcgi;
    uwsgi_temp_path {work}/nginx-uwsgi;
    scgi_temp_path {work}/nginx-scgi;
    keepalive_requests 1000000000;
    keepalive_timeout 3600s;
    server {{
        listen {host}:{port} backlog=1024;
        location = {path} {{
            if ($request_method != POST) {{ return 404; }}
            default_type application/json;
            return 200 '{body}';
        }}
        location / {{ return 404; }}
    }}
}}
"""


def find() -> str | None:
    """The nginx binary (Debian's is in /usr/sbin, not always on a user's PATH)."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def upstream(binary: str, work: Path, port: int) -> list[str]:
    """Write ``work/nginx.conf`` for ``port`` and return the command that serves it."""
    conf = work / "nginx.conf"
    conf.write_text(CONF.format(work=work, host=HOST, port=port, path=DIRECT_PATH, body=_BODY))
    # -e: the error log before the config is read (Debian's default is a file under /var/log)
    return [binary, "-p", str(work), "-e", "stderr", "-c", str(conf)]
