"""Errors that actions raise for the caller to show; their messages are meant for people."""


class RelaisError(Exception):
    """A refusal with a message fit to show the user (already translated where needed)."""


class PermissionDeniedError(RelaisError):
    pass


class ValidationFailedError(RelaisError):
    pass


class NotFoundError(RelaisError):
    pass


class ConflictError(ValidationFailedError):
    """The object changed between what the person saw and what they asked for."""
