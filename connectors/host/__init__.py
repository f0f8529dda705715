"""The host platform itself: cohorts/segments, score attributes and change events."""
