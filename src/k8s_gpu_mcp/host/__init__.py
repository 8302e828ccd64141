"""The host as seen from the agent: /proc under a configurable root, signals, GPU resets."""
