"""polaris-reconciler: manage Imply Polaris connections, tables and batch ingestion jobs as code."""

__version__ = "0.1.0"
