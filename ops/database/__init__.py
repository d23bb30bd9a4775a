"""The database room: SQL scripts, dumps and loads, migrations and their safety check, seed data.

Below every other room: backups, tenants, observation and releases read and write the database
through it; it imports nothing of theirs.
"""
