#!/usr/bin/env python3
"""Cut the operations the project calls out of Cloudflare's published OpenAPI document.

The API double (tests/helpers/cf_double/) checks every REST request it receives and every answer
it sends against Cloudflare's own OpenAPI document (github.com/cloudflare/api-schemas,
`openapi.json`). That document is megabytes; the tests keep only the operations listed in
`tests/data/cloudflare-openapi-paths.txt` and every component those operations reach through
`$ref`, without descriptions and examples, as `tests/data/cloudflare-openapi.json`, with the source
repository, path and commit under `x-source`.

To add an endpoint: add one `METHOD /path/{template}` line to the paths file (the template exactly
as the document spells it) and run, from the repository root, with a copy of the document at the
commit you name:

    git -C <a clone of cloudflare/api-schemas> show <commit>:openapi.json > /tmp/openapi.json
    python scripts/openapi_subset.py /tmp/openapi.json --commit <commit>

The committed subset was cut from commit cca3064f1aba08cc6cef52fc7b3d3064a9eafcc9 (2024-08-06), the
newest openapi.json our tooling could read whole; where the API has moved on since, the tests amend
the subset with sources (tests/helpers/cf_openapi.py AMENDMENTS): re-cutting from a newer commit
should make most amendments unnecessary (one whose place in the document is gone fails with a KeyError).

Standard library only. Exits 2 naming the line when a listed operation is not in the document.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PATHS_FILE = REPO / "tests" / "data" / "cloudflare-openapi-paths.txt"
OUT_FILE = REPO / "tests" / "data" / "cloudflare-openapi.json"
METHODS = ("get", "put", "post", "delete", "patch")

# Prose and tooling hints: nothing a validator reads. Dropped where they are keywords, never where
# they are names (a property called "description" stays).
_DROP = {"description", "summary", "example", "examples", "externalDocs", "tags", "security",
         "deprecated", "title"}
# Objects whose keys are names (of properties, media types, statuses, components), not keywords.
_NAME_MAPS = {"properties", "patternProperties", "content", "encoding", "headers", "responses",
              "schemas", "parameters", "requestBodies", "mapping", "paths"}
# Values that are data: copied as they are.
_DATA = {"enum", "default"}


def read_operations(paths_file: Path) -> list[tuple[str, str]]:
    """The `(method, template)` pairs of the paths file; `#` starts a comment."""
    operations = []
    for number, line in enumerate(paths_file.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        method, _, template = text.partition(" ")
        if method.lower() not in METHODS or not template.strip().startswith("/"):
            raise SystemExit(f"{paths_file}:{number}: expected 'METHOD /path/template', found {line!r}")
        operations.append((method.lower(), template.strip()))
    return operations


def _clean(node: Any, names: bool = False) -> Any:
    if isinstance(node, list):
        return [_clean(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if not names and (key in _DROP or key.startswith("x-")):
            continue
        if not names and key in _DATA:
            out[key] = value
        else:
            out[key] = _clean(value, names=not names and key in _NAME_MAPS)
    return out


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref)
        for key, value in node.items():
            if key not in _DATA:
                _refs(value, found)
    elif isinstance(node, list):
        for item in node:
            _refs(item, found)


def subset(document: dict[str, Any], operations: list[tuple[str, str]], source: dict[str, str]) -> dict[str, Any]:
    """The document cut down to `operations` and the components they reach, without prose."""
    paths: dict[str, Any] = {}
    for method, template in operations:
        item = document["paths"].get(template)
        if item is None or method not in item:
            raise SystemExit(f"{method.upper()} {template} is not in the document (commit {source['commit']}); "
                             "check the template's spelling against its `paths`, or leave the endpoint out")
        kept = paths.setdefault(template, {k: v for k, v in item.items() if k == "parameters"})
        kept[method] = item[method]
    components: dict[str, dict[str, Any]] = {}
    pending: set[str] = set()
    _refs(paths, pending)
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        if not ref.startswith("#/components/"):
            raise SystemExit(f"{ref}: only local component references are supported")
        _, _, kind, name = ref.split("/", 3)
        target = document["components"][kind][name]
        components.setdefault(kind, {})[name] = target
        _refs(target, pending)
    return {
        "openapi": document["openapi"],
        "info": {"title": "Cloudflare API: the operations appointmentbooking-infra calls",
                 "version": document["info"]["version"]},
        "x-source": source,
        "paths": _clean(paths, names=True),
        "components": {kind: _clean(items, names=True) for kind, items in sorted(components.items())},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("document", type=Path, help="the full openapi.json of cloudflare/api-schemas")
    parser.add_argument("--commit", required=True, help="the api-schemas commit the document was taken from")
    parser.add_argument("--paths", type=Path, default=PATHS_FILE, help=f"default: {PATHS_FILE.relative_to(REPO)}")
    parser.add_argument("--out", type=Path, default=OUT_FILE, help=f"default: {OUT_FILE.relative_to(REPO)}")
    args = parser.parse_args(argv)
    document = json.loads(args.document.read_text(encoding="utf-8"))
    source = {"repository": "https://github.com/cloudflare/api-schemas", "path": "openapi.json",
              "commit": args.commit, "paths": str(PATHS_FILE.relative_to(REPO)),
              "made_by": "scripts/openapi_subset.py (see its docstring to add an endpoint)"}
    result = subset(document, read_operations(args.paths), source)
    args.out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    count = sum(len([m for m in item if m in METHODS]) for item in result["paths"].values())
    print(f"{args.out}: {count} operations, {sum(len(v) for v in result['components'].values())} components",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
