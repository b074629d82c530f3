"""User-facing errors: each names the problem and the fix, and maps to a non-zero exit code."""

from typing import NoReturn


class TLEvalError(Exception):
    """A problem the user can fix; the CLI prints it without a traceback and exits with code 2."""

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(problem if fix is None else f"{problem}\n  fix: {fix}")


def fail(e: TLEvalError) -> NoReturn:
    """The command-line convention for every tl-eval command: the problem and the fix on stderr, exit code 2."""
    import click

    click.secho(f"error: {e.problem}", fg="red", err=True)
    if e.fix:
        click.echo(f"  fix: {e.fix}", err=True)
    raise SystemExit(2) from None


class ConfigError(TLEvalError):
    """Bad flags, spec or config file."""


class DataError(TLEvalError):
    """Benchmark data missing or malformed."""


class ModelError(TLEvalError):
    """A model cannot be loaded or reached."""


class SandboxUnavailable(TLEvalError):
    """No sandbox tier that the user allowed works on this machine."""


class OutputError(TLEvalError):
    """A result or cache file cannot be written (read-only folder, full disk, a file in the way)."""
