"""HTTPS from the network tools, through the TLS context every outbound client shares: the guard connects to the
vetted address itself, so the certificate is checked against the URL's host name (sent as SNI), and a certificate
from an authority the system does not trust is refused.

Trusting the test's authority adds it to the shared context of this test process (no other test speaks TLS)."""

import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer

import pytest
import trustme

from runwire.tools.base import ToolContext
from runwire.tools.tls import client_tls_context
from tests.helpers import ToolServerHandler, run_tool, tool_error


@pytest.fixture
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def https_port(authority: trustme.CA) -> Iterator[int]:
    """An HTTPS server on 127.0.0.1 whose certificate, from `authority`, names only `localhost`."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_context)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), ToolServerHandler)
    httpd.socket = server_context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_every_outbound_client_shares_one_tls_context_that_checks_certificates() -> None:
    context = client_tls_context()
    assert client_tls_context() is context
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_https_is_fetched_from_the_vetted_address_and_checked_against_the_hosts_name(
    https_port: int, authority: trustme.CA, make_ctx: Callable[..., ToolContext]
) -> None:
    ctx = make_ctx(allowed_hosts=frozenset({"localhost", "127.0.0.1"}))
    untrusted = tool_error("http_request", {"method": "GET", "url": f"https://localhost:{https_port}/json"}, ctx)
    assert untrusted.code == "network_error" and "CERTIFICATE_VERIFY_FAILED" in untrusted.message

    authority.configure_trust(client_tls_context())
    fetched = run_tool("http_request", {"method": "GET", "url": f"https://localhost:{https_port}/json"}, ctx)
    assert fetched["status"] == 200

    # The same server by its address: the certificate names only localhost.
    wrong_name = tool_error("http_request", {"method": "GET", "url": f"https://127.0.0.1:{https_port}/json"}, ctx)
    assert wrong_name.code == "network_error" and "CERTIFICATE_VERIFY_FAILED" in wrong_name.message
