"""Export trained torch models to ONNX and prove the exported graph matches the original."""
