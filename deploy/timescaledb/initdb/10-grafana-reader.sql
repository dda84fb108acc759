-- Read-only login for Grafana: SELECT on everything in schema public, now and later.
--
-- Run by the TimescaleDB/PostgreSQL image on first start (/docker-entrypoint-initdb.d, as
-- POSTGRES_USER in POSTGRES_DB), before `hanoi-ioc db upgrade` creates the tables: the default
-- privileges below make every table and view that POSTGRES_USER creates later readable.
-- Idempotent, so it can also be run by hand on an existing database (psql >= 15):
--   GRAFANA_DB_PASSWORD=... psql -v ON_ERROR_STOP=1 -d hanoi -f 10-grafana-reader.sql
-- The password comes from the environment (never from this file).
\getenv reader_password GRAFANA_DB_PASSWORD
\if :{?reader_password}
\else
  \warn 'GRAFANA_DB_PASSWORD is not set'
  DO $$ BEGIN RAISE EXCEPTION 'GRAFANA_DB_PASSWORD must be set to create grafana_reader'; END $$;
\endif

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'grafana_reader') THEN
        CREATE ROLE grafana_reader NOLOGIN;
    END IF;
END $$;
ALTER ROLE grafana_reader WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT
    CONNECTION LIMIT 20 PASSWORD :'reader_password';
-- Dashboards only read; a runaway panel query is cut off instead of loading the database.
ALTER ROLE grafana_reader SET default_transaction_read_only = on;
ALTER ROLE grafana_reader SET statement_timeout = '30s';
ALTER ROLE grafana_reader SET idle_in_transaction_session_timeout = '60s';

SELECT format('GRANT CONNECT ON DATABASE %I TO grafana_reader', current_database()) \gexec
GRANT USAGE ON SCHEMA public TO grafana_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO grafana_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO grafana_reader;
