"""Build the VLM backend that ``config.vlm.backend`` names (``local`` or ``openai``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgeapp.errors import ConfigError

if TYPE_CHECKING:
    from edgeapp.config import Config
    from edgeapp.engine.orders.catalog import Catalog
    from edgeapp.engine.vlm.backend import Backend


def make_backend(config: Config, catalog: Catalog) -> Backend:
    """The configured backend, ready to answer (the local one has its model loaded)."""
    vlm = config.vlm
    # Imported here: each backend pulls in its own heavy library (openvino, requests).
    if vlm.backend == "local":
        from edgeapp.engine.vlm.local_backend import LocalBackend

        return LocalBackend.from_config(config, catalog)
    if vlm.backend == "openai":
        from edgeapp.engine.vlm.openai_backend import OpenAiBackend

        return OpenAiBackend(vlm.url, api_path=vlm.api_path, model_name=vlm.model_name,
                             catalog=catalog, timeout_s=vlm.timeout_s)
    raise ConfigError(f"vlm.backend = {vlm.backend!r}: expected local or openai")
