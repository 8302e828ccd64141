"""The base of every tool result model.

``defer_build``: a model's validator and serializer are built on first use, not at import, so the
agent starts without paying for tools a session never calls. Published output schemas come from
``tools/output_schemas.json`` (generated, and checked against the SDK's own by tests/test_docs.py).
"""

from pydantic import BaseModel, ConfigDict


class ToolModel(BaseModel):
    model_config = ConfigDict(defer_build=True)
