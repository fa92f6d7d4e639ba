"""polaris-reconciler: manage Imply Polaris S3 connections, tables and batch ingestion jobs as code."""

__version__ = "0.1.0"
