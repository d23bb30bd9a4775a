-- Migration 0002: which SaaS salons' Turnstile widget lists the tenant's hostname
-- (booking:turnstile.saasWidgets: widget 0, 1, ...), written by `bookingctl tenants add`; the Worker
-- verifies the salon's bookings with that widget's secret. NULL: not a SaaS salon, or one onboarded
-- before there were several widgets (then widget 0, the only one there was).
--
-- Expand only (`migrate check`: safe): a nullable column without a CHECK, which the version serving
-- before it never reads or writes, so a rollback over it is safe.
ALTER TABLE tenants ADD COLUMN turnstile_widget INTEGER;
