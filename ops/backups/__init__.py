"""The backups room: dumps of the stack's D1 into its R2 bucket, their listing, checks and restores.

Reads the database through `ops.database`; `bookingctl backup` and `bookingctl restore database`.
"""
