"""Pull-request preview environments: created, loaded with scrubbed data, capped and destroyed (issue #26)."""
