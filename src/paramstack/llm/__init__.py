"""Causal language models: the base model, loading, and (later) training and export."""
