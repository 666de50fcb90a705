"""The shared vocabulary: evidence, the same-rows gap, times, settings. Imports nothing above it."""
