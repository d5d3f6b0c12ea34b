"""Run machinery: how jobs run, never what they write. Job entry points (``jobs``), the worker
pool (``workers``), the resident model worker and its client (``resident``,
``resident_client``), provenance (``provenance``: params and code digests), run control
(``runcontrol``), logs (``logs``), the collector tuning (``dag_gc``) and the Snakemake internals
the workflow leans on (``snakemake_internals``)."""
