import sys

from gan_aug.cli import main

sys.exit(main())
