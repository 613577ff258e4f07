"""zsdist: zero-shot NAS proxies evaluated at scale on Ray, stored as Parquet, analysed with DuckDB."""

__version__ = "0.1.0"
