"""A user's message in a chat: it is stored, and starts a run of its workflow or else of the chat's reply workflow,
whose input is the message's `input` with `message` set to its content. The run's reply comes back through the door
(`transitions`) when the run ends."""

import uuid

from sqlalchemy.orm import Session

from runwire.chats import service as chats_service
from runwire.chats.models import Chat
from runwire.messages import service as messages_service
from runwire.messages.models import Message
from runwire.messages.schemas import MessageCreate
from runwire.runs import service
from runwire.runs.models import WorkflowRun
from runwire.runs.schemas import RunCreate
from runwire.runs.signals import Signal, raise_signal


def post_message(
    chat: Chat, data: MessageCreate, *, user_id: uuid.UUID, enqueue: service.Enqueue, session: Session
) -> tuple[Message, WorkflowRun | None]:
    workflow_id = data.workflow_id or chat.workflow_id
    run: WorkflowRun | None = None
    # Queued once the message is written too (both commit together): a run's reply goes to the message naming it.
    queued: list[service.Enqueued] = []
    if workflow_id is None:
        chats_service.lock_chat(chat, session=session)
    else:
        run_create = RunCreate(workflow_id=workflow_id, input={**data.input, "message": data.content})
        run = service.create_run(chat, run_create, user_id=user_id, enqueue=queued.append, session=session)
    message = messages_service.add_user_message(chat, data.content, run_id=run.id if run else None, session=session)
    raise_signal(Signal.MESSAGE, None, chat_id=chat.id, session=session)
    for item in queued:
        enqueue(item)
    return message, run
