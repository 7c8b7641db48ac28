"""Evaluation of trained models: perplexity, judge win-rate, lm-evaluation-harness bridge."""
