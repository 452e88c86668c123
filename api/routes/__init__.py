"""HTTP routes, one module per area; each is an ``APIRouter`` the app factory includes."""
