"""The one errors module of mmdet-spine: every exception a user can act on.

The command-line tools (:func:`mmdet_spine.engine.cli.run_cli`) print a :class:`UserError`
as one line (exit code 2) and a :class:`TrainingAborted` as one line (exit code 1); set
``MMDET_SPINE_TRACEBACK=1`` (or pass ``--traceback``) to see the full traceback instead.
This module imports nothing of the package, so every layer may import it.

Hierarchy::

    MMDetSpineError
    ├── UserError (RuntimeError)            bad input: one line, exit 2
    │   ├── ConfigError (ValueError)        a config value, named with its valid range/choices
    │   ├── CheckpointSafetyError (pickle.UnpicklingError)  refused or unreadable checkpoint
    │   │   └── CheckpointIntegrityError    a checkpoint we wrote no longer matches its sha256
    │   ├── ZooError                        model zoo: unknown name, download, checksum
    │   ├── ConverterError (ValueError)     a weight converter cannot map a checkpoint
    │   └── BadDataError                    dataset: missing/malformed annotation or image
    └── TrainingAborted (RuntimeError)      the run stopped itself (e.g. NaN loss): exit 1
"""
import pickle

__all__ = ['MMDetSpineError', 'UserError', 'ConfigError', 'CheckpointSafetyError',
           'CheckpointIntegrityError', 'ZooError', 'ConverterError', 'BadDataError',
           'TrainingAborted', 'TRACEBACK_ENV']

#: Environment variable that makes the tools show full tracebacks for user errors.
TRACEBACK_ENV = 'MMDET_SPINE_TRACEBACK'


class MMDetSpineError(Exception):
    """Base class of every mmdet-spine error."""


class UserError(MMDetSpineError, RuntimeError):
    """An error in the user's input, reported as one line without a traceback (exit 2)."""


class ConfigError(UserError, ValueError):
    """A config value that cannot work; the message names the field and the valid values.

    Subclasses ``ValueError`` so code that catches the built-in keeps working.
    """


class CheckpointSafetyError(UserError, pickle.UnpicklingError):
    """A checkpoint was refused because loading it could execute code, or it is unreadable."""


class CheckpointIntegrityError(CheckpointSafetyError):
    """A checkpoint written by mmdet-spine does not match the sha256 recorded when it was saved."""


class ZooError(UserError):
    """A model-zoo failure the user can act on."""


class ConverterError(UserError, ValueError):
    """A weight converter cannot map the given checkpoint (wrong arch, family, levels...)."""


class BadDataError(UserError):
    """A dataset problem that stops the run (missing or malformed annotation file, ...)."""


class TrainingAborted(MMDetSpineError, RuntimeError):
    """The run was stopped deliberately (e.g. a non-finite loss); reported as one line, exit 1."""
