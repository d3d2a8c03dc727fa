import sys

from streme.cli import main

sys.exit(main())
