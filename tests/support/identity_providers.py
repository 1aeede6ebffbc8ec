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


SIMPLESAMLPHP = Path("/usr/share/simplesamlphp")
DEBIAN_SIMPLESAMLPHP_CONFIG = Path("/etc/simplesamlphp/config.php")


def saml_idp_missing() -> str | None:
    for what, present in (
        ("SimpleSAMLphp (Debian package simplesamlphp)", (SIMPLESAMLPHP / "www").is_dir()),
        ("php (php-cli, php-xml, php-mbstring)", shutil.which("php") is not None),
        ("xmlsec1", shutil.which("xmlsec1") is not None),
    ):
        if not present:
            return what
    return None


def _php(value) -> str:
    """A Python value as a PHP literal (strings, lists, dicts, booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "[" + ", ".join(f"{_php(k)} => {_php(v)}" for k, v in value.items()) + "]"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_php(v) for v in value) + "]"
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


class SamlIdp:
    """SimpleSAMLphp as a SAML 2.0 IdP under PHP's own server, with `users` ({login: attributes}; any
    password is "password") and one SP (`sp_entity_id`, `acs_url`; with `sls_url`, Single Logout by
    signed messages both ways, the SP's checked against `sp_cert`, a PEM file). Its entity id and
    metadata URL is `metadata_url`."""

    def __init__(self, *, root: Path, users: dict[str, dict], sp_entity_id: str, acs_url: str, sls_url: str = "",
                 sp_cert: Path | None = None):  # fmt: skip
        self.root, self.users, self.sp_entity_id, self.acs_url = root, users, sp_entity_id, acs_url
        self.sls_url, self.sp_cert = sls_url, sp_cert
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.metadata_url = f"{self.base}/saml2/idp/metadata.php"
        self.process: subprocess.Popen | None = None

    def _write_config(self) -> Path:
        config, metadata, cert = (self.root / name for name in ("config", "metadata", "cert"))
        for folder in (config, metadata, cert, self.root / "tmp"):
            folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=idp.test",
             "-keyout", str(cert / "idp.pem"), "-out", str(cert / "idp.crt")],
            check=True, capture_output=True,
        )  # fmt: skip
        overrides = {
            "baseurlpath": f"{self.base}/",
            "certdir": f"{cert}/",
            "metadatadir": f"{metadata}/",
            "tempdir": str(self.root / "tmp"),
            "loggingdir": f"{self.root}/",
            "logging.handler": "errorlog",
            "secretsalt": "campusiq-test-salt",
            "auth.adminpassword": "campusiq-test-admin",
            "enable.saml20-idp": True,
            "module.enable": {"exampleauth": True, "core": True, "saml": True},
            "store.type": "phpsession",
            "session.cookie.secure": False,
            # Its default, SameSite=None, needs Secure, which a browser refuses over plain http: Lax keeps
            # its session through its own login (top-level navigations) as a browser would over https.
            "session.cookie.samesite": "Lax",
            # Where it may send the browser after an IdP-initiated logout (ReturnTo): the loopback services.
            "trusted.url.regex": True,
            "trusted.url.domains": [r"(localhost|127\.0\.0\.1)(:[0-9]+)?"],  # host[:port], as a regex
        }
        text = DEBIAN_SIMPLESAMLPHP_CONFIG.read_text()
        text += "".join(f"\n$config[{_php(key)}] = {_php(value)};" for key, value in overrides.items())
        (config / "config.php").write_text(text + "\n")
        users = {f"{login}:password": attributes for login, attributes in self.users.items()}
        sources = {"admin": ["core:AdminPassword"], "campus-users": {0: "exampleauth:UserPass", **users}}
        (config / "authsources.php").write_text(f"<?php\n$config = {_php(sources)};\n")
        hosted = {"host": "__DEFAULT__", "privatekey": "idp.pem", "certificate": "idp.crt", "auth": "campus-users"}
        (metadata / "saml20-idp-hosted.php").write_text(f"<?php\n$metadata['__DYNAMIC:1__'] = {_php(hosted)};\n")
        sp = {"AssertionConsumerService": self.acs_url, "saml20.sign.assertion": True}
        if self.sls_url:
            sp |= {"SingleLogoutService": self.sls_url, "sign.logout": True}
        if self.sp_cert is not None:
            body = "".join(line for line in self.sp_cert.read_text().splitlines() if "-----" not in line)
            sp |= {"certData": body, "validate.logout": True}  # our LogoutRequests must be signed
        (metadata / "saml20-sp-remote.php").write_text(f"<?php\n$metadata[{_php(self.sp_entity_id)}] = {_php(sp)};\n")
        return config

    def start(self) -> "SamlIdp":
        config = self._write_config()
        env = {**os.environ, "SIMPLESAMLPHP_CONFIG_DIR": str(config)}
        log = (self.root / "php.log").open("ab")
        self.process = subprocess.Popen(
            ["php", "-S", f"127.0.0.1:{self.port}", "-t", str(SIMPLESAMLPHP / "www")],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for_http(self.metadata_url, process=self.process)
        return self

    @property
    def logout_url(self) -> str:
        """Signing out at the IdP itself (IdP-initiated Single Logout), then on to `ReturnTo`."""
        return f"{self.base}/saml2/idp/SingleLogoutService.php"

    def metadata_file(self) -> Path:
        import urllib.request

        path = self.root / "idp-metadata.xml"
        with urllib.request.urlopen(self.metadata_url, timeout=10) as answer:
            path.write_bytes(answer.read())
        return path

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
