"""Bad input, as opposed to a bug: the message names the file and the problem, and `star` prints it
without a traceback. Every stage raises a subclass of InputError for data it cannot use."""


class InputError(ValueError):
    """Input the pipeline cannot use (missing or malformed file, mismatched fps or dimension, ...)."""
