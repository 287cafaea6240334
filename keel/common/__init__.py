"""Foundations: the registry, config loading and construction from config, errors, utilities."""
