"""The guard: environment capture/diff/check, hashing, fingerprints and verify."""
