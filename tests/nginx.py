"""Run a real nginx on loopback serving one file, as a reference server for tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)

CONFIG = """\
worker_processes 1;
daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    include {mime_types};
    access_log off;
    sendfile on;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    # RFC 9110 §13.1.3: 304 when the resource is not newer than the date (nginx's default
    # is an exact match).
    if_modified_since before;
    server {{
        listen 127.0.0.1:{port};
        location = /{url_name} {{
            alias {file};
            default_type application/octet-stream;
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Nginx:
    process: subprocess.Popen[bytes]
    port: int
    path: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_nginx(workdir: Path, file: Path, url_name: str = "file") -> Nginx:
    assert NGINX is not None
    workdir.mkdir(parents=True, exist_ok=True)
    mime = "/etc/nginx/mime.types"
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(
        CONFIG.format(dir=workdir, port=port, file=file, url_name=url_name, mime_types=mime)
    )
    process = subprocess.Popen(
        [NGINX, "-p", str(workdir), "-c", str(conf), "-e", str(workdir / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"nginx exited: {process.stderr.read().decode() if process.stderr else ''}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return Nginx(process, port, f"/{url_name}")
        except OSError:
            time.sleep(0.02)
    process.kill()
    raise RuntimeError("nginx did not start listening in 10 s")
