"""python -m warmci: see warmci.cli."""
from warmci.cli import main

raise SystemExit(main())
