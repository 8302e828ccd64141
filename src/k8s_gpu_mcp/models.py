"""The base of every tool result model.

``defer_build``: a model's validator and serializer are built on first use, not at import, so the
agent pays for a model only when a tool uses it. Published schemas come from ``tools/manifest.json``
(generated, and checked against the SDK's own by tests/test_docs.py).
"""

from pydantic import BaseModel, ConfigDict


class ToolModel(BaseModel):
    model_config = ConfigDict(defer_build=True)
