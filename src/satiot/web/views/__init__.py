"""One module per console page (or group of pages); each exposes an APIRouter ``router``."""
