"""The Qt skin over the engine."""
