from fastapi import Request
from starlette.concurrency import run_in_threadpool

from runwire.deps import get_database
from runwire.routing import api_router
from runwire.schemas import Envelope

router = api_router("/api", "liveness")


@router.get("/liveness", response_model=Envelope[dict[str, str]])
async def liveness(request: Request) -> Envelope[dict[str, str]]:
    await run_in_threadpool(get_database(request).ping)
    return Envelope(data={"status": "ok"})
