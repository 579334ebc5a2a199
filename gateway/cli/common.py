"""What the commands share: finding and loading the configuration, printing problems."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gateway.config import GatewayConfig, load_config
from gateway.yamlsource import ConfigError

__all__ = ["config_path", "load_or_exit"]


def config_path(args: argparse.Namespace) -> Path:
    return Path(args.config or os.environ.get("GATEWAY_CONFIG", "gateway.yaml"))


def load_or_exit(args: argparse.Namespace) -> GatewayConfig:
    try:
        return load_config(config_path(args))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
