"""Triggers that keep curation_examplecounter equal to the examples' counts, on PostgreSQL and SQLite.

The SQL lives in curation/counters.py, which the post_migrate handler also uses to put the triggers back whenever a
later migration dropped them (SQLite rebuilds a table to alter it).
"""

from django.db import migrations

from curation import counters


def forward(apps, schema_editor):
    counters.install(schema_editor.connection)
    counters.rebuild(schema_editor.connection)


def backward(apps, schema_editor):
    counters.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("curation", "0005_example_counters")]
    operations = [migrations.RunPython(forward, backward)]
