"""A real Temporal cluster needs TLS: the clients connect with mTLS (certificates made
here) through a TLS-terminating proxy in front of the dev server (which has no TLS of its
own), and refuse bad settings at start-up with messages naming them.

The proxy is Debian's HAProxy, not stunnel: the SDK's gRPC client (tonic) requires ALPN
``h2`` and stunnel 5.68 (Debian 12) cannot negotiate ALPN — it fails with
``H2NotNegotiated``. HAProxy terminates TLS in TCP mode with ``alpn h2`` and
``verify required`` (a client certificate signed by the test CA)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from temporalio.client import Client

from domain.settings import Settings, SettingsError
from ops.search_attributes import require_search_attributes
from ops.temporal import connect, tls_config
from tests.conftest import ROOT, settings_env, started_app
from tests.support import eventually, free_port

SERVER_NAME = "temporal.co.test"
HAPROXY = shutil.which("haproxy") or (
    "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer or (name, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(SERVER_NAME), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_pki(folder: Path) -> Pki:
    ca_key = _key()
    ca = _cert("CO test CA", ca_key, None, ca=True)
    issuer = (ca.subject, ca_key)
    server_key, client_key = _key(), _key()
    server = _cert(SERVER_NAME, server_key, issuer, server=True)
    client = _cert("co-worker", client_key, issuer)
    files = {
        "ca.pem": ca.public_bytes(serialization.Encoding.PEM),
        "server.pem": server.public_bytes(serialization.Encoding.PEM),
        "server.key": _pem_key(server_key),
        "client.pem": client.public_bytes(serialization.Encoding.PEM),
        "client.key": _pem_key(client_key),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
        (folder / name).chmod(0o600)
    return Pki(*(folder / n for n in files))


@dataclass
class Proxy:
    address: str
    pki: Pki


@pytest.fixture(scope="module")
async def mtls_proxy(
    temporal_client: Client, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Proxy]:
    """HAProxy accepting TLS 1.2+ (ALPN h2) with a client certificate of the test CA only."""
    if HAPROXY is None:
        pytest.skip("haproxy is not installed (apt-get install haproxy; .ci/run does)")
    folder = tmp_path_factory.mktemp("mtls")
    pki = make_pki(folder)
    combined = folder / "server-combined.pem"
    combined.write_bytes(pki.server_cert.read_bytes() + pki.server_key.read_bytes())
    port = free_port()
    target = temporal_client.service_client.config.target_host.replace("localhost", "127.0.0.1")
    conf = folder / "haproxy.cfg"
    conf.write_text(
        "global\n"
        "  ssl-default-bind-options ssl-min-ver TLSv1.2\n"
        "defaults\n"
        "  mode tcp\n"
        "  timeout connect 5s\n"
        "  timeout client 5m\n"
        "  timeout server 5m\n"
        "frontend temporal_tls\n"
        f"  bind 127.0.0.1:{port} ssl crt {combined} ca-file {pki.ca} verify required alpn h2\n"
        "  default_backend temporal\n"
        "backend temporal\n"
        f"  server dev {target}\n"
    )
    proc = subprocess.Popen(
        [HAPROXY, "-db", "-f", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:

        async def listening() -> bool:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return True
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            return False

        await eventually(listening, timeout=10, failure=lambda: "haproxy never listened")
        yield Proxy(f"127.0.0.1:{port}", pki)
    finally:
        proc.terminate()
        proc.wait(10)


def mtls_settings(make: Callable[..., Settings], proxy: Proxy, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "temporal_address": proxy.address,
        "temporal_tls_ca": str(proxy.pki.ca),
        "temporal_tls_client_cert": str(proxy.pki.client_cert),
        "temporal_tls_client_key": str(proxy.pki.client_key),
        "temporal_tls_server_name": SERVER_NAME,
    }
    values.update(overrides)
    return make(**values)


async def test_clients_connect_with_mtls_through_a_tls_proxy(
    mtls_proxy: Proxy, make_settings: Callable[..., Settings]
) -> None:
    # The certificate and key inline, as ECS injects them from Secrets Manager.
    settings = mtls_settings(
        make_settings,
        mtls_proxy,
        temporal_tls_client_cert=mtls_proxy.pki.client_cert.read_text(),
        temporal_tls_client_key=mtls_proxy.pki.client_key.read_text().replace("\n", "\\n"),
    )
    client = await connect(settings)
    await require_search_attributes(client, settings.temporal_namespace)
    count = await client.count_workflows()
    assert count.count >= 0


async def test_the_proxy_refuses_a_client_without_a_certificate(
    mtls_proxy: Proxy, make_settings: Callable[..., Settings]
) -> None:
    settings = mtls_settings(
        make_settings,
        mtls_proxy,
        temporal_tls_client_cert=None,
        temporal_tls_client_key=None,
    )
    with pytest.raises(RuntimeError, match="Failed client connect"):
        await connect(settings)


async def test_the_setup_tool_uses_the_tls_settings(
    mtls_proxy: Proxy, make_settings: Callable[..., Settings]
) -> None:
    env = settings_env(mtls_settings(make_settings, mtls_proxy))
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tools.temporal_setup", "--attempts", "3"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "already registered" in result.stdout


async def test_the_api_and_the_worker_reach_temporal_over_mtls(
    mtls_proxy: Proxy, make_settings: Callable[..., Settings]
) -> None:
    from api.app import create_app

    settings = mtls_settings(make_settings, mtls_proxy)
    async with AsyncExitStack() as stack:
        app = await started_app(create_app(settings), stack)
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://co.test")
        )
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text

    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker",
        cwd=ROOT,
        env=settings_env(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert worker.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(30):
            while not any("worker started" in line for line in lines):
                line = (await worker.stdout.readline()).decode()
                assert line, "".join(lines)  # exited before it started
                lines.append(line)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(worker.wait(), 30) == 0, "".join(lines)


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (
            {"temporal_tls_client_cert": "-----BEGIN CERTIFICATE-----\nx\n"},
            "CLIENT_KEY is required",
        ),
        (
            {"temporal_tls_client_key": "-----BEGIN PRIVATE KEY-----\nx\n"},
            "CLIENT_CERT is required",
        ),
        ({"temporal_tls_ca": "/nonexistent/ca.pem"}, "CO_TEMPORAL_TLS_CA is neither a PEM"),
    ],
)
def test_bad_tls_settings_stop_the_api_at_start_up_naming_the_variable(
    make_settings: Callable[..., Settings], overrides: dict[str, str], says: str
) -> None:
    from api.app import create_app

    settings = make_settings(**overrides)
    with pytest.raises(SettingsError, match=says):
        create_app(settings)


def test_tls_is_off_for_the_dev_server_and_on_with_an_api_key(
    make_settings: Callable[..., Settings],
) -> None:
    assert tls_config(make_settings()) is False
    assert tls_config(make_settings(temporal_api_key="key-123")) is True
    assert tls_config(make_settings(temporal_api_key="", temporal_tls_ca=" ")) is False
