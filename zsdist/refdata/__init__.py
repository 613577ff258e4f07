"""Reference data: the sources table, the files embedded in the package, fetching the rest, and readers of the
benchmarks' own file formats."""
