"""``edgeapp bench ui``: the real window, offscreen, on many synthetic stations."""
