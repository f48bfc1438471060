"""credwarden: enforce the lifecycle of Kubernetes credentials."""

__version__ = "0.1.0"
