"""Write the otelkit dashboards to grafana/dashboards/*.json from the code in grafana/dashboards_src.

    .venv/bin/python -m grafana.generate            # regenerate the committed JSON
    .venv/bin/python -m grafana.generate --out DIR  # write elsewhere (the drift test does)

tests/grafana/test_dashboards.py fails while the committed files differ from a fresh generation.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from grafana.dashboards_src import DASHBOARDS

DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard, panel ids numbered in reading order."""
    files: dict[str, str] = {}
    for name, build in DASHBOARDS.items():
        model = build().build()
        for number, panel in enumerate(model.panels or [], start=1):
            panel.id_val = number
        document: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(model))
        files[f"{name}.json"] = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return files


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, text in render().items():
        path = directory / file_name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DASHBOARDS_DIR, help="directory to write (default: %(default)s)")
    args = parser.parse_args(argv)
    for path in write(args.out):
        print(path)


if __name__ == "__main__":
    main()
