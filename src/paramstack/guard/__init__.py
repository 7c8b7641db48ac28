"""Guardrails as a library: policy, PII masking, injection, toxicity, copyright, disclaimers.

Never imports ``paramstack.gateway``; the gateway builds one ``Guard`` per policy and calls it.
"""
