"""Validates documents against the spec schema with the `jsonschema` package (Draft 7).

Usage: validate.py SCHEMA.json DOCUMENTS.json
DOCUMENTS.json maps a name to a document. Prints, as JSON, each name's errors: the message a
validator shows first (`best_match`) and every message, each with the path it is at.
"""

import json
import sys

from jsonschema import Draft7Validator
from jsonschema.exceptions import best_match


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    Draft7Validator.check_schema(schema)
    validator = Draft7Validator(schema)
    with open(sys.argv[2], encoding="utf-8") as f:
        documents = json.load(f)
    out = {}
    for name, document in documents.items():
        errors = list(validator.iter_errors(document))
        best = best_match(errors)
        out[name] = {
            "best": None if best is None else {
                "path": "/".join(str(p) for p in best.absolute_path),
                "message": best.message,
            },
            "all": [
                {"path": "/".join(str(p) for p in e.absolute_path), "message": e.message}
                for e in errors
            ],
        }
    json.dump(out, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
