"""Imports every domain's tables so that Base.metadata knows them all (for Alembic and tests)."""

from runwire.auth.models import AuthSession, User
from runwire.chats.models import Chat
from runwire.messages.models import Message
from runwire.ratelimits.models import RateLimitCounter
from runwire.runs.models import RunEvent, StepRun, WorkflowRun
from runwire.workflows.models import Workflow, WorkflowVersion

__all__ = [
    "AuthSession",
    "Chat",
    "Message",
    "RateLimitCounter",
    "RunEvent",
    "StepRun",
    "User",
    "Workflow",
    "WorkflowRun",
    "WorkflowVersion",
]
