"""The base of every tool result model.

Built at class definition (pydantic's default), not deferred: the SDK derives every tool's output
schema at registration through a TypeAdapter, which reuses a built model's core schema but builds
its own copy of a deferred one, so ``defer_build`` made each result model build twice (once for the
schema, again on the first answer): 2% more instructions from start to the first get_gpu_health
answer, counted with callgrind. The published
schemas are snapshotted in ``tests/golden/`` (checked by tests/test_docs.py).
"""

from pydantic import BaseModel


class ToolModel(BaseModel):
    pass
