"""Corpora: Kaggle layouts, readers and writers, validation, synthetic corpora."""
