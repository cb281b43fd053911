"""Liveness (the process serves: no database work) and readiness (the database answers and, in a process that
executes runs, the executor runs), for orchestrators and load balancers. Neither needs a session."""

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from runwire.deps import get_database
from runwire.errors import error_response
from runwire.openapi import also_answers
from runwire.routing import api_router
from runwire.runs.executor import Executor
from runwire.schemas import Envelope

router = api_router("/api", "health")

_OK = b'{"data":{"status":"ok"}}'
_READY = b'{"data":{"status":"ready"}}'


@router.get("/liveness", response_model=Envelope[dict[str, str]])
async def liveness() -> Response:
    return Response(_OK, media_type="application/json")


@router.get(
    "/readiness",
    response_model=Envelope[dict[str, str]],
    responses=also_answers(503, "The database does not answer, or the executor is not running."),
)
async def readiness(request: Request) -> Response:
    try:
        await run_in_threadpool(get_database(request).ping)
    except Exception:
        return error_response(503, "Not ready: the database does not answer.")
    executor: Executor = request.app.state.executor
    problem = executor.not_ready()
    if problem is not None:
        return error_response(503, f"Not ready: {problem}.")
    return Response(_READY, media_type="application/json")
