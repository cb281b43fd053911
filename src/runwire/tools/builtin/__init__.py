"""The tools every Runwire installation offers, one module each."""
