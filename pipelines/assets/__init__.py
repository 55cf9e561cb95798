"""Dagster assets: extract (per source and partition), the warehouse writer, publish and report."""
