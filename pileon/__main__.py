from pileon.cli import main

raise SystemExit(main())
