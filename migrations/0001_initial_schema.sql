-- Migration 0001: the schema the admin guide's queries read.
--
-- Timestamps are TEXT 'YYYY-MM-DD HH:MM:SS' in UTC (SQLite's datetime('now')), because every
-- query in the guide compares them with datetime('now', '-N days'). No BEGIN/COMMIT: the D1 HTTP
-- API rejects explicit transactions; atomicity is the migration runner's job.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    hostname    TEXT UNIQUE,
    status      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at  TEXT NOT NULL DEFAULT (datetime('now'))
);

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT REFERENCES tenants(id),
    email       TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL DEFAULT 'customer' CHECK (role IN ('customer', 'staff', 'admin', 'owner')),
    status      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled', 'invited')),
    created_at  TEXT NOT NULL DEFAULT (datetime('now')),
    last_login  TEXT
);
CREATE INDEX idx_users_tenant ON users(tenant_id);
CREATE INDEX idx_users_last_login ON users(last_login);
CREATE INDEX idx_users_created_at ON users(created_at);

CREATE TABLE services (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id),
    name              TEXT NOT NULL,
    duration_minutes  INTEGER NOT NULL CHECK (duration_minutes > 0),
    price_cents       INTEGER NOT NULL DEFAULT 0 CHECK (price_cents >= 0),
    active            INTEGER NOT NULL DEFAULT 1,
    created_at        TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE INDEX idx_services_tenant ON services(tenant_id);

CREATE TABLE appointments (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    service_id  TEXT NOT NULL REFERENCES services(id),
    user_id     TEXT NOT NULL REFERENCES users(id),
    starts_at   TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'booked'
                CHECK (status IN ('booked', 'confirmed', 'cancelled', 'completed', 'no_show')),
    payment_reference TEXT,
    notes       TEXT,
    created_at  TEXT NOT NULL DEFAULT (datetime('now'))
);
-- The guide's "appointments of a tenant in the last 7 days, newest first" query.
CREATE INDEX idx_appointments_tenant_created ON appointments(tenant_id, created_at);
CREATE INDEX idx_appointments_created ON appointments(created_at);
CREATE INDEX idx_appointments_service ON appointments(service_id);
CREATE INDEX idx_appointments_user ON appointments(user_id);

CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL DEFAULT (datetime('now')),
    expires_at  TEXT NOT NULL,
    ip_address  TEXT,
    user_agent  TEXT
);
CREATE INDEX idx_sessions_user ON sessions(user_id);
CREATE INDEX idx_sessions_expires ON sessions(expires_at);

CREATE TABLE permissions (
    id               TEXT PRIMARY KEY,
    permission_name  TEXT NOT NULL UNIQUE,
    resource_type    TEXT NOT NULL,
    action           TEXT NOT NULL
);

CREATE TABLE user_permissions (
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    permission_id  TEXT NOT NULL REFERENCES permissions(id) ON DELETE CASCADE,
    granted_at     TEXT NOT NULL DEFAULT (datetime('now')),
    PRIMARY KEY (user_id, permission_id)
);

CREATE TABLE role_audit_log (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id        TEXT NOT NULL REFERENCES users(id),
    changed_by     TEXT REFERENCES users(id),
    action         TEXT NOT NULL,
    resource_type  TEXT,
    old_value      TEXT,
    new_value      TEXT,
    created_at     TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE INDEX idx_role_audit_created ON role_audit_log(created_at);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id),
    name        TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL DEFAULT (datetime('now')),
    last_used   TEXT,
    expires_at  TEXT
);
CREATE INDEX idx_api_keys_user ON api_keys(user_id);

CREATE TABLE api_usage_logs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    api_key_id        TEXT REFERENCES api_keys(id),
    user_id           TEXT,
    ip_address        TEXT,
    endpoint          TEXT,
    status_code       INTEGER,
    response_time_ms  INTEGER,
    timestamp         TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE INDEX idx_api_usage_timestamp ON api_usage_logs(timestamp);
CREATE INDEX idx_api_usage_key_ip ON api_usage_logs(api_key_id, ip_address, timestamp);

CREATE TABLE auth_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    email       TEXT,
    ip_address  TEXT NOT NULL,
    success     INTEGER NOT NULL CHECK (success IN (0, 1)),
    user_agent  TEXT,
    timestamp   TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE INDEX idx_auth_attempts_failed ON auth_attempts(success, timestamp);
CREATE INDEX idx_auth_attempts_ip ON auth_attempts(ip_address, timestamp);

CREATE TABLE audit_logs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id      TEXT,
    user_id        TEXT,
    action         TEXT NOT NULL,
    resource_type  TEXT,
    resource_id    TEXT,
    ip_address     TEXT,
    user_agent     TEXT,
    timestamp      TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE INDEX idx_audit_logs_timestamp ON audit_logs(timestamp);
CREATE INDEX idx_audit_logs_user ON audit_logs(user_id, timestamp);
