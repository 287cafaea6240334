"""HTTP serving of an archive."""
