"""tests/unit: the suite's own tests. This folder is on sys.path for them (pytest puts a conftest's
folder there), so the stand-ins they share live in standins.py beside it."""
