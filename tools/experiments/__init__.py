"""Experiments across settings: presets, the resumable sweep, tables and plots; the network lockdown."""
