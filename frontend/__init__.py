"""Ember's eager front end, shaped like PyTorch."""
