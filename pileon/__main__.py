from pileon.cli.main import main

raise SystemExit(main())
