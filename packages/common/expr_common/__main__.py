import sys

from expr_common.cli import main

sys.exit(main())
