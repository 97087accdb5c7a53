import sys

from expr_experiment.cli import main

sys.exit(main())
