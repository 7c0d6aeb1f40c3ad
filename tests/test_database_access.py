"""The service logins' SQL (modules/database/access.py), against a real PostgreSQL server.

The server (tests/conftest.py `postgres`) stands in for RDS: a role `rds_iam`, and a
migration user that is no superuser but may create roles and owns the database, as
the RDS master user is and does (AWS RDS user guide, "Master user account privileges").
The SQL runs as that user, as Flyway's beforeMigrate callback would.
"""

from __future__ import annotations

import pytest

from modules.database.access import DatabaseAccess, access_sql, login_name

MASTER = "app_admin"
DATABASE = "app"
WRITER, READER, REMOVED = "svc_writer", "svc_reader", "svc_removed"
READ_WRITE, READ_ONLY, NONE = DatabaseAccess.READ_WRITE, DatabaseAccess.READ_ONLY, DatabaseAccess.NONE

# Everything the SQL may change: role attributes, memberships, per-role settings, privileges.
STATE = """
SELECT 'role', rolname, rolcanlogin, rolinherit, rolsuper, rolcreaterole, rolcreatedb, rolreplication
  FROM pg_roles WHERE rolname LIKE 'svc\\_%' OR rolname LIKE 'app\\_%' ORDER BY rolname;
SELECT 'member', r.rolname, m.rolname FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid
  JOIN pg_roles m ON m.oid = a.member ORDER BY 2, 3;
SELECT 'setting', r.rolname, s.setconfig::text FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole ORDER BY 2;
SELECT 'acl', n.nspname, c.relname, c.relacl::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname IN ('public', 'other') ORDER BY 2, 3;
SELECT 'schema', nspname, nspacl::text FROM pg_namespace WHERE nspname IN ('public', 'other') ORDER BY 2;
SELECT 'default', defaclrole::regrole::text, defaclnamespace::regnamespace::text, defaclobjtype, defaclacl::text
  FROM pg_default_acl ORDER BY 2, 3, 4;
"""


def _sql(logins: dict[str, DatabaseAccess]) -> str:
    return access_sql(schema="public", migration_user=MASTER, logins=logins)


class Database:
    def __init__(self, server):
        self.server = server

    def as_master(self, sql: str) -> str:
        return self.server.psql(sql, user=MASTER, database=DATABASE).stdout

    def attempt(self, user: str, sql: str):
        return self.server.psql(sql, user=user, database=DATABASE, check=False)

    def state(self) -> str:
        return self.server.psql(STATE, database=DATABASE).stdout


@pytest.fixture(scope="module")
def database(postgres) -> Database:
    postgres.psql(f"""
        CREATE ROLE rds_iam NOLOGIN;
        CREATE ROLE {MASTER} LOGIN CREATEROLE CREATEDB;
        GRANT rds_iam TO {MASTER} WITH ADMIN OPTION;
        CREATE DATABASE {DATABASE} OWNER {MASTER};
    """)
    db = Database(postgres)
    # What the application's first migrations made, before services had logins of their own;
    # and a schema no service was granted.
    db.as_master("""
        CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL);
        INSERT INTO items (name) VALUES ('first');
        CREATE SCHEMA other;
        CREATE TABLE other.hidden (secret text);
    """)
    return db


@pytest.fixture(scope="module")
def granted(database: Database) -> dict[str, str]:
    """The SQL run twice with the same logins (state after each), then again without one of them."""
    logins = {WRITER: READ_WRITE, READER: READ_ONLY, REMOVED: READ_WRITE}
    database.as_master(_sql(logins))
    first = database.state()
    database.as_master(_sql(logins))
    second = database.state()
    database.attempt(REMOVED, "SELECT 1;")  # it could log in before its removal
    logins.pop(REMOVED)
    database.as_master(_sql(logins))
    # A later migration, by the migration user, after the grants ran.
    database.as_master("CREATE TABLE orders (id bigserial PRIMARY KEY, item bigint REFERENCES items);")
    return {"first": first, "second": second}


def test_generated_sql_is_the_same_text_for_the_same_input():
    logins = {READER: READ_ONLY, WRITER: READ_WRITE}
    assert _sql(logins) == _sql(dict(reversed(logins.items())))
    assert _sql(logins) != _sql({READER: READ_WRITE, WRITER: READ_WRITE})


def test_identifiers_are_quoted():
    text = access_sql(schema='we"ird', migration_user="app_admin", logins={"svc_o'brien": READ_ONLY})
    assert 'ON SCHEMA "we""ird"' in text
    assert 'CREATE ROLE "svc_o\'brien";' in text
    assert "rolname = 'svc_o''brien'" in text
    assert 'FOR ROLE "app_admin"' in text


def test_login_names_are_the_service_names_with_a_prefix():
    assert login_name("service1") == "svc_service1"
    assert login_name("orders-api") == "svc_orders_api"


def test_generated_sql_runs_twice_with_the_same_result(granted):
    assert "svc_writer" in granted["first"]
    assert granted["first"] == granted["second"]


def test_logins_are_iam_authenticated_and_no_superusers(granted, database):
    rows = database.server.psql(
        "SELECT m.rolname FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid "
        "JOIN pg_roles m ON m.oid = a.member WHERE r.rolname = 'rds_iam' ORDER BY 1;", database=DATABASE,
    ).stdout.split()
    assert {WRITER, READER} <= set(rows)
    flags = database.server.psql(
        f"SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication FROM pg_roles WHERE rolname = '{WRITER}';",
    ).stdout.strip()
    assert flags == "f|f|f|f"


def test_read_write_service_reads_and_writes_the_tables(granted, database):
    result = database.attempt(WRITER, """
        INSERT INTO items (name) VALUES ('written');
        UPDATE items SET name = 'renamed' WHERE name = 'written';
        SELECT name FROM items ORDER BY id;
        DELETE FROM items WHERE name = 'renamed';
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["first", "renamed"]


@pytest.mark.parametrize("statement", [
    "CREATE TABLE mine (x int);",
    "DROP TABLE items;",
    "ALTER TABLE items ADD COLUMN extra int;",
    "TRUNCATE items;",
    "CREATE SCHEMA mine;",
    "SELECT * FROM other.hidden;",
])
def test_read_write_service_cannot_change_the_schema_or_read_another(granted, database, statement):
    result = database.attempt(WRITER, statement)
    assert result.returncode != 0
    assert "permission denied" in result.stderr or "must be owner" in result.stderr, result.stderr


@pytest.mark.parametrize("statement", [
    "INSERT INTO items (name) VALUES ('x');",
    # A session may turn read-only transactions off; the grants still refuse.
    "SET default_transaction_read_only = off; UPDATE items SET name = 'x';",
    "SET default_transaction_read_only = off; DELETE FROM items;",
    "SET default_transaction_read_only = off; INSERT INTO orders DEFAULT VALUES;",
])
def test_read_only_service_cannot_write(granted, database, statement):
    result = database.attempt(READER, statement)
    assert result.returncode != 0
    assert "permission denied" in result.stderr or "read-only transaction" in result.stderr, result.stderr


def test_read_only_service_reads(granted, database):
    result = database.attempt(READER, "SELECT name FROM items WHERE name = 'first';")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["first"]


def test_removed_service_cannot_log_in(granted, database):
    result = database.attempt(REMOVED, "SELECT 1;")
    assert result.returncode != 0
    assert f'role "{REMOVED}" is not permitted to log in' in result.stderr
    members = database.server.psql(
        f"SELECT r.rolname FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid "
        f"JOIN pg_roles m ON m.oid = a.member WHERE m.rolname = '{REMOVED}' ORDER BY 1;", database=DATABASE,
    ).stdout.split()
    assert "app_read_write" not in members and "app_read_only" not in members


def test_objects_created_by_later_migrations_are_reachable(granted, database):
    writer = database.attempt(WRITER, "INSERT INTO orders (item) VALUES (1) RETURNING id;")
    assert writer.returncode == 0, writer.stderr
    reader = database.attempt(READER, "SELECT count(*) FROM orders;")
    assert reader.returncode == 0, reader.stderr
    assert reader.stdout.strip() == "1"


def test_a_service_set_to_none_loses_its_login(database, granted):
    database.as_master(_sql({WRITER: READ_WRITE, READER: NONE}))
    try:
        result = database.attempt(READER, "SELECT 1;")
        assert "is not permitted to log in" in result.stderr
    finally:
        database.as_master(_sql({WRITER: READ_WRITE, READER: READ_ONLY}))
    assert database.attempt(READER, "SELECT 1;").returncode == 0


def test_a_service_moved_to_read_only_loses_its_writes(database, granted):
    database.as_master(_sql({WRITER: READ_ONLY, READER: READ_ONLY}))
    try:
        result = database.attempt(WRITER, "SET default_transaction_read_only = off; INSERT INTO items (name) VALUES ('x');")
        assert "permission denied" in result.stderr
    finally:
        database.as_master(_sql({WRITER: READ_WRITE, READER: READ_ONLY}))
