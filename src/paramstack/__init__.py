"""paramstack: own your AI parameters — registry, build jobs and a secure gateway.

Importing the package is cheap and side-effect free: heavy modules load when used.
"""

__version__ = "0.1.0"
