"""The core both halves share: frame counts, statuses, weights table, video and manifest IO, registries."""
