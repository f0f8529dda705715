"""MkDocs hook: the API reference page `reference/openapi.md`, rendered at build time from the
OpenAPI document the app itself serves, so the reference cannot drift from the code."""
from __future__ import annotations

import json

from mkdocs.structure.files import File

PAGE = "reference/openapi.md"


def _schema_name(ref: dict | None) -> str:
    if not ref:
        return ""
    target = ref.get("$ref") or (ref.get("items") or {}).get("$ref") or ""
    name = target.rsplit("/", 1)[-1]
    return f"`{name}`" + (" (list)" if "items" in ref else "") if name else ""


def render(spec: dict) -> str:
    out = ["# Operations\n", f"Generated from `GET /openapi.json` ({spec['info']['title']} {spec['info']['version']}).\n"]
    for path, item in sorted(spec["paths"].items()):
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            out.append(f"## `{method.upper()} {path}`\n")
            if operation.get("summary") or operation.get("description"):
                out.append((operation.get("summary") or operation.get("description")).strip() + "\n")
            params = operation.get("parameters", [])
            if params:
                out.append("| parameter | in | required |\n| --- | --- | --- |")
                out.extend(f"| `{p['name']}` | {p['in']} | {'yes' if p.get('required') else 'no'} |" for p in params)
                out.append("")
            body = ((operation.get("requestBody") or {}).get("content") or {}).get("application/json")
            if body:
                out.append(f"Request body: {_schema_name(body.get('schema')) or 'JSON'}\n")
            out.append("| status | answer |\n| --- | --- |")
            for status, response in sorted(operation.get("responses", {}).items()):
                schema = ((response.get("content") or {}).get("application/json") or {}).get("schema")
                out.append(f"| {status} | {response.get('description', '').strip()} {_schema_name(schema)} |")
            out.append("")
    return "\n".join(out) + "\n"


def on_files(files, config):
    from plugin import create_app
    app = create_app({"database_url": "sqlite://"})
    spec = app.test_client().get("/openapi.json").get_json()
    files.append(File.generated(config, PAGE, content=render(spec)))
    return files
