"""``/api/jobs``: start, follow and cancel extraction + t-SNE runs.

What a job may ask for is checked by :mod:`tsneviz.server.jobspec` and
:class:`~tsneviz.server.models.JobIn`; the queue is
:class:`~tsneviz.server.jobs.JobManager`.
"""
from fastapi import APIRouter

from tsneviz.server import models as m
from tsneviz.server.context import ERRORS, ServerDep

__all__ = ['router']

router = APIRouter(tags=['jobs'])


@router.post('/api/jobs', response_model=m.Job, status_code=202,
             responses=ERRORS)
def post_job(body: m.JobIn, srv: ServerDep):
    """Start an extraction + t-SNE run; poll ``GET /api/jobs/{id}``.

    ``config`` (and ``checkpoint``) are names relative to the server's
    configs (checkpoints) directory, and the dataset must lie in a
    data folder; anything else is refused (403). At most a few jobs
    wait: 429 beyond.
    """
    return srv.public_job(srv.jobs.submit(body.model_dump()))


@router.get('/api/jobs', response_model=m.Jobs, responses=ERRORS)
def list_jobs(srv: ServerDep):
    """Every job the server knows, newest first."""
    return dict(jobs=[srv.public_job(j) for j in srv.jobs.list()])


@router.get('/api/jobs/{job_id}', response_model=m.Job, responses=ERRORS)
def get_job(job_id: str, srv: ServerDep):
    """State (queued, running, done, failed, cancelled, interrupted),
    progress and result."""
    return srv.public_job(srv.jobs.get(job_id))


@router.delete('/api/jobs/{job_id}', response_model=m.Job, responses=ERRORS)
def cancel_job(job_id: str, srv: ServerDep):
    """Cancel a queued or running job; a running one's processes are
    stopped. 409 when it has already finished."""
    return srv.public_job(srv.jobs.cancel(job_id))
