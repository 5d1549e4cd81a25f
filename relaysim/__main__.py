import sys

from relaysim.cli import main

sys.exit(main())
