"""Runwire: durable tool workflows inside chat conversations."""
