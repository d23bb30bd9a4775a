"""The offline policy gate: runs the policy pack the way the Pulumi engine does.

The pack is started as a plugin process (`python -u -m pulumi.policy <engine> policies/`, what the
engine's `pulumi-analyzer-policy-python` shim runs) with the engine's environment (PULUMI_CONFIG,
PULUMI_PROJECT, PULUMI_STACK, PULUMI_DRY_RUN). The gate then speaks the Analyzer gRPC protocol:
`GetAnalyzerInfo`, `Configure` with the reconciled config, `Analyze` for every registered
resource, `AnalyzeStack` once. So the gate and `pulumi preview --policy-pack policies` run the same
code on the same inputs and cannot disagree.

Config reconciliation follows the engine: schema defaults, then the pack's initial config, then the
user's `--policy-config` (the JSON `pulumi preview --policy-pack-config` takes, including the
`all` key), validated against each policy's schema. Every policy is configured with an explicit
enforcement level: the proto default is ADVISORY, so a policy configured without one would
silently stop blocking.
"""

from __future__ import annotations

import errno
import json
import os
import selectors
import subprocess
import sys
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from booking_shared.errors import OperationFailed
from booking_shared.project import ProjectError
from bookingctl.planner import Plan, PlannedResource
from bookingctl.policy_config import (
    LEVELS,
    Downgrade,
    PolicyConfig,
    PolicyConfigError,
    PolicyInfo,
    downgrades,
    reconcile,
)

_LEVEL_TO_PROTO = {name: analyzer_pb2.EnforcementLevel.Value(name.upper()) for name in LEVELS}
_PROTO_TO_LEVEL = {v: k for k, v in _LEVEL_TO_PROTO.items()}
_SEVERITY = {analyzer_pb2.PolicySeverity.Value(n): n.removeprefix("POLICY_SEVERITY_").lower()
             for n in analyzer_pb2.PolicySeverity.keys()}  # noqa: SIM118 - an enum wrapper, not a dict
_STARTUP_SECONDS = 60
# Analyze requests in flight at once; the pack serves four at a time.
_WINDOW = 8
# Linux caps one environment string ("NAME=value") at MAX_ARG_STRLEN = 32 pages = 131,072 bytes.
_MAX_ENV_STRING = 128 * 1024
_GRPC_OPTIONS = [("grpc.max_receive_message_length", 400 * 1024 * 1024),
                 ("grpc.max_send_message_length", 400 * 1024 * 1024)]


class PolicyPackError(OperationFailed):
    """The policy pack could not be started or answered wrongly (exit 1: the gate cannot pass)."""


@dataclass(frozen=True)
class Violation:
    policy: str
    level: str
    severity: str
    resource: str  # URN, or "" for a stack-wide finding
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"policy": self.policy, "level": self.level, "severity": self.severity,
                "resource": self.resource, "message": self.message}


@dataclass
class GateResult:
    pack: str
    version: str
    policies: list[PolicyInfo]
    config: dict[str, PolicyConfig]
    violations: list[Violation] = field(default_factory=list)
    # (policy, reason) for each "does not apply here" answer, e.g. data-protection on staging.
    not_applicable: list[tuple[str, str]] = field(default_factory=list)
    # Every policy the user's config lowered: listed in every output so a reviewer sees it.
    downgrades: list[Downgrade] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "mandatory"]

    @property
    def passed(self) -> bool:
        return not self.mandatory

    def summary(self) -> dict[str, Any]:
        return {"pack": self.pack, "version": self.version, "policies": len(self.policies),
                "passed": self.passed, "mandatory": len(self.mandatory),
                "advisory": len(self.violations) - len(self.mandatory),
                "downgrades": [d.to_dict() for d in self.downgrades], "seconds": round(self.seconds, 3)}


# --- the analyzer process -------------------------------------------------------------------

class PackProcess:
    """The policy pack running as the engine runs it; start early, connect when the plan is ready.

    Starting the process before the program is planned hides the pack's start-up (imports, gRPC
    server) behind the plan's own run time.
    """

    def __init__(self, pack_dir: Path, project: str, stack: str, config: Mapping[str, str],
                 python: str = sys.executable) -> None:
        self.pack_dir = pack_dir
        if not (pack_dir / "PulumiPolicy.yaml").is_file():
            raise PolicyPackError(f"{pack_dir} is not a policy pack (no PulumiPolicy.yaml)")
        env = dict(os.environ)
        env.update({
            "PULUMI_CONFIG": _config_variable(stack, config),
            "PULUMI_PROJECT": project,
            "PULUMI_STACK": stack,
            "PULUMI_DRY_RUN": "true",
            "PULUMI_ORGANIZATION": "organization",
        })
        # The engine address is only used for logging; nothing listens there, so logs go to stderr.
        try:
            self.proc = subprocess.Popen([python, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(pack_dir)],
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=pack_dir)
        except OSError as exc:
            if exc.errno != errno.E2BIG:
                raise
            raise ProjectError(_too_large(stack, config, "the environment and arguments together exceed the "
                                                         "system's limit (ARG_MAX)")) from None
        self.channel: grpc.Channel | None = None
        self.stub: analyzer_pb2_grpc.AnalyzerStub | None = None

    def connect(self) -> analyzer_pb2_grpc.AnalyzerStub:
        """Wait for the pack to serve (once) and return the Analyzer client."""
        if self.stub is None:
            port = _read_port(self.proc)
            self.channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=_GRPC_OPTIONS)
            # The pack printed its port, so it listens: the first call waits for the connection
            # (`wait_for_ready`) instead of `channel_ready_future`, whose connectivity-polling thread
            # made closing the channel wait about 0.2 s on every plan.
            self.stub = analyzer_pb2_grpc.AnalyzerStub(self.channel)
        return self.stub

    def version(self) -> str | None:
        """The version in PulumiPolicy.yaml, which the engine prefers over the pack's own."""
        data = yaml.safe_load((self.pack_dir / "PulumiPolicy.yaml").read_text(encoding="utf-8")) or {}
        return str(data["version"]) if isinstance(data, dict) and data.get("version") else None

    def close(self) -> None:
        if self.channel is not None:
            self.channel.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> PackProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _config_variable(stack: str, config: Mapping[str, str]) -> str:
    """PULUMI_CONFIG as the engine sets it for the pack, or a ProjectError when no process could take it."""
    value = json.dumps(dict(config))
    size = len(f"PULUMI_CONFIG={value}".encode()) + 1
    if size > _MAX_ENV_STRING:
        raise ProjectError(_too_large(stack, config, f"PULUMI_CONFIG would be {size:,} bytes"))
    return value


def _too_large(stack: str, config: Mapping[str, str], what: str) -> str:
    tenants = ""
    try:
        count = len(json.loads(config.get("booking:tenants") or "[]"))
        tenants = f" booking:tenants holds {count} tenants;"
    except (ValueError, TypeError):
        pass
    return (f"stack {stack}: its config is too large to start the policy pack with: {what}, and Linux allows "
            f"one environment variable at most 128 KiB (MAX_ARG_STRLEN, 131,072 bytes). `pulumi preview/up "
            f"--policy-pack` hands the config to the pack the same way (with secrets decrypted, so larger still), "
            f"so the real engine cannot start the pack either.{tenants} serve many salons through Cloudflare for "
            f"SaaS (custom hostnames on one zone behind one route) rather than a route, DNS record and Pages domain "
            f"per tenant, or split the tenants across stacks")


def _read_port(proc: subprocess.Popen[bytes]) -> int:
    """The pack prints its gRPC port as the first line of stdout once it serves."""
    assert proc.stdout is not None and proc.stderr is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + _STARTUP_SECONDS
    line = b""
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not selector.select(timeout=remaining):
            proc.kill()
            raise PolicyPackError(f"the policy pack did not start within {_STARTUP_SECONDS} s")
        chunk = os.read(proc.stdout.fileno(), 64)
        if not chunk:
            proc.wait()
            stderr = proc.stderr.read().decode(errors="replace").strip()
            raise PolicyPackError(f"the policy pack exited ({proc.returncode}) before serving:\n{stderr}")
        line += chunk
    selector.close()
    try:
        return int(line.split(b"\n", 1)[0])
    except ValueError as exc:
        raise PolicyPackError(f"the policy pack printed {line!r} instead of its port") from exc


# --- evaluation -----------------------------------------------------------------------------

def _struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(dict(value))
    return message


def _options(resource: PlannedResource) -> analyzer_pb2.AnalyzerResourceOptions:
    return analyzer_pb2.AnalyzerResourceOptions(protect=resource.protect, parent=resource.parent or "")


def _policy_info(info: Any) -> PolicyInfo:
    schema: dict[str, Any] | None = None
    if info.HasField("configSchema"):
        schema = {"properties": json_format.MessageToDict(info.configSchema.properties)}
        if info.configSchema.required:
            schema["required"] = list(info.configSchema.required)
    return PolicyInfo(name=info.name, description=info.description,
                      level=_PROTO_TO_LEVEL[info.enforcementLevel], severity=_SEVERITY.get(info.severity, ""),
                      remediation=info.remediation_steps, schema=schema)


def _initial_config(info: Any) -> dict[str, PolicyConfig]:
    # As the engine does: an entry's unset enforcementLevel reads as the proto default, ADVISORY.
    return {name: PolicyConfig(_PROTO_TO_LEVEL[cfg.enforcementLevel], json_format.MessageToDict(cfg.properties))
            for name, cfg in info.initialConfig.items()}


def _collect(result: GateResult, response: Any, by_name: dict[str, PolicyInfo], analyzed_urn: str = "") -> None:
    for d in response.diagnostics:
        description = by_name[d.policyName].description if d.policyName in by_name else d.description
        text = d.message.removeprefix(description).lstrip("\n") or d.message
        # A resource policy reports without a URN: the engine knows which resource it asked about.
        result.violations.append(Violation(
            policy=d.policyName, level=_PROTO_TO_LEVEL.get(d.enforcementLevel, "advisory"),
            severity=_SEVERITY.get(d.severity, ""), resource=d.urn or analyzed_urn, message=text))
    result.not_applicable += [(n.policy_name, n.reason) for n in response.not_applicable]


def _configure(analyzer: analyzer_pb2_grpc.AnalyzerStub, reconciled: dict[str, PolicyConfig], source: str) -> None:
    """Send the reconciled config; the pack's refusal (a locked policy lowered) is a config error, as
    `pulumi preview` reports it, not a failure of the pack."""
    try:
        analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={
            name: analyzer_pb2.PolicyConfig(enforcementLevel=_LEVEL_TO_PROTO[str(cfg.level)],
                                             properties=_struct(cfg.properties))
            for name, cfg in reconciled.items()
        }))
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
            raise PolicyConfigError(f"{source}: {exc.details()}") from None
        raise


def evaluate(plan: Plan, pack: PackProcess, user_config: dict[str, PolicyConfig] | None = None,
             source: str = "the policy config") -> GateResult:
    """Run the pack over the plan's resources through the Analyzer protocol; `source` names the config file."""
    started = time.perf_counter()
    analyzer = pack.connect()
    try:
        info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), wait_for_ready=True, timeout=_STARTUP_SECONDS)
        policies = [_policy_info(p) for p in info.policies]
        by_name = {p.name: p for p in policies}
        baseline = reconcile(policies, _initial_config(info), {})
        reconciled = reconcile(policies, _initial_config(info), user_config or {})
        _configure(analyzer, reconciled, source)
        result = GateResult(pack=info.name, version=pack.version() or info.version, policies=policies,
                            config=reconciled, downgrades=downgrades(baseline, reconciled))
        # Requests are pipelined (a bounded window in flight) so this process builds the next
        # request while the pack analyzes the current one; results are collected in plan order.
        pending: deque[tuple[PlannedResource, Any]] = deque()
        for resource in plan.resources:
            pending.append((resource, analyzer.Analyze.future(analyzer_pb2.AnalyzeRequest(
                type=resource.type, properties=_struct(resource.raw_inputs), urn=resource.urn,
                name=resource.name, options=_options(resource)))))
            if len(pending) >= _WINDOW:
                done, future = pending.popleft()
                _collect(result, future.result(), by_name, done.urn)
        while pending:
            done, future = pending.popleft()
            _collect(result, future.result(), by_name, done.urn)
        response = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[
            analyzer_pb2.AnalyzerResource(
                type=r.type, properties=_struct(r.raw_outputs or r.raw_inputs), urn=r.urn, name=r.name,
                options=_options(r), parent=r.parent or "", dependencies=list(r.dependencies))
            for r in plan.resources
        ]))
        _collect(result, response, by_name)
    except grpc.RpcError as exc:
        raise PolicyPackError(f"the policy pack failed: {exc.details()}") from exc
    result.seconds = time.perf_counter() - started
    return result
