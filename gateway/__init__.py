"""A policy-as-code data-boundary gateway for LLM traffic."""

from gateway.app import create_app
from gateway.config import GatewayConfig, load_config
from gateway.errors import GatewayError, Reason

__all__ = ["GatewayConfig", "GatewayError", "Reason", "__version__", "create_app", "load_config"]

__version__ = "0.1.0"
