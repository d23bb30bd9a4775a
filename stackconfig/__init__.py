"""Typed stack configuration: the `booking:*` keys of `Pulumi.<stack>.yaml`, parsed once.

A layer of its own, below the Pulumi program (`infra`), the operations (`ops`) and the CLI, above
`booking_shared`; it never imports Pulumi, so reading a stack file costs pydantic alone.

- `model`: `StackConfig`, the frozen model every consumer receives, and what it derives;
- `sections`: the models it holds under one key each (tenants, rollout, rate limits, SaaS, ...);
- `files`: the engine's flat config map, or a stack file read offline, into a `StackConfig`;
- `zones`: what the zones' plans cannot hold;
- `deploy`: `DeployContext`, what the deployment hooks need about a stack, built from its config;
- `problems`: `ConfigError`, which reports every bad key at once with its fix.
"""
