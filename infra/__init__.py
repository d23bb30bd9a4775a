"""The Pulumi program for the appointment-booking platform: one module per part of the platform.

`infra/__main__.py` is the entry point `pulumi up` runs; `infra.program.deploy` wires the
components so tests and the offline planner can run the same code under Pulumi's mocks.
"""
