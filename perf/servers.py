"""Start and stop the servers under test (streme, nginx, aiohttp), each by its own PID.

Each server gets a port picked by binding port 0, and counts as ready once a TCP connect
plus `GET <path>` with `Range: bytes=0-0` answers 2xx (polled, 20 s at most). `stop()`
sends SIGTERM to that PID, then SIGKILL after 15 s; nothing is ever killed by name.

nginx runs with `master_process off`: one process that both accepts and serves, so its
PID is the one that does the work and /proc/PID/stat holds all of its CPU time, as for
the two single-process Python servers. (With a master, the worker would be a child that
is not reaped until the end, and its CPU would not show up in the master's cutime.)
"""

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
READY_TIMEOUT_S = 20.0

NGINX_CONF = """\
worker_processes {workers};
worker_rlimit_nofile 16384;
daemon off;
master_process {master};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 8192; }}
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


class Unavailable(RuntimeError):
    """The server cannot run here (not installed, not written yet, or failed to start)."""


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

    def alive(self) -> bool:
        return self.process.poll() is None

    def cpu_seconds(self) -> float:
        """utime + stime of the server and its reaped children (/proc/PID/stat), in s."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # After the ")": state is field 3 of proc(5), so utime (14) is index 11 here.
        utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
        return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")

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


def _answers(port: int, path: str) -> bool:
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: bytes=0-0\r\n\r\n".encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(request)
            return sock.recv(64).startswith(b"HTTP/1.1 2")
    except OSError:
        return False


def _wait_ready(process: subprocess.Popen[bytes], port: int, path: str, name: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Unavailable(f"{name} exited with status {process.returncode}")
        if _answers(port, path):
            return
        time.sleep(0.05)
    process.kill()
    process.wait(timeout=10)
    raise Unavailable(f"{name} did not answer 2xx on {path} within {READY_TIMEOUT_S:g} s")


def _spawn(
    name: str, argv: list[str], log: Path, port: int, path: str, pythonpath: Path | None = None
) -> Server:
    with log.open("wb") as out:
        # Cache hits only: P2P off, so streme starts no libtorrent session (no DHT).
        env = {**os.environ, "STREME_P2P_ENABLED": "0"}
        if pythonpath is not None:  # an older streme's source tree shadows the installed one
            env["PYTHONPATH"] = str(pythonpath)
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_ready(process, port, path, name)
    except BaseException:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        raise
    return Server(name, process, port, path)


def _tail(log: Path, lines: int = 5) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def streme_missing() -> str | None:
    """Why `streme serve` cannot be benchmarked here, or None if it looks runnable."""
    streme = Path(sys.executable).with_name("streme")
    if not streme.exists():
        return f"{streme} not found (run `make install`)"
    probe = subprocess.run(
        [str(streme), "serve", "--help"], capture_output=True, text=True, timeout=30, check=False
    )
    if probe.returncode != 0:
        return f"`streme serve --help` failed: {(probe.stderr or probe.stdout).strip()[-300:]}"
    return None


def start_streme(
    cache_dir: Path,
    infohash: str,
    workdir: Path,
    source: Path | None = None,
    workers: int = 1,
    log_level: str | None = None,
) -> Server:
    """streme as installed, or (`source`) the package tree of another revision of it;
    at its default log level, as a user runs it, unless `log_level`."""
    port = free_port()
    argv = [sys.executable, "-m", "streme", "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--cache-dir", str(cache_dir)]
    if workers > 1:
        argv += ["--workers", str(workers)]
    if log_level is not None:
        argv += ["--log-level", log_level]
    name = "streme" if source is None else "baseline"
    log = workdir / f"{name}-{port}.log"
    try:
        return _spawn(name, argv, log, port, URL_PATH.format(infohash=infohash), source)
    except Unavailable as exc:
        raise Unavailable(f"{exc}; log: {_tail(log)}") from None


def start_nginx(file: Path, infohash: str, workdir: Path, workers: int = 1) -> Server:
    """nginx serving `file`; with `workers` > 1, a master and that many worker processes
    (the Server's CPU then counts only what the master reaped: use it for rates only)."""
    port = free_port()
    ngx_dir = workdir / ("nginx" if workers == 1 else f"nginx-{workers}w")
    ngx_dir.mkdir(exist_ok=True)
    conf = ngx_dir / "nginx.conf"
    master = "off" if workers == 1 else "on"
    conf.write_text(
        NGINX_CONF.format(
            dir=ngx_dir, port=port, file=file, infohash=infohash, workers=workers, master=master
        )
    )
    argv = [NGINX, "-p", str(ngx_dir), "-c", str(conf), "-e", str(ngx_dir / "error.log")]
    check = subprocess.run([*argv, "-t"], capture_output=True, text=True, timeout=30, check=False)
    if check.returncode != 0:
        raise Unavailable(f"nginx -t rejected the config: {check.stderr.strip()}")
    log = ngx_dir / "stderr.log"
    try:
        return _spawn("nginx", argv, log, port, URL_PATH.format(infohash=infohash))
    except Unavailable as exc:
        raise Unavailable(f"{exc}; log: {_tail(ngx_dir / 'error.log')}") from None


def start_aiohttp(file: Path, infohash: str, workdir: Path) -> Server:
    port = free_port()
    script = Path(__file__).with_name("aiohttp_server.py")
    argv = [sys.executable, str(script), str(port), str(file)]
    log = workdir / "aiohttp.log"
    try:
        return _spawn("aiohttp", argv, log, port, URL_PATH.format(infohash=infohash))
    except Unavailable as exc:
        raise Unavailable(f"{exc}; log: {_tail(log)}") from None
