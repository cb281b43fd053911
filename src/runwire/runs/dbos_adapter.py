"""Every use Runwire makes of DBOS's private API, in one place. `tests/unit/runs/test_dbos_adapter.py` fails loudly
when a DBOS upgrade moves any of it."""

import threading
import time

from dbos import DBOS
from dbos._dbos import _get_or_create_dbos_registry

QUEUE_WORKER_THREAD_PREFIX = "queue-worker-"


def recover_pending_workflows(executor_ids: list[str]) -> list[str]:
    """Put the unfinished workflows of dead executors back on their queues (DBOS's own recovery, which has no public
    entry point for another executor's workflows); returns their ids."""
    handles = DBOS._recover_pending_workflows(executor_ids)
    return [handle.get_workflow_id() for handle in handles]


def wait_until_queue_listened(queue_name: str, timeout: float) -> bool:
    """Wait until DBOS's worker thread for `queue_name` runs. DBOS notices a newly registered queue on its next check
    (up to a second later); without this wait the first run on a fresh data dir would sit in the queue until then."""
    thread_name = QUEUE_WORKER_THREAD_PREFIX + queue_name
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(thread.name == thread_name for thread in threading.enumerate()):
            return True
        time.sleep(0.01)
    return False


def unregister_instance(instance: object) -> None:
    """Forget a configured instance, so that a later launch in this process (a test's next app) can register a new
    one under the same name: DBOS refuses a second instance of a name while the first is registered."""
    registry = _get_or_create_dbos_registry()
    registry.instance_info_map = {
        name: registered for name, registered in registry.instance_info_map.items() if registered is not instance
    }
