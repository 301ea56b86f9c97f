"""The typed edgeapp config, loaded from YAML; its defaults are the built-in demo.

    from edgeapp.config import load_config
    cfg = load_config("edgeapp.yaml")   # or load_config(None) for the demo
    cfg.stations[0].source, cfg.vlm.batch_window_ms, cfg.data_dir

Importing this package needs only the standard library (YAML is read on demand).
"""

from __future__ import annotations

from edgeapp.config.loader import config_from_dict, load_config, parse_yaml
from edgeapp.config.render import config_to_yaml, default_config_yaml
from edgeapp.config.schema import (
    Config,
    ControllerConfig,
    DistributedConfig,
    ModelsConfig,
    OrdersConfig,
    RedisConfig,
    ScalingConfig,
    SloConfig,
    StationConfig,
    StreamConfig,
    SupervisionConfig,
    VlmConfig,
)
from edgeapp.config.seed import SEED_RENAMES, SEED_UNSUPPORTED

__all__ = [
    "SEED_RENAMES",
    "SEED_UNSUPPORTED",
    "Config",
    "ControllerConfig",
    "DistributedConfig",
    "ModelsConfig",
    "OrdersConfig",
    "RedisConfig",
    "ScalingConfig",
    "SloConfig",
    "StationConfig",
    "StreamConfig",
    "SupervisionConfig",
    "VlmConfig",
    "config_from_dict",
    "config_to_yaml",
    "default_config_yaml",
    "load_config",
    "parse_yaml",
]
