"""The TLS context of every connection Runwire opens to another server (models, network tools, MCP servers). Building
one reads the system's CA certificates, about 20 ms of CPU, which each model call and each network tool step paid for
a client of its own."""

import functools
import ssl

import httpx


@functools.cache
def client_tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()
