"""SAML metadata as a federation publishes it, for the metadata tests: key pairs made here (cryptography),
documents signed by Debian's xmlsec1 with them, and an HTTPS server on a loopback port with a certificate
of its own, which `requests` trusts because the test names it in REQUESTS_CA_BUNDLE (as an operator
would a campus CA): production keeps its https-only, verified fetch."""

import datetime
import http.server
import re
import ssl
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

MD = "urn:oasis:names:tc:SAML:2.0:metadata"


@dataclass(frozen=True)
class KeyPair:
    key: Path
    cert: Path


def key_pair(folder: Path, name: str, *, ip: str | None = None) -> KeyPair:
    """A new RSA key and its self-signed certificate (PEM), for the host `ip` if given (TLS)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
    )
    if ip:
        import ipaddress

        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), False)
    cert = builder.sign(key, hashes.SHA256())
    pair = KeyPair(key=folder / f"{name}.key", cert=folder / f"{name}.crt")
    pair.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return pair


def idp_metadata(entity_id: str, *, role: str = "IDPSSODescriptor") -> str:
    """An IdP's metadata as its operator publishes it, unsigned (`role` SPSSODescriptor: an SP's)."""
    service = (
        '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
        'Location="https://idp.uni.example/sso"/>'
        if role == "IDPSSODescriptor"
        else '<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
        'Location="https://sp.uni.example/acs" index="0"/>'
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<md:EntityDescriptor xmlns:md="{MD}" entityID="{entity_id}">\n'
        f'  <md:{role} protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">\n    {service}\n'
        f"  </md:{role}>\n</md:EntityDescriptor>\n"
    )


SIGNATURE_TEMPLATE = """<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>
<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>
<ds:Reference URI="#{id}"><ds:Transforms>
<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>
<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>
<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference>
</ds:SignedInfo><ds:SignatureValue/>
<ds:KeyInfo><ds:X509Data><ds:X509Certificate/></ds:X509Data></ds:KeyInfo></ds:Signature>"""


def signed(document: str, signer: KeyPair, *, valid_until: datetime.datetime | None = None, id: str = "_md") -> bytes:
    """`document` with an ID (and a validUntil) on its root, signed as a whole by `signer` with xmlsec1,
    the signature the root's first child, as federations sign their metadata."""
    root = re.search(r"<((?:\w+:)?(EntityDescriptor|EntitiesDescriptor))\b([^>]*?)>", document)
    attributes = f' ID="{id}"' + (f' validUntil="{valid_until:%Y-%m-%dT%H:%M:%SZ}"' if valid_until else "")
    template = (
        document[: root.start()]
        + f"<{root.group(1)}{root.group(3)}{attributes}>"
        + SIGNATURE_TEMPLATE.format(id=id)
        + document[root.end() :]
    )
    with tempfile.TemporaryDirectory() as folder:
        unsigned, out = Path(folder) / "in.xml", Path(folder) / "out.xml"
        unsigned.write_text(template)
        subprocess.run(
            ["xmlsec1", "--sign", "--privkey-pem", f"{signer.key},{signer.cert}", "--id-attr:ID",
             f"{MD}:{root.group(2)}", "--output", str(out), str(unsigned)],
            check=True, capture_output=True,
        )  # fmt: skip
        return out.read_bytes()


class MetadataServer:
    """HTTPS on a loopback port: GET answers `documents[path]` (404 otherwise) after `delay` seconds, or,
    with `dribble`, the headers and then a byte every `dribble` seconds, for a minute or more. `hits`
    counts the requests."""

    def __init__(self, tls: KeyPair):
        self.documents: dict[str, bytes] = {}
        self.delay, self.dribble, self.hits = 0.0, 0.0, 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits += 1
                time.sleep(server.delay)
                body = server.documents.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/samlmetadata+xml")
                if not server.dribble:
                    self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                try:
                    if server.dribble:
                        for _ in range(int(60 / server.dribble)):
                            self.wfile.write(b" ")
                            self.wfile.flush()
                            time.sleep(server.dribble)
                    self.wfile.write(body or b"")
                except OSError:
                    pass  # the client gave up

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls.cert, tls.key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def reset(self) -> None:
        self.documents.clear()
        self.delay, self.dribble, self.hits = 0.0, 0.0, 0

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
