-- Run by psql as the superuser at every start of the embedded PostgreSQL (voyagent/embedded_pg.py), after
-- \set lines giving superuser, superuser_password, app_role, app_password and database. Every step is
-- idempotent: the same script sets up a new cluster and upgrades one made by an earlier version, where the
-- application connected as the superuser and so the superuser owns the database and everything in it.
\set ON_ERROR_STOP on
-- These statements carry passwords: a failing one must not be copied into the server log.
SET log_min_error_statement = panic;

ALTER ROLE :"superuser" PASSWORD :'superuser_password';
SELECT format('CREATE ROLE %I', :'app_role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_role') \gexec
ALTER ROLE :"app_role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'app_password';

SELECT format('CREATE DATABASE %I OWNER %I TEMPLATE template0', :'database', :'app_role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database') \gexec
ALTER DATABASE :"database" OWNER TO :"app_role";

-- Hand the superuser's objects in the database to the application role one by one (REASSIGN OWNED refuses
-- the bootstrap superuser, which owns the system catalogs). Objects that follow another one are left to it:
-- sequences owned by a column follow their table, extension members their extension (created by the
-- superuser, they stay its), array and multirange types their base type.
\connect :database
SELECT format('ALTER %s %s OWNER TO %I', kind, name, :'app_role')
  FROM (SELECT 'SCHEMA', quote_ident(nspname), nspowner, oid, 'pg_namespace'::regclass, oid
          FROM pg_namespace
        UNION ALL
        SELECT CASE relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                            WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
               c.oid::regclass::text, relowner, relnamespace, 'pg_class'::regclass, c.oid
          FROM pg_class c
         WHERE relkind IN ('r', 'p', 'v', 'm', 'f')
            OR relkind = 'S' AND NOT EXISTS (SELECT FROM pg_depend d
                                              WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                                AND d.refclassid = 'pg_class'::regclass
                                                AND d.deptype IN ('a', 'i'))
        UNION ALL
        SELECT 'TYPE', t.oid::regtype::text, typowner, typnamespace, 'pg_type'::regclass, t.oid
          FROM pg_type t LEFT JOIN pg_class c ON c.oid = t.typrelid
         WHERE typtype IN ('e', 'd', 'r') OR typtype = 'c' AND c.relkind = 'c'
        UNION ALL
        SELECT 'ROUTINE', p.oid::regprocedure::text, proowner, pronamespace, 'pg_proc'::regclass, p.oid
          FROM pg_proc p) AS owned (kind, name, owner, namespace, classid, objid)
  JOIN pg_namespace n ON n.oid = owned.namespace
 WHERE owner = :'superuser'::regrole
   AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
   AND NOT EXISTS (SELECT FROM pg_depend e
                    WHERE e.classid = owned.classid AND e.objid = owned.objid AND e.deptype = 'e')
 ORDER BY kind = 'SCHEMA' DESC \gexec
