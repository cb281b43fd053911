"""Path identifiers: UUIDs in any case, refused with 400 otherwise."""

import uuid

from runwire.errors import Invalid


def parse_uuid(value: str, field: str) -> uuid.UUID:
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        parsed = None
    # uuid.UUID also accepts braces, "urn:uuid:" and bare hex; the contract's IDs are the dashed form only.
    if parsed is None or len(value) != 36:
        raise Invalid(f"{field} must be a UUID.", details=[(field, "is not a UUID")])
    return parsed
