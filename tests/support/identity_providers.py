"""Real identity providers for the single sign-on tests, started on loopback ports: panva's
oidc-provider (OpenID Certified, from npm; tests/support/oidc/) under Node.js."""

import json
import os
import shutil
import subprocess
from pathlib import Path

from tests.support.processes import ROOT, free_port, wait_for_http

OIDC_DIR = ROOT / "tests" / "support" / "oidc"


def oidc_provider_missing() -> str | None:
    if shutil.which("node") is None:
        return "Node.js (node)"
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        return "oidc-provider (npm ci --prefix tests/support/oidc; .ci/run does it)"
    return None


class OidcProvider:
    """One provider process: `clients` and `accounts` as tests/support/oidc/provider.mjs reads them."""

    def __init__(self, *, clients: list[dict], accounts: dict[str, dict], log_path: Path):
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.clients, self.accounts, self.log_path = clients, accounts, log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> "OidcProvider":
        env = {
            **os.environ,
            "OIDC_PORT": str(self.port),
            "OIDC_CLIENTS": json.dumps(self.clients),
            "OIDC_ACCOUNTS": json.dumps(self.accounts),
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            ["node", str(OIDC_DIR / "provider.mjs")], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        wait_for_http(f"{self.issuer}/.well-known/openid-configuration", process=self.process)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
