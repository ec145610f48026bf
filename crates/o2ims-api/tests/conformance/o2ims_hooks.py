"""Schemathesis hooks of the conformance test (tests/conformance.rs).

`fields` and `exclude_fields` project each item to the attributes named, so by design a
projected item lacks attributes its schema requires: no response to them can match the document.
The server's own tests check projections (tests/api.rs); here the two parameters are taken out of
the documents as loaded, so that every other response is held to its schema.
"""

import schemathesis

PROJECTIONS = ("/parameters/fields", "/parameters/excludeFields")


def _projection(parameter):
    reference = parameter.get("$ref", "") if isinstance(parameter, dict) else ""
    name = parameter.get("name") if isinstance(parameter, dict) else None
    return reference.endswith(PROJECTIONS) or name in ("fields", "exclude_fields")


@schemathesis.hook
def before_load_schema(ctx, raw_schema):
    for item in raw_schema.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict) and "parameters" in operation:
                operation["parameters"] = [
                    p for p in operation["parameters"] if not _projection(p)
                ]
