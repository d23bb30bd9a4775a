"""How long backups are kept: the guide's retention per environment, and R2's unit of age."""

# The guide: production keeps 30 days of backups, staging 7.
RETENTION_DAYS = {"production": 30, "staging": 7}
# R2 lifecycle rules count an object's age in seconds.
SECONDS_PER_DAY = 86_400
