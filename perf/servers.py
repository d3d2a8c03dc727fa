"""Start and stop the servers under test: streme, nginx and aiohttp, each by its PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
URL_PATH = "/stream/proxy/{infohash}"

NGINX_CONF = """\
worker_processes 1;
daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    include /etc/nginx/mime.types;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location = /stream/proxy/{infohash} {{ alias {file}; }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    path: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        """utime + stime of the server process, in seconds."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _wait_ready(process: subprocess.Popen[bytes], port: int, path: str, name: str) -> None:
    deadline = time.monotonic() + 20
    request = f"HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(request)
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    process.kill()
    process.wait(timeout=10)
    raise RuntimeError(f"{name} did not answer 200 on {path} within 20 s")


def start_streme(cache_dir: Path, infohash: str, workdir: Path) -> Server:
    port = free_port()
    streme = Path(sys.executable).with_name("streme")
    log = (workdir / "streme.log").open("wb")
    process = subprocess.Popen(
        [
            str(streme),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--cache-dir",
            str(cache_dir),
            "--log-level",
            "warning",
        ],
        stdout=log,
        stderr=log,
    )
    log.close()
    path = URL_PATH.format(infohash=infohash)
    _wait_ready(process, port, path, "streme")
    return Server("streme", process, port, path)


def start_nginx(file: Path, infohash: str, workdir: Path) -> Server:
    port = free_port()
    ngx_dir = workdir / "nginx"
    ngx_dir.mkdir(exist_ok=True)
    conf = ngx_dir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=ngx_dir, port=port, file=file, infohash=infohash))
    process = subprocess.Popen(
        [NGINX, "-p", str(ngx_dir), "-c", str(conf), "-e", str(ngx_dir / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    path = URL_PATH.format(infohash=infohash)
    _wait_ready(process, port, path, "nginx")
    return Server("nginx", process, port, path)


def start_aiohttp(file: Path, infohash: str, workdir: Path) -> Server:
    port = free_port()
    script = Path(__file__).with_name("aiohttp_server.py")
    process = subprocess.Popen(
        [sys.executable, str(script), str(port), str(file)],
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "aiohttp.log").open("wb"),
    )
    path = URL_PATH.format(infohash=infohash)
    _wait_ready(process, port, path, "aiohttp")
    return Server("aiohttp", process, port, path)
