"""keel: a config-driven NLP framework on PyTorch whose trained models survive migration."""

__version__ = "0.1.0"
