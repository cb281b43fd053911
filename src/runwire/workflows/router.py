from typing import Annotated

from fastapi import Response

from runwire.deps import CurrentAuth, OwnedWorkflow, OwnUserId, ReadQuota, SessionDep, WriteQuota, checked_body
from runwire.pagination import LimitParam
from runwire.routing import api_router
from runwire.schemas import Envelope
from runwire.workflows import service
from runwire.workflows.schemas import WorkflowCreate, WorkflowPage, WorkflowRead, WorkflowUpdate

router = api_router("/api", "workflows")


@router.post("/workflows", status_code=201, response_model=Envelope[WorkflowRead])
def create_workflow(
    _body: Annotated[None, checked_body(WorkflowCreate)],
    data: WorkflowCreate,
    auth: CurrentAuth,
    session: SessionDep,
    _quota: WriteQuota,
) -> Envelope[WorkflowRead]:
    workflow, version = service.create_workflow(data, user_id=auth.user_id, session=session)
    return Envelope(data=service.to_read(workflow, version))


@router.get("/workflows/{workflowId}", response_model=Envelope[WorkflowRead])
def get_workflow(workflow: OwnedWorkflow, session: SessionDep, _quota: ReadQuota) -> Envelope[WorkflowRead]:
    return Envelope(data=service.to_read(workflow, service.current_version(workflow, session=session)))


@router.patch("/workflows/{workflowId}", response_model=Envelope[WorkflowRead])
def update_workflow(
    _body: Annotated[None, checked_body(WorkflowUpdate)],
    workflow: OwnedWorkflow,
    data: WorkflowUpdate,
    session: SessionDep,
    _quota: WriteQuota,
) -> Envelope[WorkflowRead]:
    version = service.update_workflow(workflow, data, session=session)
    return Envelope(data=service.to_read(workflow, version))


@router.delete("/workflows/{workflowId}", status_code=204)
def delete_workflow(workflow: OwnedWorkflow, session: SessionDep, _quota: WriteQuota) -> Response:
    service.delete_workflow(workflow, session=session)
    return Response(status_code=204)


@router.get("/users/{userId}/workflows", response_model=Envelope[WorkflowPage])
def list_workflows(
    user_id: OwnUserId, session: SessionDep, _quota: ReadQuota, limit: LimitParam = 50, cursor: str | None = None
) -> Envelope[WorkflowPage]:
    workflows, next_cursor = service.list_workflows(user_id, limit=limit, cursor=cursor, session=session)
    return Envelope(data=WorkflowPage(workflows=workflows, next_cursor=next_cursor))
