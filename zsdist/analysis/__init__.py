"""DuckDB over the result tables: views, SQL, and output formats."""
