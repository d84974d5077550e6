"""`python -m kith_plugin.build`: builds the plugin in the current directory (its `app.py`,
beside `plugin.toml`) into `plugin.wasm` with componentize-py, against the `kith:plugin` WIT
this SDK belongs to (the committed `schemas/wit/v1.4.0` of the Kith checkout it lives in), world
`plugin`. `kith plugin install .` then takes the folder as it is.

Options: `--app MODULE` (default `app`), `--out FILE` (default `plugin.wasm`), `--wit DIR`
(default the checkout's, or `$KITH_WIT`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from . import WIT_VERSION

SDK_DIR = Path(__file__).resolve().parent.parent
"""The folder holding `kith_plugin` (put on componentize-py's search path)."""


def default_wit() -> Path:
    """The committed WIT of this SDK's Kith checkout, or `$KITH_WIT`."""
    if os.environ.get("KITH_WIT"):
        return Path(os.environ["KITH_WIT"])
    return SDK_DIR.parent.parent / "schemas" / "wit" / f"v{WIT_VERSION}"


def componentize_py() -> str:
    """componentize-py: beside this Python (a virtualenv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "componentize-py"
    if beside.exists():
        return str(beside)
    found = shutil.which("componentize-py")
    if found is None:
        raise SystemExit(
            "componentize-py is not installed: `pip install -r requirements.txt` (it pins componentize-py==0.25.1)"
        )
    return found


def check_manifest(project: Path) -> None:
    """plugin.toml exists and names the contract version this build produces."""
    manifest_path = project / "plugin.toml"
    try:
        manifest = tomllib.loads(manifest_path.read_text())
    except FileNotFoundError:
        raise SystemExit(f"{manifest_path} is missing: a plugin folder holds its manifest") from None
    except tomllib.TOMLDecodeError as err:
        raise SystemExit(f"{manifest_path}: {err}") from None
    declared = manifest.get("sdk_version")
    if declared != WIT_VERSION:
        raise SystemExit(
            f'{manifest_path}: sdk_version = "{declared}", but this SDK builds against kith:plugin@{WIT_VERSION}: '
            f'set sdk_version = "{WIT_VERSION}"'
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kith_plugin.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", default="app", help="the module defining WitWorld, Extension, HttpHandler")
    parser.add_argument("--out", default="plugin.wasm", help="the component to write")
    parser.add_argument("--wit", type=Path, default=None, help="the kith:plugin WIT folder")
    args = parser.parse_args(argv)
    project = Path.cwd()
    check_manifest(project)
    wit = args.wit or default_wit()
    if not (wit / "plugin.wit").exists():
        raise SystemExit(f"no kith:plugin WIT at {wit}: pass --wit DIR or set KITH_WIT")
    command = [
        componentize_py(),
        "-d", str(wit),
        "-w", "plugin",
        "componentize",
        "-p", str(project),
        "-p", str(SDK_DIR),
        args.app,
        "-o", args.out,
    ]  # fmt: skip
    done = subprocess.run(command)
    if done.returncode != 0:
        return done.returncode
    size = (project / args.out).stat().st_size
    print(f"built {args.out} ({size / 1048576:.1f} MiB) against kith:plugin@{WIT_VERSION}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
