"""Imports: a `partial` status, the column mapping an import was read through, and the keys it ignored.

Past imports get the status they would get now: partial where some lines were rejected and others kept, failed where
every line was rejected (partial mode used to call that a success).
"""

from django.db import migrations, models
from django.db.models import Q


def restate(apps, schema_editor):
    ImportJob = apps.get_model("curation", "ImportJob")
    rejected = ImportJob.objects.filter(status="succeeded", rejected_count__gt=0)
    kept = Q(created_count__gt=0) | Q(duplicate_count__gt=0)
    rejected.filter(kept).update(status="partial")
    rejected.exclude(kept).update(status="failed")
    # An import of nothing at all kept nothing either.
    ImportJob.objects.filter(status="succeeded", total_lines=0).update(status="failed")


def unstate(apps, schema_editor):
    apps.get_model("curation", "ImportJob").objects.filter(status="partial").update(status="succeeded")


class Migration(migrations.Migration):
    dependencies = [
        ("curation", "0012_review_rounds"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="importjob",
            name="importjob_status_valid",
        ),
        migrations.AddField(
            model_name="importjob",
            name="ignored_keys",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="Keys the mapping does not name, with the number of rows that had each.",
            ),
        ),
        migrations.AddField(
            model_name="importjob",
            name="mapping",
            field=models.JSONField(blank=True, help_text="The column mapping the rows were read through.", null=True),
        ),
        migrations.AlterField(
            model_name="importjob",
            name="status",
            field=models.CharField(
                choices=[
                    ("running", "Running"),
                    ("succeeded", "Succeeded"),
                    ("partial", "Partial"),
                    ("failed", "Failed"),
                ],
                default="running",
                max_length=10,
            ),
        ),
        migrations.AddConstraint(
            model_name="importjob",
            constraint=models.CheckConstraint(
                condition=models.Q(status__in=["running", "succeeded", "partial", "failed"]),
                name="importjob_status_valid",
            ),
        ),
        migrations.RunPython(restate, unstate),
    ]
