"""The Redis queue backend: stations and the engine talk through Redis Streams.

``queue_backend: redis`` puts everything between a station and the engine — VLM requests and
answers, verdicts, control, station status and metrics, a JPEG preview for the window's tile —
into Redis Streams read with consumer groups; frames and detections still travel over ZeroMQ
(:mod:`.frames`). A station can so run on another machine (``edgeapp --station NAME``).

- :mod:`.target`: where the server is, how to log in (AUTH, TLS), the key names.
- :mod:`.codec`: the messages as stream entries (validated on the way in).
- :mod:`.frames`: the ZeroMQ line for frames (to the Producer) and detections (back).
- :mod:`.station_link`: the station's end (buffers while Redis is down).
- :mod:`.hub` and :mod:`.channel`: the engine's end (one reader for every station).
"""
