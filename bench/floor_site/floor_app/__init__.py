"""The floor: the cheapest useful Django request on the same stack (gunicorn, PostgreSQL).

One view, one INSERT, Django's default middleware. `bench/floor.py` measures it; the ingest
benchmark is judged as a fraction of it, measured in the same run on the same machine.
"""
