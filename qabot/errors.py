"""Domain errors. The library raises these; only the CLI and the bot turn them into messages."""

from __future__ import annotations


class QabotError(Exception):
    """Base class: `str(err)` is a one-line message a user can act on."""


class SeedsNotFound(QabotError):
    """The seeds folder does not exist, is not a folder or cannot be read."""


class NothingToIndex(QabotError):
    """No article in the seeds folder could be indexed."""


class IndexNotFound(QabotError):
    """There is no committed index in the index folder."""


class IndexIncompatible(QabotError):
    """The index on disk was built with another format, model, dimension or chunker."""


class IndexOutdated(IndexIncompatible):
    """The index has another format version: `qabot index` upgrades (format 1) or rebuilds it."""

    def __init__(self, message: str, version: object) -> None:
        super().__init__(message)
        self.version = version


class IndexDamaged(IndexIncompatible):
    """A file of the committed index is missing, truncated or unreadable; `qabot index` repairs it.

    A subclass of IndexIncompatible: whoever refuses an index it can't use refuses this too.
    """


class ManifestDamaged(IndexDamaged):
    """manifest.json itself can't be read; the generation folders may still be whole."""


class IndexFolderError(QabotError):
    """The index path can't hold an index: it is a file, not a folder."""


class IndexLocked(QabotError):
    """Another process holds the index lock and we were told not to wait."""


class BadQuestion(QabotError):
    """The question is empty or too long, or its date window is empty."""


class ModelUnavailable(QabotError):
    """The embedding model could not be loaded (not installed, or would need the network)."""


class ConfigError(QabotError):
    """The configuration file or an environment variable has a bad value."""


class RayUnavailable(QabotError):
    """`qabot index --ray`: Ray is not installed, the cluster can't be reached, or its workers failed."""


class ShardUnavailable(QabotError):
    """A shard of the index (qabot serve --ray) failed or missed its deadline."""

    def __init__(self, message: str, shards: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.shards = shards
