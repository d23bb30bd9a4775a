"""Secrets: integration credentials reach the Worker only as secret bindings, never as plain text."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, ResourceValidationArgs, Severity

from booking_shared.credentials import looks_like_credential
from booking_shared.naming import SECRET_BINDING_NAMES
from booking_shared.tokens import PAGES, VERSION
from policies.common import Report, get, make_resource_policy, message

NAME = "secrets-as-secret-bindings"

SCHEMA = PolicyConfigSchema(
    properties={
        "credentialBindings": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Worker binding names that must be secret_text.",
            "default": list(SECRET_BINDING_NAMES),
        },
    },
)


def check_secret_bindings(args: ResourceValidationArgs, report: Report) -> None:
    """Credential bindings are secret_text; no plain-text value looks like a credential."""
    if args.resource_type == VERSION:
        required = set(args.get_config().get("credentialBindings") or [])
        for binding in args.props.get("bindings") or []:
            name, kind = get(binding, "name"), get(binding, "type")
            if name in required and kind != "secret_text":
                report(message(f"Worker binding {name} is '{kind}', not 'secret_text'.",
                               "a plain binding stores the credential readable in the Worker's settings, "
                               "the dashboard and API responses",
                               f"bind {name} as secret_text from a Pulumi secret "
                               "(pulumi config set --secret ...)"))
            leaked = looks_like_credential(get(binding, "text")) if kind in ("plain_text", "json") else None
            if leaked:
                report(message(f"Worker {kind} binding {name} holds what looks like {leaked}.",
                               "plain-text bindings are visible to anyone who can read the Worker",
                               "move the value to a secret_text binding and rotate the credential"))
    elif args.resource_type == PAGES:
        for kind in ("production", "preview"):
            for name, var in (get(args.props, "deploymentConfigs", kind, "envVars") or {}).items():
                leaked = looks_like_credential(get(var, "value"))
                if get(var, "type") == "plain_text" and leaked:
                    report(message(f"Pages {kind} variable {name} holds what looks like {leaked} in plain text.",
                                   "plain-text Pages variables are shown in the dashboard and build logs",
                                   "make it a secret_text variable from a Pulumi secret and rotate the credential"))
    else:
        args.not_applicable("no bindings or variables")


secret_bindings = make_resource_policy(
    NAME,
    "Integration credentials reach the Worker only as secret bindings; no plain-text binding or variable "
    "holds a credential.",
    check_secret_bindings,
    level=EnforcementLevel.MANDATORY,
    severity=Severity.CRITICAL,
    remediation="Store credentials with `pulumi config set --secret` and bind them as secret_text.",
    suppressible=False,
    config_schema=SCHEMA,
)
