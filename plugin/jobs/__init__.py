"""Scheduled jobs: the registry of job kinds, the plan, leases, the scheduler and worker processes.

Areas register their job kinds here (see `registry`):

    from plugin.jobs import register
    register("rescore", rescore)
"""
from plugin.jobs.plan import JobSpec, Schedule
from plugin.jobs.registry import UnknownJobKind, load_job_modules, register, register_planner, run_kind

__all__ = ["JobSpec", "Schedule", "UnknownJobKind", "load_job_modules", "register", "register_planner", "run_kind"]
