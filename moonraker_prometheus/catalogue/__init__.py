"""Every metric family the component can export, declared once as data.

Collectors look their families up here; docs/metrics.md is generated from it
(`python -m moonraker_prometheus.docs`) and a test keeps the two in sync.
"""
from __future__ import annotations
