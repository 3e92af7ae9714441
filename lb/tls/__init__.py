"""TLS on both sides of lb: what a `bind ... ssl` line serves and what a
`server ... ssl` connects with.

``certs``: reading certificate, key and CA files with HAProxy's texts for what is
wrong with them; ``frontend``: the ``ssl.SSLContext`` of a bind line (certificates
chosen by SNI, client certificates, versions, ciphers, ALPN) and what a connection
negotiated (the ``ssl_fc*``/``ssl_c*`` fetches); ``backend``: the context lb
connects to a TLS server with.

Imports nothing from lb but lb.config.model.
"""

# seconds lb waits for the peer's close_notify once it has sent its own, before it
# closes the socket (HAProxy does not wait; the event loop's default is 30 s)
SHUTDOWN_WAIT = 1.0
