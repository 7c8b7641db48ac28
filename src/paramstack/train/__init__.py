"""Training building blocks shared by every recipe (vision, ECG, and the LLM recipes to come)."""
