"""Predictions: how likely each user is to perform a goal event within N days.

definitions (store) → features (point in time) → training (LightGBM + calibration + quality)
→ scoring (atomic runs) → categories, reasons, backtests. The public entry points for other
packages are listed in docs/predictions.md ("For other packages").
"""
