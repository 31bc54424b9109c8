from ci_runner.cli import main

raise SystemExit(main())
