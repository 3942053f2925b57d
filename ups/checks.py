"""Value checks for config dataclasses.

Config sections define ``validate(self)`` and call :func:`require`; the loader in
:mod:`ups.config` walks the resolved tree and prefixes the dotted key and the file.
"""


class InvalidValue(ValueError):
    """A config field holds a value outside its allowed range."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def require(condition: bool, field: str, message: str) -> None:
    """Raise :class:`InvalidValue` for ``field`` unless ``condition`` holds."""
    if not condition:
        raise InvalidValue(field, message)
