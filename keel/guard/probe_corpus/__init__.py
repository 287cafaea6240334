"""Versioned probe corpora (vN.txt) for tokenizer behaviour fingerprints; data files only."""
