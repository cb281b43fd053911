import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from runwire.db import Base


class RateLimitCounter(Base):
    """Hits of one subject under one rule in one fixed window. `subject` is a hash (no email or address is
    stored); `window_end` is in whole seconds since the epoch, which keeps the window arithmetic in SQL plain."""

    __tablename__ = "rate_limit_counter"

    rule: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    subject: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    window_end: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, index=True)
    hits: Mapped[int]
