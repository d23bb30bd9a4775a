"""Run by the Pulumi engine (`python -m pulumi.policy <engine> policies/`): serves the pack."""

from policies.pack import serve

serve()
