"""YAML mapping tables, shipped as package data of `converter.mappings`."""
