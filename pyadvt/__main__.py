"""``python -m pyadvt`` (also what ``torchrun -m pyadvt`` runs)."""

import sys

from pyadvt.cli import main

sys.exit(main())
