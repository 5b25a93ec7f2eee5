"""The server's endpoints, one router per area; each reads what it needs from ``app.state``."""

from .assess import router as assess_router
from .map import router as map_router
from .segment import router as segment_router
from .service import router as service_router

ROUTERS = (service_router, assess_router, segment_router, map_router)

__all__ = ["ROUTERS"]
