"""tl-eval's engine: models, pipeline, verifiers and metrics, independent of any concrete task."""

__version__ = "0.1.0"
