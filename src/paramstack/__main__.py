"""Entry point: runs the CLI and maps the error tree to one-line messages and exit codes.

Typer's standalone mode already turns usage errors into exit code 2; our own errors are caught
here so users see one line, never a traceback.
"""

from __future__ import annotations

import sys

from paramstack.errors import ParamstackError


def main() -> None:
    from paramstack.cli.app import app
    from paramstack.cli.context import err_console

    try:
        app()
    except ParamstackError as exc:
        err_console.print(f"[red]error:[/] {exc.message}", highlight=False)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
