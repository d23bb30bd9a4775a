"""A valid production config in the engine's flat form, for tests that change one key of it."""

from __future__ import annotations

SECRETS = {"booking:paystackSecretKey": "sk_test_x", "booking:googleCalendarCredentials": "{}",
           "booking:whatsappToken": "tok"}
BASE = {
    "booking:environment": "production",
    "booking:accountId": "8f3a2c1d9e7b4a6f5c0d1e2f3a4b5c6d",
    "booking:zoneId": "1a2b3c4d5e6f708192a3b4c5d6e7f809",
    # The plan the four rate limiting rules (method and host terms) and the health check need.
    "booking:zonePlan": "business",
    "booking:domain": "www.instylehairboutique.co.za",
    "booking:workerRoute": "/*",
    "booking:databaseName": "appointmentbooking-db",
    "booking:backupRetentionDays": "30",
    "booking:workerName": "appointmentbooking-api",
    "booking:workerBundle": "worker/src/index.js",
    "booking:compatibilityDate": "2026-10-01",
    "booking:pagesProjectName": "appointmentbooking",
    "booking:backupBucketName": "appointmentbooking-backups",
    "booking:alertEmail": "devops@company.com",
    **SECRETS,
}
