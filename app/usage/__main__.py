"""`python -m app.usage`: export, import or prune usage records (see app/usage/export.py)."""

import sys

from .export import main

sys.exit(main())
