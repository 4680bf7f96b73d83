import sys

from controlcheck.cli import main

sys.exit(main())
