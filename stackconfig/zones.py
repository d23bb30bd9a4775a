"""What the zones' plans cannot hold: checks of a parsed `StackConfig` against booking_shared/limits.py."""

from __future__ import annotations

from booking_shared.limits import (
    HEALTH_CHECKS_BY_PLAN,
    PLAN_LABELS,
    RATE_LIMITS_BY_PLAN,
    PlanProblem,
    ZonePlan,
    one_of,
    rate_limit_problems,
)
from stackconfig.model import ServedZone, StackConfig
from stackconfig.problems import ConfigProblem


def zone_plan_problems(cfg: StackConfig, source: str) -> list[ConfigProblem]:
    """What the zones' plans cannot hold: two plans stated for one zone, a Health Check on a Free
    zone, and each rate limiting rule the program would write in a zone whose entry point this
    stack declares (booking_shared/limits.py: rule count, fields, period, mitigation timeout)."""
    problems: list[ConfigProblem] = []
    first: dict[str, tuple[ZonePlan, str]] = {}
    for zone_id, stated, key in cfg.plan_keys():
        if stated is None:
            continue
        if zone_id in first and first[zone_id][0] != stated:
            problems.append(ConfigProblem(key, f"{stated!r} for zone {zone_id}",
                                          f"{first[zone_id][0]!r}, the plan booking:{first[zone_id][1]} states for the "
                                          "same zone (a zone has one plan)",
                                          f"state the zone's plan once (booking:{first[zone_id][1]}) and remove "
                                          f"booking:{key}, or make them agree"))
        first.setdefault(zone_id, (stated, key))
    if problems:
        return problems
    plan = cfg.plan_of(cfg.zone_id)
    if cfg.health_check and HEALTH_CHECKS_BY_PLAN[plan] == 0:
        problems.append(ConfigProblem(
            "healthCheck", f"true (the default) on the main zone (booking:zoneId {cfg.zone_id}), whose "
                           f"booking:zonePlan is {plan}",
            "false on a Free zone: Health Checks need Pro or above (Free holds 0)",
            f'set booking:healthCheck "false" in {source} (production-completeness then flags production), or, if '
            "the zone is on a paid plan, set booking:zonePlan to it"))
    if cfg.owns_zone_rulesets:
        for zone in cfg.zones:
            problems += _rate_limit_problems(cfg, zone, source)
    declared = {z.zone_id for z in cfg.zones} if cfg.owns_zone_rulesets else set()
    for field, phase, ids in (("existingRulesetIds", "http_ratelimit", cfg.rate_limits.existing_ruleset_ids),
                              ("existingTransformRulesetIds", "http_request_late_transform",
                               cfg.rate_limits.existing_transform_ruleset_ids)):
        problems += _existing_entry_point_problems(cfg, field, phase, ids, declared, source)
    return problems


def _existing_entry_point_problems(cfg: StackConfig, field: str, phase: str, ids: dict[str, str],
                                   declared: set[str], source: str) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    owner: dict[str, str] = {}
    for zone_id, ruleset_id in ids.items():
        key = f"rateLimits.{field}.{zone_id}"
        # A ruleset lives in one zone (its import id is zones/<zone_id>/<ruleset_id>), and ids are
        # unique: one id under two zones, or a zone's own id, is a copy-paste slip that would import
        # the wrong thing or fail the import.
        if ruleset_id in owner:
            problems.append(ConfigProblem(key, f"ruleset {ruleset_id}, already given for zone {owner[ruleset_id]}",
                                          f"the id of zone {zone_id}'s own {phase} entry point (a ruleset "
                                          f"belongs to one zone; zone {owner[ruleset_id]} has it)",
                                          "run `bookingctl doctor --stack S`, which names each zone's entry point"))
        elif ruleset_id in {z for z, _p, _k in cfg.plan_keys()}:
            problems.append(ConfigProblem(key, f"{ruleset_id}, a zone id of this stack, not a ruleset id",
                                          f"the id of the zone's {phase} entry point ruleset",
                                          "run `bookingctl doctor --stack S`, which names each zone's entry point"))
        owner.setdefault(ruleset_id, zone_id)
    for zone_id in ids:
        if zone_id not in declared:
            problems.append(ConfigProblem(
                f"rateLimits.{field}.{zone_id}", f"a zone this stack declares no {phase} entry point in",
                f"the id of a zone whose {phase} entry point this stack declares: {', '.join(sorted(declared))}"
                if declared else f"no entry: this stack declares no {phase} entry point "
                                 "(booking:rateLimits.zoneRuleset is off)",
                f"remove booking:rateLimits.{field}.{zone_id} from {source}"))
    return problems


_PLAN_FIX = ("check the zone's plan (dashboard: the zone's Overview, Plan) and set {key} to it; a zone below "
             "Business cannot hold the four rules, each matching one endpoint's exact method and host (the "
             "program does not drop the method, which would count other requests to the path, nor merge "
             "endpoints, which would share one counter): upgrade the zone to Business{other}")


def _rate_limit_problems(cfg: StackConfig, zone: ServedZone, source: str) -> list[ConfigProblem]:
    """The program's rules for one zone (one per public write endpoint) against the zone's plan."""
    rules = cfg.rate_limit_rules(zone)
    found = rate_limit_problems(zone.plan, rules)
    label = PLAN_LABELS[zone.plan]
    other = (", or serve the salon through booking:saas (the SaaS zone's rules cover it)"
             if zone.plan_key.startswith("tenants") else
             ", or set booking:rateLimits.zoneRuleset false and rely on the Worker's rate-limit binding "
             "(production's public-write-endpoints-rate-limited then blocks)")
    fix = _PLAN_FIX.format(key=f"booking:{zone.plan_key}", other=other)
    count: list[ConfigProblem] = []
    values: list[ConfigProblem] = []
    by_fields: dict[str, list[PlanProblem]] = {}
    for problem in found:
        if problem.field == "rules":
            better = min((p for p, limits in RATE_LIMITS_BY_PLAN.items() if limits.rules >= len(rules)),
                         key=lambda p: RATE_LIMITS_BY_PLAN[p].rules)
            count.append(ConfigProblem(
                zone.plan_key, f"{zone.plan} for {zone.named()}, which gets {len(rules)} rate limiting rules "
                               f"({', '.join(r.name for r in rules)})",
                f"a plan that holds {len(rules)} rules: {problem.allowed} ({PLAN_LABELS[better]} holds "
                f"{RATE_LIMITS_BY_PLAN[better].rules})", fix))
        elif problem.field == "expression":
            by_fields.setdefault(problem.found, []).append(problem)
        else:
            field = {"period": "period", "mitigation_timeout": "mitigationTimeout"}.get(problem.field, problem.field)
            key = f"rateLimits.{problem.rule}.{field}"
            values.append(ConfigProblem(
                key, f"{problem.found} for {zone.named()}, on the {label} plan ({zone.plan_key})", problem.allowed,
                f"set booking:{key} to {one_of(problem.choices)} in {source}, "
                f"or, if the zone's plan is higher, set booking:{zone.plan_key} to it"))
    fields = [ConfigProblem(zone.plan_key, f"{zone.plan} for {zone.named()}, where the rules for "
                                           f"{', '.join(str(p.rule) for p in using)} use {named}",
                            using[0].allowed, fix)
              for named, using in by_fields.items()]
    return count + fields + values

