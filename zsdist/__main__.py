"""`python -m zsdist` = the `zsdist` command (used as the Ray Job entrypoint on clusters)."""
from zsdist.cli import main

main()
