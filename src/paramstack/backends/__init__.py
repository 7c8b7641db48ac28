"""Model backends behind small protocols; the gateway picks one per registered model type."""
