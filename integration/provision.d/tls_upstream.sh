# TLS origination tests: `openssl s_server` is the TLS upstream (it prints the SNI and ALPN
# extensions it receives with -tlsextdebug).
need openssl openssl
