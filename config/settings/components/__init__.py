"""The settings of each integration, one module each, gathered by config/settings/base.py (never a settings module
on its own): env (where things live, how the environment is read), drf, celery, security, fineline (the product's
own knobs). Importing them creates nothing: the folders they name are made when Django starts (core/apps.py)."""
