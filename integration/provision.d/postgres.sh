# PostgreSQL for the postgres_proxy tests: the server (initdb, postgres: Debian keeps them in
# /usr/lib/postgresql/<version>/bin, off PATH), psql and pgbench (postgresql-client), and
# openssl for the SSL pass-through test's certificate. The tests start their own throw-away
# clusters; the package's own cluster service is kept from starting by run-tests.sh.
need psql postgresql-client
need pgbench postgresql-client
need openssl openssl
need setpriv util-linux
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    missing+=(postgresql)
fi
