"""User-facing errors. The CLI prints ``error: <message>`` on one line and exits 2 for these."""


class ReproZooError(Exception):
    """Base class: something the user can fix (bad name, bad value, bad file)."""


class UnknownNameError(ReproZooError, KeyError):
    """An experiment, model, preset or benchmark name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(ReproZooError, ValueError):
    """An override with an unknown key or a value of the wrong type, or an out-of-range setting."""


class DataError(ReproZooError, ValueError):
    """Input data that cannot be read or does not have the expected shape/format."""


class CheckpointError(ReproZooError, ValueError):
    """A checkpoint with missing/unexpected keys or mismatched shapes, or a missing file."""


class OutputExistsError(ReproZooError, FileExistsError):
    """The output folder already holds a run (pass --overwrite to replace it)."""


class MissingDependencyError(ReproZooError, ImportError):
    """An optional dependency or system package is missing; the message gives the install line."""


class OutputError(ReproZooError, OSError):
    """An output path that cannot be used: a file where a folder is meant, not writable, or a
    folder that holds something else (its message names the path)."""


class RunInterrupted(Exception):
    """Ctrl-C / SIGTERM during a run. The finished trials are kept; ``str(err)`` is the command
    that resumes the run. The CLI prints ``interrupted; resume with: ...`` and exits 130."""
