"""reachsolve: prove that range-limited AArch64 relocations reach, for every layout."""
__version__ = "0.1.0"

from .analyze import analyze  # noqa: E402
from .model import LayoutModel  # noqa: E402
from .report import Report, SiteResult, Counterexample  # noqa: E402
from .api import site_query, open_object  # noqa: E402

__all__ = ["analyze", "LayoutModel", "Report", "SiteResult", "Counterexample", "site_query", "open_object",
           "__version__"]
