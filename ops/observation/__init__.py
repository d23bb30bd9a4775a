"""The observation room: what the platform is doing, read without changing it.

Site verification, health and performance, Workers analytics, the security audit, the daily report
and the account doctor; `bookingctl monitor`, `admin`, `doctor`. Releases judge a version with it.
"""
