"""Pipelines: the train command's orchestration over data, training, archive and guard."""
