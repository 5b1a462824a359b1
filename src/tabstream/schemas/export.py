"""Write the event JSON Schemas: `python -m tabstream.schemas.export docs/events`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tabstream.schemas.events import json_schemas


def schema_files() -> dict[str, str]:
    """File name -> JSON text for every published schema (envelope.json, <Type>.json)."""
    out = {}
    for name, schema in json_schemas().items():
        fname = "envelope.json" if name == "Envelope" else f"{name}.json"
        out[fname] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def main(argv: list[str]) -> int:
    """Write every schema file into the directory argv[0]."""
    target = Path(argv[0] if argv else "docs/events")
    target.mkdir(parents=True, exist_ok=True)
    for fname, text in schema_files().items():
        (target / fname).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
