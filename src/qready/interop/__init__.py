"""Bridges to quantization toolkits. Each imports its toolkit only when called."""
