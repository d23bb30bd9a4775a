"""Facts every layer shares: names, type tokens, credential shapes, the checklist, the deploy hooks' context.

A leaf package: it imports nothing of this repository and no third-party package, so `infra/`,
`ops/`, `policies/`, `bookingctl/`, the scripts and the tests can all import it without
dragging in pulumi, pydantic or httpx, and without importing each other.
"""
