"""The tenants room: salons on the platform, their hostnames, Turnstile widgets and one-salon restores.

A one-salon restore reads a backup (`ops.backups`); `bookingctl tenants` and `bookingctl restore tenant`.
"""
