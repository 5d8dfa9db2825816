import sys

from include.lean_local.runner import main

sys.exit(main())
