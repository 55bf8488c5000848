"""Records flowing between tasks that run at the same time, over OS pipes.

- :mod:`gxo.streams.channel`: one edge — frames (``Batch``/``End``/``Failed``), the batching
  writer with its overflow strategies, the reader that checks the end of stream;
- :mod:`gxo.streams.endpoint`: a task instance's inputs and outputs (fan-in, fan-out);
- :mod:`gxo.streams.errors`: typed stream errors, each with the reason its task fails with.
"""

from gxo.streams.channel import make_pipe
from gxo.streams.endpoint import InputSpec, OutputSpec, Streams
from gxo.streams.errors import (
    ConsumersGone,
    StreamError,
    StreamOverflow,
    StreamTruncated,
    UpstreamFailed,
)
from gxo.wire import EdgeStats

__all__ = [
    "ConsumersGone",
    "EdgeStats",
    "InputSpec",
    "OutputSpec",
    "StreamError",
    "StreamOverflow",
    "StreamTruncated",
    "Streams",
    "UpstreamFailed",
    "make_pipe",
]
