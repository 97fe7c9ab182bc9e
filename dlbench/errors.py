"""The one family of errors for user mistakes: the CLI prints them as one line and exits 2."""


class DlbenchError(Exception):
    """A mistake in what the user asked for (a config, a name, a file), not a bug."""


class ConfigError(DlbenchError):
    """A gin file, a binding or a hyperparameter value that cannot be used."""


class UnknownNameError(DlbenchError):
    """A model, dataset, metric or other registered name that no plugin provides."""


class DuplicateNameError(DlbenchError):
    """Two plugins provide the same name."""


class DataError(DlbenchError):
    """A data or instance file that is missing, truncated, malformed or fails verification."""


class RecordError(DlbenchError):
    """A run record or run directory that cannot be read."""
