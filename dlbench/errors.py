"""The one family of errors for user mistakes: the CLI prints them as one line and exits 2.

Messages name what was wrong (the file, binding, field or value) and what would be accepted, in the
house phrasing "… is not accepted; expected …" where a value was given.
"""


class DlbenchError(Exception):
    """A mistake in what the user asked for (a config, a name, a file), not a bug."""

    exit_code = 2


class ConfigError(DlbenchError):
    """A gin file, a binding, an option or a hyperparameter value that cannot be used."""


class UnknownNameError(DlbenchError):
    """A model, dataset, metric or other registered name that no plugin provides."""


class DuplicateNameError(DlbenchError):
    """Two plugins provide the same name."""


class DataError(DlbenchError):
    """A data or instance file that is missing, truncated, malformed or fails verification."""


class RecordError(DlbenchError):
    """A run record, state file, checkpoint or run directory that cannot be read or trusted."""


class RunLockedError(DlbenchError):
    """Another live process holds the run (or record) this command wanted to work on."""


class ResourceError(DlbenchError):
    """A request that cannot fit: more memory than the device has, or a filesystem that refuses a write."""


class PluginFailure(DlbenchError):
    """A plugin's own code raised while doing its job (a bug in the plugin, not a user mistake)."""

    exit_code = 1


def not_accepted(what: str, value, expected: str) -> ConfigError:
    """The house error for a bad value: "what = value is not accepted; expected …"."""
    return ConfigError(f"{what} = {value!r} is not accepted; expected {expected}")
