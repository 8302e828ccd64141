"""The base of every tool result model.

``defer_build``: a model's validator and serializer are built on first use, not at import, so the
agent pays for a model only when a tool uses it. The published schemas are snapshotted in
``tests/golden/`` (checked by tests/test_docs.py).
"""

from pydantic import BaseModel, ConfigDict


class ToolModel(BaseModel):
    model_config = ConfigDict(defer_build=True)
