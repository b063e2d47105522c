"""deploy/nginx.conf run by a real nginx in a throwaway prefix, in front of gateways started by a test."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
import trustme

from tests.conftest import ROOT, Process, free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
ACCESS_LOG = "/var/log/nginx/gemgate.access.log"
needs_nginx = pytest.mark.skipif(
    not os.access(NGINX, os.X_OK),
    reason="nginx is not installed (apt-get install -y nginx; .ci/run installs it)",
)


class Nginx:
    """deploy/nginx.conf with its ports and certificate pointed at this test; its upstream block lists
    `gateway_ports` (one instance, or several sharing a store)."""

    def __init__(self, tmp_path: Path, gateway_ports: list[int]):
        self.dir = tmp_path / "nginx"
        (self.dir / "logs").mkdir(parents=True)
        self.http_port, self.https_port = free_port(), free_port()
        ca = trustme.CA()
        cert = ca.issue_cert("localhost", "127.0.0.1")
        self.ca_file = self.dir / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        cert.private_key_pem.write_to_path(str(self.dir / "server.key"))
        (self.dir / "server.pem").write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
        site = (ROOT / "deploy" / "nginx.conf").read_text()
        servers = "\n    ".join(f"server 127.0.0.1:{port};" for port in gateway_ports)
        for old, new in (
            ("server 127.0.0.1:7860;", servers),
            ("listen 80;", f"listen 127.0.0.1:{self.http_port};"),
            ("listen 443 ssl;", f"listen 127.0.0.1:{self.https_port} ssl;"),
            ("/etc/ssl/certs/gemgate.example.com.pem", str(self.dir / "server.pem")),
            ("/etc/ssl/private/gemgate.example.com.key", str(self.dir / "server.key")),
        ):
            assert site.count(old) == 1, f"the sample changed: {old!r}"  # keep this test in step with it
            site = site.replace(old, new)
        self.access_log = self.dir / "logs" / "access.log"
        assert site.count(ACCESS_LOG) == 2  # both servers, the redirect included
        site = site.replace(ACCESS_LOG, str(self.access_log))
        (self.dir / "site.conf").write_text(site)
        temp = "\n".join(
            f"  {kind}_temp_path {self.dir / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        self.conf = self.dir / "nginx.conf"
        self.conf.write_text(
            f"daemon off;\nworker_processes 1;\npid {self.dir / 'nginx.pid'};\nerror_log stderr;\n"
            f"{'user root;' if os.geteuid() == 0 else ''}\n"
            f"events {{ worker_connections 128; }}\n"
            f"http {{\n  access_log off;\n{temp}\n  include {self.dir / 'site.conf'};\n}}\n"
        )

    def command(self, *extra: str) -> list[str]:
        return [NGINX, "-p", str(self.dir), "-c", str(self.conf), "-e", "stderr", *extra]

    def url(self, path: str) -> str:
        return f"https://localhost:{self.https_port}{path}"

    def start(self, tmp_path: Path) -> Process:
        """Run it until /healthz answers through it; the caller stops the process."""
        proc = Process(self.command(), dict(os.environ), tmp_path / "nginx.log")
        deadline = time.monotonic() + 10
        while True:
            try:
                requests.get(self.url("/healthz"), verify=str(self.ca_file), timeout=2).raise_for_status()
                return proc
            except requests.RequestException:
                if proc.proc.poll() is not None or time.monotonic() > deadline:
                    proc.stop()
                    raise RuntimeError(f"nginx did not come up:\n{proc.output()}") from None
                time.sleep(0.1)

    def check(self) -> subprocess.CompletedProcess:
        return subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=30)
