"""What every layer shares: names, type tokens, credential shapes, the checklist, the deploy hooks'
context, and reading the project's Pulumi files as the Pulumi CLI reads them.

The lowest layer: it imports nothing else of this repository, and of third-party packages only
PyYAML (in `safeyaml` and `project`, to read stack files). `infra/`, `ops/`, `policies/`,
`bookingctl/`, the scripts and the tests can all import it without dragging in pulumi, pydantic or
httpx, and without importing each other.
"""

from pathlib import Path

# The checkout this code runs from (the project is installed editable): where the reference Worker
# and the committed stack files live when no working directory says otherwise, and what a child
# process puts on its path to import this very copy. One definition, so moving a module moves nothing.
CHECKOUT = Path(__file__).resolve().parents[1]
