"""A fast, drop-in Cumulus Message Adapter.

The package is a functional core (templates, paths, message_flow) with thin edges
(remote_store, schemas, protocol, cli). Heavy dependencies are imported lazily so the
sidecar starts quickly; importing this package costs almost nothing.
"""

__version__ = "3.0.0"
