"""Archives: writing model.tar.gz atomically and loading it strictly and safely."""
