"""What the apps' job rows share: no table of its own."""

from django.db import models


class LeasedJob(models.Model):
    """A long job that is a database row, run by one worker at a time through a lease (core.leases).

    A concrete job declares its `Status` (with at least QUEUED and RUNNING), `ACTIVE` (the statuses a worker may hold
    it in) and `LEASE_SETTING`, the name of the setting that gives its lease's length in seconds.
    """

    LEASE_SETTING: str

    log = models.TextField(blank=True)
    error = models.TextField(blank=True)
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
