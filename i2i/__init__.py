"""i2i: a photo library turned into styled, watermarked, published images."""

__version__ = "0.1.0"


class I2IError(Exception):
    """An expected failure with a message a user can act on (bad input, bad config)."""
