"""Entry point: runs the CLI and maps the error tree to one-line messages and exit codes."""

from __future__ import annotations

import sys

import click

from paramstack.errors import ParamstackError


def main() -> None:
    from paramstack.cli.app import app
    from paramstack.cli.context import err_console

    try:
        result = app(standalone_mode=False)
    except ParamstackError as exc:
        err_console.print(f"[red]error:[/] {exc.message}", highlight=False)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
