"""The table language now lives in `converter.tables`; this module keeps the old import path."""

from .tables import *  # noqa: F403
from .tables import __all__  # noqa: F401
from .tables.load import _raw  # noqa: F401  (tests and older branches import it)
from .tables.select import _fit, _select_by_fit  # noqa: F401
