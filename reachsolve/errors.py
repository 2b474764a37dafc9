"""Errors that end the analysis of one input, reported as a single line."""


class InputError(Exception):
    """A file that cannot be analyzed: the message names the file and the problem."""

    def __init__(self, file: str, message: str):
        super().__init__(f"{file}: {message}")
        self.file = file
        self.message = message


class ModelError(Exception):
    """A layout model that is malformed or cannot hold the object."""
