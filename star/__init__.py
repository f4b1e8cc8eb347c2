"""STaR: multi-granular spatio-temporal reasoning for long-form dense video captioning."""

__version__ = "0.1.0"
